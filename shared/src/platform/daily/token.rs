//! Self-signed Daily meeting tokens (video-platform-apis.md A7): an HS256 JWT signed with the
//! domain's API key, so a join costs no request to Daily. Claims use Daily's abbreviations:
//! `r` room name, `d` domain id, `iat`, `exp`, `ud` user id, `o` is_owner, `erui`
//! enable_recording_ui.
//!
//! `erui` shows Daily's own record button. It is on only where a participant may start a
//! recording without our consent dialog standing in the way: rooms recording `local` (the
//! browser records, nothing starts on the server), and `cloud` rooms with `skip_consent`. Cloud
//! recordings of other rooms are started by the server (`recording_start`) after consent.

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::domain::{Platform, RecordingType};
use crate::platform::PlatformError;

/// The claims of a Daily meeting token, exactly as they are signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeetingTokenClaims {
    /// The Daily room name: the token admits to this room only.
    pub r: String,
    /// The Daily domain id.
    pub d: String,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expiry, Unix seconds: the meeting's end.
    pub exp: i64,
    /// Our user id, when the participant is signed in (it comes back in Daily's webhooks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ud: Option<String>,
    /// Present (true) only for the room's owner.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub o: bool,
    pub erui: bool,
}

/// Who joins which meeting, and what the room allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenRequest<'a> {
    /// The meeting's Daily room name.
    pub room_name: &'a str,
    pub user_id: Option<&'a str>,
    /// Whether the caller owns the Reflector room.
    pub is_owner: bool,
    pub recording_type: RecordingType,
    pub skip_consent: bool,
    /// The meeting's end: the token is worthless after it.
    pub expires_at: DateTime<Utc>,
}

/// Whether Daily's own record button is shown (`erui`); see the module docs.
pub fn recording_ui_enabled(recording_type: RecordingType, skip_consent: bool) -> bool {
    match recording_type {
        RecordingType::Local => true,
        RecordingType::Cloud => skip_consent,
        RecordingType::None => false,
    }
}

impl MeetingTokenClaims {
    pub fn new(request: &TokenRequest<'_>, domain_id: &str, now: DateTime<Utc>) -> Self {
        Self {
            r: request.room_name.to_owned(),
            d: domain_id.to_owned(),
            iat: now.timestamp(),
            exp: request.expires_at.timestamp(),
            ud: request.user_id.map(str::to_owned),
            o: request.is_owner,
            erui: recording_ui_enabled(request.recording_type, request.skip_consent),
        }
    }
}

/// Signs meeting tokens with the API key; the key is prepared once per client.
#[derive(Clone)]
pub struct MeetingTokenSigner {
    key: EncodingKey,
}

impl std::fmt::Debug for MeetingTokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MeetingTokenSigner([redacted])")
    }
}

impl MeetingTokenSigner {
    pub fn new(api_key: &SecretString) -> Self {
        Self {
            key: EncodingKey::from_secret(api_key.expose_secret().as_bytes()),
        }
    }

    pub fn sign(&self, claims: &MeetingTokenClaims) -> Result<String, PlatformError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.key).map_err(|e| {
            PlatformError::Unsupported {
                platform: Platform::Daily,
                operation: "sign a meeting token",
                reason: e.to_string(),
            }
        })
    }
}

/// `room_url` with the token as Daily's `t` query parameter (`?t=` or `&t=`, before any
/// fragment). A JWT is base64url and dots, so it needs no escaping.
pub fn join_url(room_url: &str, token: &str) -> String {
    let (base, fragment) = match room_url.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (room_url, None),
    };
    let separator = if base.contains('?') { '&' } else { '?' };
    let mut url = format!("{base}{separator}t={token}");
    if let Some(f) = fragment {
        url.push('#');
        url.push_str(f);
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::test_support::{fixed_now, key, API_KEY};
    use jsonwebtoken::{DecodingKey, Validation};

    fn request(is_owner: bool, user_id: Option<&str>) -> TokenRequest<'_> {
        TokenRequest {
            room_name: "team-standup-20260102030405",
            user_id,
            is_owner,
            recording_type: RecordingType::Cloud,
            skip_consent: false,
            expires_at: fixed_now() + chrono::Duration::hours(8),
        }
    }

    /// Verifies with the API key (HS256 only) and returns the raw claims object.
    fn verified(token: &str) -> serde_json::Map<String, serde_json::Value> {
        let mut validation = Validation::new(Algorithm::HS256);
        // The fixed test clock is in the past; expiry is checked against it below instead.
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            token,
            &DecodingKey::from_secret(API_KEY.as_bytes()),
            &validation,
        )
        .unwrap()
        .claims
    }

    #[test]
    fn token_verifies_with_the_api_key_and_carries_exactly_the_claims() {
        let signer = MeetingTokenSigner::new(&key());
        let claims = MeetingTokenClaims::new(&request(false, Some("user-7")), "dom-1", fixed_now());
        let token = signer.sign(&claims).unwrap();
        let got = verified(&token);
        assert_eq!(
            serde_json::Value::Object(got),
            serde_json::json!({
                "r": "team-standup-20260102030405",
                "d": "dom-1",
                "iat": fixed_now().timestamp(),
                "exp": (fixed_now() + chrono::Duration::hours(8)).timestamp(),
                "ud": "user-7",
                "erui": false,
            })
        );
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, Algorithm::HS256);
    }

    #[test]
    fn a_token_signed_with_another_key_does_not_verify() {
        let other = MeetingTokenSigner::new(&SecretString::from("another-key"));
        let claims = MeetingTokenClaims::new(&request(false, None), "dom-1", fixed_now());
        let token = other.sign(&claims).unwrap();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_exp = false;
        assert!(jsonwebtoken::decode::<MeetingTokenClaims>(
            &token,
            &DecodingKey::from_secret(API_KEY.as_bytes()),
            &validation,
        )
        .is_err());
    }

    #[test]
    fn only_the_owner_gets_o_and_anonymous_callers_get_no_ud() {
        let signer = MeetingTokenSigner::new(&key());
        let owner = verified(
            &signer
                .sign(&MeetingTokenClaims::new(
                    &request(true, Some("owner-1")),
                    "d",
                    fixed_now(),
                ))
                .unwrap(),
        );
        assert_eq!(owner.get("o"), Some(&serde_json::Value::Bool(true)));
        assert_eq!(owner.get("ud"), Some(&serde_json::json!("owner-1")));
        let guest = verified(
            &signer
                .sign(&MeetingTokenClaims::new(
                    &request(false, None),
                    "d",
                    fixed_now(),
                ))
                .unwrap(),
        );
        assert_eq!(guest.get("o"), None);
        assert_eq!(guest.get("ud"), None);
    }

    #[test]
    fn daily_record_button_only_for_local_or_cloud_without_consent() {
        let table = [
            (RecordingType::None, false, false),
            (RecordingType::None, true, false),
            (RecordingType::Local, false, true),
            (RecordingType::Local, true, true),
            (RecordingType::Cloud, false, false),
            (RecordingType::Cloud, true, true),
        ];
        let signer = MeetingTokenSigner::new(&key());
        for (recording_type, skip_consent, want) in table {
            let req = TokenRequest {
                recording_type,
                skip_consent,
                ..request(false, None)
            };
            let claims = verified(
                &signer
                    .sign(&MeetingTokenClaims::new(&req, "d", fixed_now()))
                    .unwrap(),
            );
            assert_eq!(
                claims.get("erui"),
                Some(&serde_json::Value::Bool(want)),
                "{recording_type} skip_consent={skip_consent}"
            );
        }
    }

    #[test]
    fn join_url_appends_the_token_as_t() {
        assert_eq!(
            join_url("https://x.daily.co/room-1", "a.b.c"),
            "https://x.daily.co/room-1?t=a.b.c"
        );
        assert_eq!(
            join_url("https://x.daily.co/room-1?lang=de", "a.b.c"),
            "https://x.daily.co/room-1?lang=de&t=a.b.c"
        );
        assert_eq!(
            join_url("https://x.daily.co/room-1#frag", "a.b.c"),
            "https://x.daily.co/room-1?t=a.b.c#frag"
        );
    }
}
