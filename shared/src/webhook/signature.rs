//! Webhook signature verification, pure functions over the raw request (DESIGN.md section 4).
//!
//! Three schemes:
//! - **Daily, real** ([`verify_daily`] when `X-Webhook-Signature` is present): base64
//!   HMAC-SHA256 of `X-Webhook-Timestamp + "." + raw body`, keyed by the **base64-decoded**
//!   secret (Daily hands out base64 secrets). The timestamp must be within a tolerance of `now`
//!   (default [`DAILY_TOLERANCE`]); Daily documents no replay window, so ours is a choice.
//! - **Daily, seed** ([`verify_daily`] when only `X-Daily-Signature` is present): hex
//!   HMAC-SHA256 of the raw body keyed by the secret's bytes. The only signed time is the body's
//!   `ts` (milliseconds), read once the signature matches: outside the same tolerance as the real
//!   scheme it is stale, and without one the request is refused, so a captured request cannot be
//!   replayed once its event id's dedupe record has expired.
//! - **Whereby** ([`verify_whereby`]): `Whereby-Signature: t=<unix s>,v1=<hex>`, HMAC-SHA256 of
//!   `t + "." + raw body` with the plain secret, [`WHEREBY_TOLERANCE`] either side of `now`.
//!   Whereby's sample re-serialises the JSON; we sign the raw bytes, which is what Whereby sends.
//!
//! Every comparison goes through `Mac::verify_slice` (constant time, length checked). An unset
//! secret rejects everything with [`SignatureError::NotConfigured`]: there is no "accept all".
//! [`SignatureError::Missing`] is only "no signature header at all", so the HTTP layer can answer
//! `Missing signature`; anything else wrong is [`SignatureError::Invalid`].
//!
//! The `sign_*` helpers produce valid headers for tests, fixtures and the signing tool.

use std::time::Duration;

use ::http::{HeaderMap, HeaderName, HeaderValue};
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Daily's real signature header (base64 digest).
pub const DAILY_SIGNATURE_HEADER: &str = "x-webhook-signature";
/// Daily's timestamp header, signed together with the body.
pub const DAILY_TIMESTAMP_HEADER: &str = "x-webhook-timestamp";
/// The seed document's Daily header (hex digest of the body).
pub const DAILY_SEED_SIGNATURE_HEADER: &str = "x-daily-signature";
/// Whereby's header: `t=<unix seconds>,v1=<hex>`.
pub const WHEREBY_SIGNATURE_HEADER: &str = "whereby-signature";

/// How far `X-Webhook-Timestamp` may be from now, either way.
pub const DAILY_TOLERANCE: Duration = Duration::from_secs(300);
/// Whereby's own sample allows one minute.
pub const WHEREBY_TOLERANCE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The webhook secret is unset: every request is rejected.
    #[error("webhook secret is not configured")]
    NotConfigured,
    /// No signature header at all.
    #[error("missing signature")]
    Missing,
    /// A signature is present but wrong, malformed, stale, or its companion header is bad.
    /// `reason` is for logs; it never contains the secret or the signature.
    #[error("invalid signature: {reason}")]
    Invalid { reason: &'static str },
}

fn invalid(reason: &'static str) -> SignatureError {
    SignatureError::Invalid { reason }
}

/// The reasons of a signed timestamp outside the tolerance (a replay, or a sender's clock off).
const TIMESTAMP_TOO_OLD: &str = "timestamp is too old";
const TIMESTAMP_IN_FUTURE: &str = "timestamp is in the future";
/// A seed-scheme body signs its time only through `ts`; without it a capture replays forever.
const SEED_WITHOUT_TS: &str = "seed event has no ts";

impl SignatureError {
    /// Whether the signature was refused only for its timestamp being outside the tolerance:
    /// counted apart from wrong signatures (`WebhookRejected` with `Reason=stale`), since a
    /// clock problem and a wrong secret call for different fixes.
    pub fn is_stale(&self) -> bool {
        matches!(self, SignatureError::Invalid { reason } if *reason == TIMESTAMP_TOO_OLD || *reason == TIMESTAMP_IN_FUTURE)
    }
}

/// The Daily secret (base64) is not base64, so it cannot key the real scheme.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the Daily webhook secret is not base64")]
pub struct SecretNotBase64;

/// Verifies a Daily webhook with the default tolerance. Uses the real scheme when
/// `X-Webhook-Signature` is present, else the seed scheme when `X-Daily-Signature` is present.
pub fn verify_daily(
    secret: Option<&SecretString>,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    verify_daily_with_tolerance(secret, headers, body, now, DAILY_TOLERANCE)
}

pub fn verify_daily_with_tolerance(
    secret: Option<&SecretString>,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    let secret = secret.ok_or(SignatureError::NotConfigured)?;
    if let Some(sig) = headers.get(DAILY_SIGNATURE_HEADER) {
        verify_daily_real(secret, sig, headers, body, now, tolerance)
    } else if let Some(sig) = headers.get(DAILY_SEED_SIGNATURE_HEADER) {
        verify_daily_seed(secret, sig, body, now, tolerance)
    } else {
        Err(SignatureError::Missing)
    }
}

fn verify_daily_real(
    secret: &SecretString,
    signature: &HeaderValue,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    let timestamp = headers
        .get(DAILY_TIMESTAMP_HEADER)
        .ok_or(invalid("missing timestamp header"))?
        .to_str()
        .map_err(|_| invalid("timestamp is not text"))?
        .trim();
    let seconds = parse_unix_seconds(timestamp).ok_or(invalid("timestamp is not a number"))?;
    check_fresh(seconds, now, tolerance)?;
    let tag = decode_base64(signature.as_bytes()).ok_or(invalid("signature is not base64"))?;
    let key = decode_base64(secret.expose_secret().trim().as_bytes())
        .ok_or(invalid("secret is not base64"))?;
    let mut mac = hmac(&key)?;
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&tag)
        .map_err(|_| invalid("signature mismatch"))
}

fn verify_daily_seed(
    secret: &SecretString,
    signature: &HeaderValue,
    body: &[u8],
    now: DateTime<Utc>,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    let tag = hex::decode(signature.as_bytes().trim_ascii())
        .map_err(|_| invalid("signature is not hex"))?;
    let mut mac = hmac(secret.expose_secret().as_bytes())?;
    mac.update(body);
    mac.verify_slice(&tag)
        .map_err(|_| invalid("signature mismatch"))?;
    // The body is authentic, so reading its time is safe. A body that is not a JSON object with
    // a numeric `ts` is left to the parser (422), as for any signed malformed body.
    #[derive(serde::Deserialize)]
    struct SignedTime {
        ts: Option<f64>,
    }
    // Only an object is an envelope (a derived struct would also read `[ts]` from an array).
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Ok(());
    }
    match serde_json::from_slice::<SignedTime>(body) {
        Ok(SignedTime { ts: Some(ms) }) => check_fresh_millis(ms, now, tolerance),
        Ok(SignedTime { ts: None }) => Err(invalid(SEED_WITHOUT_TS)),
        Err(_) => Ok(()),
    }
}

/// Verifies a Whereby webhook with the default tolerance.
pub fn verify_whereby(
    secret: Option<&SecretString>,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    verify_whereby_with_tolerance(secret, headers, body, now, WHEREBY_TOLERANCE)
}

pub fn verify_whereby_with_tolerance(
    secret: Option<&SecretString>,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    let secret = secret.ok_or(SignatureError::NotConfigured)?;
    let header = headers
        .get(WHEREBY_SIGNATURE_HEADER)
        .ok_or(SignatureError::Missing)?
        .to_str()
        .map_err(|_| invalid("signature header is not text"))?;
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => timestamp = Some(v.trim()),
            Some(("v1", v)) => candidates.push(v.trim()),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(invalid("missing t= in signature header"))?;
    if candidates.is_empty() {
        return Err(invalid("missing v1= in signature header"));
    }
    let seconds = parse_unix_seconds(timestamp).ok_or(invalid("timestamp is not a number"))?;
    check_fresh(seconds, now, tolerance)?;
    let mut mac = hmac(secret.expose_secret().as_bytes())?;
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    // Whereby may list several v1 values while it rotates secrets; one match is enough.
    let matched = candidates.iter().any(|c| {
        hex::decode(c)
            .map(|tag| mac.clone().verify_slice(&tag).is_ok())
            .unwrap_or(false)
    });
    if matched {
        Ok(())
    } else {
        Err(invalid("signature mismatch"))
    }
}

/// Headers of a valid Daily real-scheme request: `X-Webhook-Signature` and `X-Webhook-Timestamp`.
/// `secret_b64` is the webhook's `hmac` as Daily returns it (base64).
pub fn sign_daily(
    secret_b64: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<Vec<(&'static str, String)>, SecretNotBase64> {
    let key = decode_base64(secret_b64.trim().as_bytes()).ok_or(SecretNotBase64)?;
    let ts = timestamp.to_string();
    let tag = mac_bytes(&key, &[ts.as_bytes(), b".", body]);
    Ok(vec![
        (DAILY_SIGNATURE_HEADER, STANDARD.encode(tag)),
        (DAILY_TIMESTAMP_HEADER, ts),
    ])
}

/// Header of a valid seed-scheme Daily request: `X-Daily-Signature`. The verifier also wants the
/// body's `ts` within the tolerance of its clock: `fixtures::signed_request` sets it first.
pub fn sign_daily_seed(secret: &str, body: &[u8]) -> Vec<(&'static str, String)> {
    let tag = mac_bytes(secret.as_bytes(), &[body]);
    vec![(DAILY_SEED_SIGNATURE_HEADER, hex::encode(tag))]
}

/// Header of a valid Whereby request: `Whereby-Signature: t=<timestamp>,v1=<hex>`.
pub fn sign_whereby(secret: &str, timestamp: i64, body: &[u8]) -> Vec<(&'static str, String)> {
    let ts = timestamp.to_string();
    let tag = mac_bytes(secret.as_bytes(), &[ts.as_bytes(), b".", body]);
    vec![(
        WHEREBY_SIGNATURE_HEADER,
        format!("t={ts},v1={}", hex::encode(tag)),
    )]
}

/// Builds a `HeaderMap` from the `sign_*` output (values are ASCII by construction; anything
/// that is not is skipped rather than panicking).
pub fn header_map(pairs: &[(&'static str, String)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        if let Ok(v) = HeaderValue::from_str(value) {
            map.insert(HeaderName::from_static(name), v);
        }
    }
    map
}

fn hmac(key: &[u8]) -> Result<HmacSha256, SignatureError> {
    // HMAC accepts keys of any length; the error is unreachable but is not worth a panic.
    HmacSha256::new_from_slice(key).map_err(|_| invalid("unusable key"))
}

fn mac_bytes(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    match HmacSha256::new_from_slice(key) {
        Ok(mut mac) => {
            for p in parts {
                mac.update(p);
            }
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

fn decode_base64(input: &[u8]) -> Option<Vec<u8>> {
    let input = input.trim_ascii();
    if input.is_empty() {
        return None;
    }
    STANDARD
        .decode(input)
        .or_else(|_| STANDARD_NO_PAD.decode(input))
        .ok()
}

/// Unix seconds; a 13-digit value is taken as milliseconds because Daily does not document the
/// unit of `X-Webhook-Timestamp` (video-platform-apis.md A1) and some senders use ms.
fn parse_unix_seconds(s: &str) -> Option<i64> {
    let n: i64 = s.parse().ok()?;
    Some(if n.abs() >= 100_000_000_000 {
        n / 1000
    } else {
        n
    })
}

fn check_fresh(
    seconds: i64,
    now: DateTime<Utc>,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    let skew = now.timestamp().abs_diff(seconds);
    if skew > tolerance.as_secs() {
        let reason = if seconds > now.timestamp() {
            TIMESTAMP_IN_FUTURE
        } else {
            TIMESTAMP_TOO_OLD
        };
        return Err(invalid(reason));
    }
    Ok(())
}

/// [`check_fresh`] for a time in milliseconds (the seed's `ts`), compared to the millisecond, so
/// the boundary is exactly `tolerance`.
fn check_fresh_millis(
    millis: f64,
    now: DateTime<Utc>,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    let now_ms = now.timestamp_millis() as f64;
    let tolerance_ms = tolerance.as_millis() as f64;
    // NaN cannot come out of JSON; an infinite or huge value is outside any tolerance.
    if millis < now_ms - tolerance_ms {
        Err(invalid(TIMESTAMP_TOO_OLD))
    } else if millis > now_ms + tolerance_ms {
        Err(invalid(TIMESTAMP_IN_FUTURE))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAILY_SECRET: &str = "c2VjcmV0LWtleS1mb3ItZGFpbHktd2ViaG9va3M="; // base64
    const BODY: &[u8] = br#"{"version":"1.0.0","type":"participant.joined","id":"e1","payload":{"room":"r"},"event_ts":1700000000}"#;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    fn daily_headers(secret_b64: &str, ts: i64, body: &[u8]) -> HeaderMap {
        header_map(&sign_daily(secret_b64, ts, body).unwrap())
    }

    fn with_header(mut h: HeaderMap, name: &'static str, value: &str) -> HeaderMap {
        h.insert(
            HeaderName::from_static(name),
            HeaderValue::from_str(value).unwrap(),
        );
        h
    }

    fn reason(r: Result<(), SignatureError>) -> &'static str {
        match r {
            Err(SignatureError::Invalid { reason }) => reason,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    // ---- Daily real scheme ----

    #[test]
    fn daily_real_valid_signature_is_accepted() {
        let h = daily_headers(DAILY_SECRET, now().timestamp(), BODY);
        assert_eq!(
            verify_daily(Some(&secret(DAILY_SECRET)), &h, BODY, now()),
            Ok(())
        );
    }

    #[test]
    fn daily_real_key_is_the_base64_decoded_secret() {
        // Independently computed: key = b64decode(secret), msg = ts + "." + body, digest base64.
        let key = STANDARD.decode(DAILY_SECRET).unwrap();
        let mut mac = HmacSha256::new_from_slice(&key).unwrap();
        mac.update(b"1700000000.");
        mac.update(BODY);
        let sig = STANDARD.encode(mac.finalize().into_bytes());
        let h = header_map(&[
            (DAILY_SIGNATURE_HEADER, sig),
            (DAILY_TIMESTAMP_HEADER, "1700000000".into()),
        ]);
        assert_eq!(
            verify_daily(Some(&secret(DAILY_SECRET)), &h, BODY, now()),
            Ok(())
        );
    }

    #[test]
    fn daily_real_wrong_secret_is_invalid() {
        let h = daily_headers("b3RoZXItc2VjcmV0", now().timestamp(), BODY);
        assert_eq!(
            reason(verify_daily(Some(&secret(DAILY_SECRET)), &h, BODY, now())),
            "signature mismatch"
        );
    }

    #[test]
    fn daily_real_tampered_body_is_invalid() {
        let h = daily_headers(DAILY_SECRET, now().timestamp(), BODY);
        let tampered = BODY
            .to_vec()
            .into_iter()
            .map(|b| if b == b'r' { b's' } else { b })
            .collect::<Vec<_>>();
        assert_eq!(
            reason(verify_daily(
                Some(&secret(DAILY_SECRET)),
                &h,
                &tampered,
                now()
            )),
            "signature mismatch"
        );
    }

    #[test]
    fn daily_real_tampered_timestamp_is_invalid() {
        let h = daily_headers(DAILY_SECRET, now().timestamp(), BODY);
        let h = with_header(h, DAILY_TIMESTAMP_HEADER, "1700000001");
        assert_eq!(
            reason(verify_daily(Some(&secret(DAILY_SECRET)), &h, BODY, now())),
            "signature mismatch"
        );
    }

    #[test]
    fn daily_real_empty_signature_is_invalid_not_missing() {
        let h = with_header(
            daily_headers(DAILY_SECRET, now().timestamp(), BODY),
            DAILY_SIGNATURE_HEADER,
            "",
        );
        assert!(matches!(
            verify_daily(Some(&secret(DAILY_SECRET)), &h, BODY, now()),
            Err(SignatureError::Invalid { .. })
        ));
    }

    #[test]
    fn daily_real_truncated_signature_is_invalid() {
        let pairs = sign_daily(DAILY_SECRET, now().timestamp(), BODY).unwrap();
        let full = STANDARD.decode(&pairs[0].1).unwrap();
        let short = STANDARD.encode(&full[..16]);
        let h = with_header(header_map(&pairs), DAILY_SIGNATURE_HEADER, &short);
        assert_eq!(
            reason(verify_daily(Some(&secret(DAILY_SECRET)), &h, BODY, now())),
            "signature mismatch"
        );
    }

    #[test]
    fn daily_real_garbage_signature_is_invalid() {
        let h = with_header(
            daily_headers(DAILY_SECRET, now().timestamp(), BODY),
            DAILY_SIGNATURE_HEADER,
            "not*base64!!",
        );
        assert_eq!(
            reason(verify_daily(Some(&secret(DAILY_SECRET)), &h, BODY, now())),
            "signature is not base64"
        );
    }

    #[test]
    fn daily_real_stale_timestamp_is_invalid() {
        let ts = now().timestamp() - 301;
        let h = daily_headers(DAILY_SECRET, ts, BODY);
        assert_eq!(
            reason(verify_daily(Some(&secret(DAILY_SECRET)), &h, BODY, now())),
            "timestamp is too old"
        );
        // At the edge of the tolerance it is still accepted.
        let h = daily_headers(DAILY_SECRET, now().timestamp() - 300, BODY);
        assert_eq!(
            verify_daily(Some(&secret(DAILY_SECRET)), &h, BODY, now()),
            Ok(())
        );
    }

    #[test]
    fn daily_real_future_timestamp_is_invalid() {
        let h = daily_headers(DAILY_SECRET, now().timestamp() + 301, BODY);
        assert_eq!(
            reason(verify_daily(Some(&secret(DAILY_SECRET)), &h, BODY, now())),
            "timestamp is in the future"
        );
    }

    #[test]
    fn daily_real_tolerance_is_configurable() {
        let h = daily_headers(DAILY_SECRET, now().timestamp() - 30, BODY);
        let s = secret(DAILY_SECRET);
        assert!(
            verify_daily_with_tolerance(Some(&s), &h, BODY, now(), Duration::from_secs(10))
                .is_err()
        );
        assert!(
            verify_daily_with_tolerance(Some(&s), &h, BODY, now(), Duration::from_secs(60)).is_ok()
        );
    }

    #[test]
    fn daily_real_millisecond_timestamp_is_checked_for_freshness() {
        let ts_ms = now().timestamp() * 1000;
        let h = daily_headers(DAILY_SECRET, ts_ms, BODY);
        assert_eq!(
            verify_daily(Some(&secret(DAILY_SECRET)), &h, BODY, now()),
            Ok(())
        );
        let h = daily_headers(DAILY_SECRET, (now().timestamp() - 3600) * 1000, BODY);
        assert_eq!(
            reason(verify_daily(Some(&secret(DAILY_SECRET)), &h, BODY, now())),
            "timestamp is too old"
        );
    }

    #[test]
    fn daily_real_missing_timestamp_is_invalid() {
        let mut h = daily_headers(DAILY_SECRET, now().timestamp(), BODY);
        h.remove(DAILY_TIMESTAMP_HEADER);
        assert_eq!(
            reason(verify_daily(Some(&secret(DAILY_SECRET)), &h, BODY, now())),
            "missing timestamp header"
        );
        let h = with_header(
            daily_headers(DAILY_SECRET, now().timestamp(), BODY),
            DAILY_TIMESTAMP_HEADER,
            "yesterday",
        );
        assert_eq!(
            reason(verify_daily(Some(&secret(DAILY_SECRET)), &h, BODY, now())),
            "timestamp is not a number"
        );
    }

    #[test]
    fn daily_unset_secret_rejects_even_a_valid_signature() {
        let h = daily_headers(DAILY_SECRET, now().timestamp(), BODY);
        assert_eq!(
            verify_daily(None, &h, BODY, now()),
            Err(SignatureError::NotConfigured)
        );
        let seed = header_map(&sign_daily_seed(DAILY_SECRET, BODY));
        assert_eq!(
            verify_daily(None, &seed, BODY, now()),
            Err(SignatureError::NotConfigured)
        );
        assert_eq!(
            verify_daily(None, &HeaderMap::new(), BODY, now()),
            Err(SignatureError::NotConfigured)
        );
    }

    #[test]
    fn daily_without_any_signature_header_is_missing() {
        assert_eq!(
            verify_daily(Some(&secret(DAILY_SECRET)), &HeaderMap::new(), BODY, now()),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn sign_daily_refuses_a_secret_that_is_not_base64() {
        assert_eq!(
            sign_daily("not base64 at all!", 1, BODY),
            Err(SecretNotBase64)
        );
    }

    // ---- Daily seed scheme ----

    const SEED_SECRET: &str = "seed-secret";
    /// A seed envelope whose signed `ts` is [`now`], in milliseconds.
    const SEED_BODY: &[u8] = br#"{"type":"participant.joined","id":"e1","ts":1700000000000,"data":{"room":{"name":"r"}}}"#;

    fn seed_body_at(ts: &str) -> Vec<u8> {
        format!(r#"{{"type":"participant.joined","id":"e1","ts":{ts},"data":{{"room":{{"name":"r"}}}}}}"#)
            .into_bytes()
    }

    fn verify_seed(body: &[u8]) -> Result<(), SignatureError> {
        let h = header_map(&sign_daily_seed(SEED_SECRET, body));
        verify_daily(Some(&secret(SEED_SECRET)), &h, body, now())
    }

    #[test]
    fn daily_seed_valid_signature_is_accepted() {
        let h = header_map(&sign_daily_seed(SEED_SECRET, SEED_BODY));
        assert_eq!(
            verify_daily(Some(&secret(SEED_SECRET)), &h, SEED_BODY, now()),
            Ok(())
        );
    }

    #[test]
    fn daily_seed_signature_is_hex_hmac_of_the_body_with_the_secret_bytes() {
        let mut mac = HmacSha256::new_from_slice(SEED_SECRET.as_bytes()).unwrap();
        mac.update(SEED_BODY);
        let h = header_map(&[(
            DAILY_SEED_SIGNATURE_HEADER,
            hex::encode(mac.finalize().into_bytes()),
        )]);
        assert_eq!(
            verify_daily(Some(&secret(SEED_SECRET)), &h, SEED_BODY, now()),
            Ok(())
        );
    }

    #[test]
    fn daily_seed_wrong_secret_is_invalid() {
        let h = header_map(&sign_daily_seed("other", SEED_BODY));
        assert_eq!(
            reason(verify_daily(
                Some(&secret(SEED_SECRET)),
                &h,
                SEED_BODY,
                now()
            )),
            "signature mismatch"
        );
    }

    #[test]
    fn daily_seed_tampered_body_is_invalid() {
        let h = header_map(&sign_daily_seed(SEED_SECRET, SEED_BODY));
        assert_eq!(
            reason(verify_daily(
                Some(&secret(SEED_SECRET)),
                &h,
                b"{\"type\":\"x\"}",
                now()
            )),
            "signature mismatch"
        );
    }

    #[test]
    fn daily_seed_empty_signature_is_invalid() {
        let h = header_map(&[(DAILY_SEED_SIGNATURE_HEADER, String::new())]);
        assert!(matches!(
            verify_daily(Some(&secret(SEED_SECRET)), &h, SEED_BODY, now()),
            Err(SignatureError::Invalid { .. })
        ));
    }

    #[test]
    fn daily_seed_truncated_signature_is_invalid() {
        let full = sign_daily_seed(SEED_SECRET, SEED_BODY).remove(0).1;
        let h = header_map(&[(DAILY_SEED_SIGNATURE_HEADER, full[..32].to_owned())]);
        assert_eq!(
            reason(verify_daily(
                Some(&secret(SEED_SECRET)),
                &h,
                SEED_BODY,
                now()
            )),
            "signature mismatch"
        );
    }

    #[test]
    fn daily_seed_garbage_signature_is_invalid() {
        let h = header_map(&[(DAILY_SEED_SIGNATURE_HEADER, "zz-not-hex".into())]);
        assert_eq!(
            reason(verify_daily(
                Some(&secret(SEED_SECRET)),
                &h,
                SEED_BODY,
                now()
            )),
            "signature is not hex"
        );
    }

    #[test]
    fn daily_seed_ignores_the_unsigned_timestamp_header() {
        // A stale X-Webhook-Timestamp next to a seed signature changes nothing: the seed scheme
        // signs no header time, only the body's `ts`.
        let mut h = header_map(&sign_daily_seed(SEED_SECRET, SEED_BODY));
        h.insert(DAILY_TIMESTAMP_HEADER, HeaderValue::from_static("1"));
        assert_eq!(
            verify_daily(Some(&secret(SEED_SECRET)), &h, SEED_BODY, now()),
            Ok(())
        );
    }

    #[test]
    fn daily_seed_ts_older_than_the_tolerance_is_stale() {
        let ten_minutes_ago = (now().timestamp_millis() - 600_000).to_string();
        let e = verify_seed(&seed_body_at(&ten_minutes_ago)).unwrap_err();
        assert_eq!(e, invalid(TIMESTAMP_TOO_OLD));
        assert!(e.is_stale(), "counted as Reason=stale");
    }

    #[test]
    fn daily_seed_ts_at_the_tolerance_is_accepted_and_a_millisecond_more_is_stale() {
        let edge = now().timestamp_millis() - 300_000;
        assert_eq!(verify_seed(&seed_body_at(&edge.to_string())), Ok(()));
        assert!(verify_seed(&seed_body_at(&(edge - 1).to_string()))
            .unwrap_err()
            .is_stale());
        let future_edge = now().timestamp_millis() + 300_000;
        assert_eq!(verify_seed(&seed_body_at(&future_edge.to_string())), Ok(()));
        assert_eq!(
            verify_seed(&seed_body_at(&(future_edge + 1).to_string())),
            Err(invalid(TIMESTAMP_IN_FUTURE))
        );
    }

    #[test]
    fn daily_seed_ts_may_be_a_float_of_milliseconds() {
        assert_eq!(verify_seed(&seed_body_at("1.7e12")), Ok(()));
        assert!(verify_seed(&seed_body_at("1.0e300")).is_err());
    }

    #[test]
    fn daily_seed_without_ts_is_invalid_not_stale() {
        let body = br#"{"type":"participant.joined","id":"e1","data":{"room":{"name":"r"}}}"#;
        let e = verify_seed(body).unwrap_err();
        assert_eq!(reason(Err(e.clone())), "seed event has no ts");
        assert!(!e.is_stale());
    }

    #[test]
    fn daily_seed_signed_body_that_is_not_json_is_left_to_the_parser() {
        // A signed malformed body is a 422 from the parser, not a signature rejection.
        assert_eq!(verify_seed(b"not json"), Ok(()));
        assert_eq!(verify_seed(br#"{"ts":"yesterday"}"#), Ok(()));
        assert_eq!(verify_seed(b"[null]"), Ok(()));
    }

    #[test]
    fn daily_seed_wrong_signature_on_a_stale_body_is_a_mismatch() {
        // The signature is checked first: an unsigned body's `ts` is never looked at.
        let stale = seed_body_at("1");
        let h = header_map(&sign_daily_seed("other", &stale));
        assert_eq!(
            reason(verify_daily(Some(&secret(SEED_SECRET)), &h, &stale, now())),
            "signature mismatch"
        );
    }

    #[test]
    fn daily_real_header_takes_precedence_over_seed_header() {
        // A valid seed signature cannot rescue an invalid real one.
        let mut h = header_map(&sign_daily_seed(DAILY_SECRET, BODY));
        h.insert(DAILY_SIGNATURE_HEADER, HeaderValue::from_static("AAAA"));
        h.insert(
            DAILY_TIMESTAMP_HEADER,
            HeaderValue::from_static("1700000000"),
        );
        assert!(verify_daily(Some(&secret(DAILY_SECRET)), &h, BODY, now()).is_err());
    }

    // ---- Whereby ----

    const WB_SECRET: &str = "whereby-secret";

    fn wb_headers(secret: &str, ts: i64, body: &[u8]) -> HeaderMap {
        header_map(&sign_whereby(secret, ts, body))
    }

    #[test]
    fn whereby_valid_signature_is_accepted() {
        let h = wb_headers(WB_SECRET, now().timestamp(), BODY);
        assert_eq!(
            verify_whereby(Some(&secret(WB_SECRET)), &h, BODY, now()),
            Ok(())
        );
    }

    #[test]
    fn whereby_signature_is_hex_hmac_of_t_dot_body_with_plain_secret() {
        let mut mac = HmacSha256::new_from_slice(WB_SECRET.as_bytes()).unwrap();
        mac.update(b"1700000000.");
        mac.update(BODY);
        let v = format!(
            "t=1700000000,v1={}",
            hex::encode(mac.finalize().into_bytes())
        );
        let h = header_map(&[(WHEREBY_SIGNATURE_HEADER, v)]);
        assert_eq!(
            verify_whereby(Some(&secret(WB_SECRET)), &h, BODY, now()),
            Ok(())
        );
    }

    #[test]
    fn whereby_wrong_secret_is_invalid() {
        let h = wb_headers("nope", now().timestamp(), BODY);
        assert_eq!(
            reason(verify_whereby(Some(&secret(WB_SECRET)), &h, BODY, now())),
            "signature mismatch"
        );
    }

    #[test]
    fn whereby_tampered_body_is_invalid() {
        let h = wb_headers(WB_SECRET, now().timestamp(), BODY);
        assert_eq!(
            reason(verify_whereby(Some(&secret(WB_SECRET)), &h, b"{}", now())),
            "signature mismatch"
        );
    }

    #[test]
    fn whereby_empty_signature_is_invalid() {
        for v in ["", "t=1700000000,v1=", "t=1700000000"] {
            let h = header_map(&[(WHEREBY_SIGNATURE_HEADER, v.into())]);
            assert!(
                matches!(
                    verify_whereby(Some(&secret(WB_SECRET)), &h, BODY, now()),
                    Err(SignatureError::Invalid { .. })
                ),
                "{v:?}"
            );
        }
    }

    #[test]
    fn whereby_truncated_signature_is_invalid() {
        let full = sign_whereby(WB_SECRET, now().timestamp(), BODY).remove(0).1;
        let h = header_map(&[(WHEREBY_SIGNATURE_HEADER, full[..full.len() - 2].to_owned())]);
        assert_eq!(
            reason(verify_whereby(Some(&secret(WB_SECRET)), &h, BODY, now())),
            "signature mismatch"
        );
    }

    #[test]
    fn whereby_garbage_signature_is_invalid() {
        let h = header_map(&[(WHEREBY_SIGNATURE_HEADER, "t=1700000000,v1=xyz!".into())]);
        assert_eq!(
            reason(verify_whereby(Some(&secret(WB_SECRET)), &h, BODY, now())),
            "signature mismatch"
        );
        let h = header_map(&[(WHEREBY_SIGNATURE_HEADER, "garbage".into())]);
        assert_eq!(
            reason(verify_whereby(Some(&secret(WB_SECRET)), &h, BODY, now())),
            "missing t= in signature header"
        );
        let h = header_map(&[(WHEREBY_SIGNATURE_HEADER, "t=soon,v1=00".into())]);
        assert_eq!(
            reason(verify_whereby(Some(&secret(WB_SECRET)), &h, BODY, now())),
            "timestamp is not a number"
        );
    }

    #[test]
    fn whereby_stale_timestamp_is_invalid() {
        let h = wb_headers(WB_SECRET, now().timestamp() - 61, BODY);
        assert_eq!(
            reason(verify_whereby(Some(&secret(WB_SECRET)), &h, BODY, now())),
            "timestamp is too old"
        );
        let h = wb_headers(WB_SECRET, now().timestamp() - 60, BODY);
        assert_eq!(
            verify_whereby(Some(&secret(WB_SECRET)), &h, BODY, now()),
            Ok(())
        );
    }

    #[test]
    fn whereby_future_timestamp_is_invalid() {
        let h = wb_headers(WB_SECRET, now().timestamp() + 61, BODY);
        assert_eq!(
            reason(verify_whereby(Some(&secret(WB_SECRET)), &h, BODY, now())),
            "timestamp is in the future"
        );
    }

    #[test]
    fn whereby_unset_secret_rejects_even_a_valid_signature() {
        let h = wb_headers(WB_SECRET, now().timestamp(), BODY);
        assert_eq!(
            verify_whereby(None, &h, BODY, now()),
            Err(SignatureError::NotConfigured)
        );
    }

    #[test]
    fn whereby_without_signature_header_is_missing() {
        assert_eq!(
            verify_whereby(Some(&secret(WB_SECRET)), &HeaderMap::new(), BODY, now()),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn whereby_accepts_any_matching_v1_among_several() {
        let good = sign_whereby(WB_SECRET, now().timestamp(), BODY).remove(0).1;
        let v1 = good.split_once("v1=").unwrap().1;
        let v = format!("t={},v1={},v1={v1}", now().timestamp(), "00".repeat(32));
        let h = header_map(&[(WHEREBY_SIGNATURE_HEADER, v)]);
        assert_eq!(
            verify_whereby(Some(&secret(WB_SECRET)), &h, BODY, now()),
            Ok(())
        );
    }
}
