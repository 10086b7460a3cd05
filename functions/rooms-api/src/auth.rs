//! Caller identity (DESIGN.md section 6).
//!
//! `AUTH_BACKEND=none`: everyone is anonymous and the `Authorization` header is ignored, as in
//! the original. `AUTH_BACKEND=jwt`: no `Authorization` header means anonymous; a header that is
//! present must carry a valid RS256 bearer token (signature, `exp`, the audience when
//! configured, a non-empty `sub`), otherwise the request is refused with 401: a bad token is
//! never silently treated as anonymous.

use http::HeaderMap;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use shared::config::AuthConfig;

#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    #[error("AUTH_JWT_PUBLIC_KEY is not a usable RSA public key: {0}")]
    BadKey(String),
}

/// Why a request's credentials were refused; the reason is logged, never sent to the client.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("the Authorization header is not a bearer token")]
    NotBearer,
    #[error("the token is invalid: {0}")]
    InvalidToken(String),
    #[error("the token has no subject")]
    NoSubject,
}

/// The caller: `None` for anonymous.
pub type UserId = Option<String>;

#[derive(Clone)]
pub enum Authenticator {
    None,
    Jwt {
        key: Box<DecodingKey>,
        validation: Box<Validation>,
    },
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Authenticator::None => f.write_str("Authenticator::None"),
            Authenticator::Jwt { validation, .. } => f
                .debug_struct("Authenticator::Jwt")
                .field("audience", &validation.aud)
                .finish_non_exhaustive(),
        }
    }
}

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    sub: Option<String>,
}

impl Authenticator {
    pub fn from_config(auth: &AuthConfig) -> Result<Self, AuthSetupError> {
        match auth {
            AuthConfig::None => Ok(Authenticator::None),
            AuthConfig::Jwt {
                public_key_pem,
                audience,
            } => {
                let key = DecodingKey::from_rsa_pem(public_key_pem.as_bytes())
                    .map_err(|e| AuthSetupError::BadKey(e.to_string()))?;
                let mut validation = Validation::new(Algorithm::RS256);
                validation.validate_exp = true;
                match audience {
                    Some(aud) => {
                        validation.set_required_spec_claims(&["exp", "sub", "aud"]);
                        validation.set_audience(&[aud]);
                    }
                    // Without a configured audience, a token's `aud` is not checked (the
                    // library would otherwise refuse every token that has one).
                    None => {
                        validation.set_required_spec_claims(&["exp", "sub"]);
                        validation.validate_aud = false;
                    }
                }
                Ok(Authenticator::Jwt {
                    key: Box::new(key),
                    validation: Box::new(validation),
                })
            }
        }
    }

    /// The caller's user id (`sub`), `None` for anonymous callers.
    pub fn identify(&self, headers: &HeaderMap) -> Result<UserId, AuthError> {
        let Authenticator::Jwt { key, validation } = self else {
            return Ok(None);
        };
        let Some(value) = headers.get(http::header::AUTHORIZATION) else {
            return Ok(None);
        };
        let value = value.to_str().map_err(|_| AuthError::NotBearer)?.trim();
        let (scheme, token) = value.split_once(' ').ok_or(AuthError::NotBearer)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::NotBearer);
        }
        let data = jsonwebtoken::decode::<Claims>(token.trim(), key, validation)
            .map_err(|e| AuthError::InvalidToken(e.to_string()))?;
        match data.claims.sub {
            Some(sub) if !sub.is_empty() => Ok(Some(sub)),
            _ => Err(AuthError::NoSubject),
        }
    }
}

#[cfg(test)]
pub(crate) mod test_keys {
    pub const PUBLIC: &str = include_str!("../../../tests/keys/test-public.pem");
    pub const PRIVATE: &str = include_str!("../../../tests/keys/test-private.pem");
    pub const OTHER_PRIVATE: &str = include_str!("../../../tests/keys/other-private.pem");

    /// An RS256 token for `sub`, expiring `exp_in` seconds from now, with optional audience.
    pub fn token(private: &str, sub: &str, exp_in: i64, aud: Option<&str>) -> String {
        let mut claims = serde_json::json!({
            "sub": sub,
            "email": format!("{sub}@example.com"),
            "exp": chrono::Utc::now().timestamp() + exp_in,
        });
        if let Some(aud) = aud {
            claims["aud"] = aud.into();
        }
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_rsa_pem(private.as_bytes()).unwrap(),
        )
        .unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::test_keys::*;
    use super::*;

    fn jwt(audience: Option<&str>) -> Authenticator {
        Authenticator::from_config(&AuthConfig::Jwt {
            public_key_pem: PUBLIC.into(),
            audience: audience.map(str::to_owned),
        })
        .unwrap()
    }

    fn bearer(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, value.parse().unwrap());
        h
    }

    #[test]
    fn a_valid_token_identifies_its_subject() {
        let t = token(PRIVATE, "alice", 300, None);
        assert_eq!(
            jwt(None).identify(&bearer(&format!("Bearer {t}"))),
            Ok(Some("alice".into()))
        );
        assert_eq!(
            jwt(None).identify(&bearer(&format!("bearer {t}"))),
            Ok(Some("alice".into()))
        );
    }

    #[test]
    fn no_header_is_anonymous() {
        assert_eq!(jwt(None).identify(&HeaderMap::new()), Ok(None));
    }

    #[test]
    fn expired_wrongly_signed_or_garbage_tokens_are_refused() {
        let a = jwt(None);
        let expired = token(PRIVATE, "alice", -3600, None);
        let forged = token(OTHER_PRIVATE, "alice", 300, None);
        for value in [
            format!("Bearer {expired}"),
            format!("Bearer {forged}"),
            "Bearer not.a.token".into(),
            "Bearer".into(),
            "Basic YWxpY2U6c2VjcmV0".into(),
        ] {
            assert!(a.identify(&bearer(&value)).is_err(), "{value} accepted");
        }
    }

    #[test]
    fn a_configured_audience_must_match() {
        let a = jwt(Some("reflector"));
        let good = token(PRIVATE, "alice", 300, Some("reflector"));
        let other = token(PRIVATE, "alice", 300, Some("elsewhere"));
        let none = token(PRIVATE, "alice", 300, None);
        assert_eq!(
            a.identify(&bearer(&format!("Bearer {good}"))),
            Ok(Some("alice".into()))
        );
        assert!(a.identify(&bearer(&format!("Bearer {other}"))).is_err());
        assert!(a.identify(&bearer(&format!("Bearer {none}"))).is_err());
    }

    #[test]
    fn backend_none_ignores_tokens() {
        assert_eq!(
            Authenticator::None.identify(&bearer("Bearer garbage")),
            Ok(None)
        );
    }

    #[test]
    fn an_unusable_public_key_fails_setup() {
        let e = Authenticator::from_config(&AuthConfig::Jwt {
            public_key_pem: "-----BEGIN PUBLIC KEY-----\nabc\n-----END PUBLIC KEY-----\n".into(),
            audience: None,
        });
        assert!(e.is_err());
    }
}
