//! Property tests: whatever bytes and headers a sender puts in a request, the verifiers and the
//! parsers return a value (never panic), a forged signature is never accepted, and a correctly
//! signed body always is.

use chrono::{DateTime, Utc};
use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use secrecy::SecretString;
use serde_json::{Map, Value};

use super::fixtures::{signed_request, Scheme};
use super::{daily, whereby};
use crate::webhook::signature::{
    header_map, verify_daily, verify_whereby, DAILY_SEED_SIGNATURE_HEADER, DAILY_SIGNATURE_HEADER,
    DAILY_TIMESTAMP_HEADER, WHEREBY_SIGNATURE_HEADER,
};

const SECRET: &str = "cHJvcGVydHktdGVzdC1zZWNyZXQ=";

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default()
}

/// Field names the parsers look at, so generated objects hit the typed paths, not just
/// "unknown field".
const KEYS: &[&str] = &[
    "type",
    "id",
    "version",
    "payload",
    "data",
    "event_ts",
    "ts",
    "room",
    "room_name",
    "name",
    "session_id",
    "user_id",
    "user_name",
    "joined_at",
    "duration",
    "recording_id",
    "s3_key",
    "error_msg",
    "error",
    "participant",
    "recording",
    "download_url",
    "createdAt",
    "roomName",
    "numClients",
    "meetingId",
    "test",
];

const TYPES: &[&str] = &[
    "participant.joined",
    "participant.left",
    "meeting.started",
    "meeting.ended",
    "recording.started",
    "recording.ready-to-download",
    "recording.error",
    "room.client.joined",
    "room.client.left",
    "test",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN/inf", |f| f.is_finite())
            .prop_map(Value::from),
        prop::sample::select(TYPES).prop_map(|s| Value::String(s.to_owned())),
        ".{0,12}".prop_map(Value::String),
        Just(Value::String("2025-01-01T10:00:00Z".into())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..8).prop_map(|kv| {
                Value::Object(
                    kv.into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
}

fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..80),
        "t=[0-9]{0,12},v1=[0-9a-f]{0,66}".prop_map(String::into_bytes),
        "[A-Za-z0-9+/=]{0,48}".prop_map(String::into_bytes),
        "[0-9]{0,14}".prop_map(String::into_bytes),
    ]
}

fn headers(values: &[(&'static str, Vec<u8>)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in values {
        if let Ok(v) = HeaderValue::from_bytes(value) {
            map.insert(HeaderName::from_static(name), v);
        }
    }
    map
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parsers_never_panic_on_arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = daily::is_probe(&body);
        let _ = daily::parse(&body);
        let _ = whereby::parse(&body);
    }

    #[test]
    fn parsers_never_panic_on_arbitrary_json(value in json_value()) {
        let body = serde_json::to_vec(&value).unwrap_or_default();
        let _ = daily::is_probe(&body);
        let _ = daily::parse(&body);
        let _ = whereby::parse(&body);
    }

    #[test]
    fn parsers_never_panic_on_envelopes_of_known_types(
        kind in prop::sample::select(TYPES),
        id in json_value(),
        inner in json_value(),
        ts in json_value(),
    ) {
        for (inner_key, ts_key) in [("payload", "event_ts"), ("data", "ts"), ("data", "createdAt")] {
            let mut obj = Map::new();
            obj.insert("type".into(), Value::String(kind.to_owned()));
            obj.insert("id".into(), id.clone());
            obj.insert(inner_key.into(), inner.clone());
            obj.insert(ts_key.into(), ts.clone());
            let body = serde_json::to_vec(&Value::Object(obj)).unwrap_or_default();
            let _ = daily::parse(&body);
            let _ = whereby::parse(&body);
        }
    }

    #[test]
    fn verifiers_never_panic_and_never_accept_forged_headers(
        body in prop::collection::vec(any::<u8>(), 0..256),
        sig in header_value(),
        ts in header_value(),
        seed in header_value(),
        wb in header_value(),
    ) {
        let secret = SecretString::from(SECRET.to_owned());
        let h = headers(&[
            (DAILY_SIGNATURE_HEADER, sig),
            (DAILY_TIMESTAMP_HEADER, ts),
            (DAILY_SEED_SIGNATURE_HEADER, seed),
            (WHEREBY_SIGNATURE_HEADER, wb),
        ]);
        prop_assert!(verify_daily(Some(&secret), &h, &body, now()).is_err());
        prop_assert!(verify_whereby(Some(&secret), &h, &body, now()).is_err());
        prop_assert!(verify_daily(None, &h, &body, now()).is_err());
    }

    #[test]
    fn a_correctly_signed_body_always_verifies_and_a_changed_one_never(
        body in prop::collection::vec(any::<u8>(), 0..256),
        flip in any::<prop::sample::Index>(),
    ) {
        let secret = SecretString::from(SECRET.to_owned());
        for scheme in [Scheme::Daily, Scheme::DailySeed, Scheme::Whereby] {
            let (h, body) = signed_request(scheme, SECRET, now().timestamp(), &body).unwrap();
            let h = header_map(&h);
            let verify = |b: &[u8]| match scheme {
                Scheme::Whereby => verify_whereby(Some(&secret), &h, b, now()),
                _ => verify_daily(Some(&secret), &h, b, now()),
            };
            prop_assert_eq!(verify(&body), Ok(()));
            if !body.is_empty() {
                let mut changed = body.clone();
                let i = flip.index(changed.len());
                changed[i] ^= 0x01;
                prop_assert!(verify(&changed).is_err());
            }
        }
    }
}
