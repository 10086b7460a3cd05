//! Signed webhook requests from the fixtures in `events/`: used by handler tests, the
//! `sign-webhook` tool (curl demos, `cargo lambda invoke --data-file`) and black-box tests.
//!
//! The fixtures name their room `fixture-room` (Whereby: `/fixture-room`); [`retarget`] swaps in
//! a real meeting's room name and a fresh event id before signing.

use std::str::FromStr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::webhook::signature::{sign_daily, sign_daily_seed, sign_whereby, SecretNotBase64};

/// The room name every fixture uses.
pub const FIXTURE_ROOM: &str = "fixture-room";

/// Which signature scheme to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `X-Webhook-Signature` + `X-Webhook-Timestamp`; the secret is base64.
    Daily,
    /// The seed's `X-Daily-Signature` (hex of the body).
    DailySeed,
    /// `Whereby-Signature: t=..,v1=..`.
    Whereby,
}

impl Scheme {
    /// The route this scheme's platform posts to.
    pub fn path(self) -> &'static str {
        match self {
            Scheme::Daily | Scheme::DailySeed => "/v1/daily_webhook",
            Scheme::Whereby => "/v1/whereby",
        }
    }
}

impl FromStr for Scheme {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "daily" => Ok(Scheme::Daily),
            "daily-seed" => Ok(Scheme::DailySeed),
            "whereby" => Ok(Scheme::Whereby),
            other => Err(format!(
                "unknown scheme {other:?}: expected daily, daily-seed or whereby"
            )),
        }
    }
}

/// Header name and value pairs, as the `sign_*` helpers produce them.
pub type Headers = Vec<(&'static str, String)>;

/// A request ready to send: the body as signed and its signature headers (`content-type`
/// included). The seed scheme signs its time only inside the body, so for it the top-level `ts`
/// of a JSON object body is set to `timestamp` (in milliseconds) before signing, as a sender
/// does at the moment it sends; the other schemes sign `timestamp` in a header and keep the body
/// byte for byte.
pub fn signed_request(
    scheme: Scheme,
    secret: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<(Headers, Vec<u8>), SecretNotBase64> {
    let body = match scheme {
        Scheme::DailySeed => stamp_seed_ts(body, timestamp),
        Scheme::Daily | Scheme::Whereby => body.to_vec(),
    };
    Ok((signed_headers(scheme, secret, timestamp, &body)?, body))
}

/// `body` with its top-level `ts` set to `timestamp` seconds as milliseconds; a body that is not
/// a JSON object is returned unchanged (tests of malformed bodies sign them as they are).
pub fn stamp_seed_ts(body: &[u8], timestamp: i64) -> Vec<u8> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(mut map)) => {
            map.insert("ts".into(), json!(timestamp.saturating_mul(1000)));
            serde_json::to_vec(&Value::Object(map)).unwrap_or_else(|_| body.to_vec())
        }
        _ => body.to_vec(),
    }
}

/// Signature headers for `body` exactly as given (`content-type` included). For the seed scheme
/// the body's `ts` must already be current: use [`signed_request`].
pub fn signed_headers(
    scheme: Scheme,
    secret: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<Vec<(&'static str, String)>, SecretNotBase64> {
    let mut headers = match scheme {
        Scheme::Daily => sign_daily(secret, timestamp, body)?,
        Scheme::DailySeed => sign_daily_seed(secret, body),
        Scheme::Whereby => sign_whereby(secret, timestamp, body),
    };
    headers.push(("content-type", "application/json".to_owned()));
    Ok(headers)
}

/// Replaces the fixture room (`fixture-room`, `/fixture-room`, also inside keys such as
/// `.../fixture-room/...`) with `room`, and the top-level `id` with `event_id`, each when given.
/// Returns the compact JSON to sign and send.
pub fn retarget(
    fixture: &[u8],
    room: Option<&str>,
    event_id: Option<&str>,
) -> Result<Vec<u8>, String> {
    let mut value: Value =
        serde_json::from_slice(fixture).map_err(|e| format!("fixture is not JSON: {e}"))?;
    if let Some(room) = room {
        replace_room(&mut value, room);
    }
    if let (Some(id), Some(obj)) = (event_id, value.as_object_mut()) {
        obj.insert("id".into(), Value::String(id.to_owned()));
    }
    serde_json::to_vec(&value).map_err(|e| e.to_string())
}

fn replace_room(value: &mut Value, room: &str) {
    match value {
        Value::String(s) if s.contains(FIXTURE_ROOM) => *s = s.replace(FIXTURE_ROOM, room),
        Value::Array(items) => items.iter_mut().for_each(|v| replace_room(v, room)),
        Value::Object(map) => map.values_mut().for_each(|v| replace_room(v, room)),
        _ => {}
    }
}

/// An API Gateway HTTP API (payload v2) POST event carrying `body` byte for byte (base64), as
/// `cargo lambda invoke --data-file` and `lambda_http::request::from_str` take it.
pub fn apigw_v2_event(path: &str, headers: &[(&str, String)], body: &[u8]) -> Value {
    let headers: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), Value::String(v.clone())))
        .collect();
    json!({
        "version": "2.0",
        "routeKey": format!("POST {path}"),
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "http": {
                "method": "POST",
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "sign-webhook"
            },
            "requestId": "sign-webhook",
            "routeKey": format!("POST {path}"),
            "stage": "$default",
            "time": "01/Jan/2025:10:00:00 +0000",
            "timeEpoch": 1735725600000_i64
        },
        "body": STANDARD.encode(body),
        "isBase64Encoded": true
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::signature::{header_map, verify_daily, verify_whereby};
    use chrono::DateTime;
    use secrecy::SecretString;

    #[test]
    fn retarget_swaps_room_everywhere_and_sets_the_id() {
        let out = retarget(
            br#"{"id":"x","data":{"roomName":"/fixture-room","k":"a/fixture-room/1","n":1}}"#,
            Some("real-room"),
            Some("new-id"),
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            json!({"id":"new-id","data":{"roomName":"/real-room","k":"a/real-room/1","n":1}})
        );
    }

    #[test]
    fn signed_headers_verify_with_the_same_secret() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let body = br#"{"type":"x","id":"1"}"#;
        let daily_secret = "c2VjcmV0";
        let h = signed_headers(Scheme::Daily, daily_secret, now.timestamp(), body).unwrap();
        let s = SecretString::from(daily_secret.to_owned());
        assert_eq!(verify_daily(Some(&s), &header_map(&h), body, now), Ok(()));
        let (h, seed_body) =
            signed_request(Scheme::DailySeed, "plain", now.timestamp(), body).unwrap();
        let s = SecretString::from("plain".to_owned());
        assert_eq!(
            verify_daily(Some(&s), &header_map(&h), &seed_body, now),
            Ok(())
        );
        let h = signed_headers(Scheme::Whereby, "plain", now.timestamp(), body).unwrap();
        assert_eq!(verify_whereby(Some(&s), &header_map(&h), body, now), Ok(()));
    }

    #[test]
    fn seed_requests_carry_the_signing_time_and_others_keep_their_bytes() {
        let body = br#"{"type":"x","id":"1","ts":1}"#;
        let (_, seed) = signed_request(Scheme::DailySeed, "s", 1_700_000_000, body).unwrap();
        let v: Value = serde_json::from_slice(&seed).unwrap();
        assert_eq!(v["ts"], json!(1_700_000_000_000_i64));
        assert_eq!(v["id"], "1");
        let (_, real) = signed_request(Scheme::Daily, "c2VjcmV0", 1_700_000_000, body).unwrap();
        assert_eq!(real, body);
        let (_, not_json) = signed_request(Scheme::DailySeed, "s", 1, b"nope").unwrap();
        assert_eq!(not_json, b"nope");
    }

    #[test]
    fn apigw_event_round_trips_the_exact_body() {
        let body = b"{\"a\": \"\xc3\xa9\"}  ";
        let event = apigw_v2_event("/v1/whereby", &[("X-Test", "1".into())], body);
        let request = lambda_http::request::from_str(&event.to_string()).unwrap();
        assert_eq!(request.body().as_ref(), body);
        assert_eq!(request.headers()["x-test"], "1");
        assert_eq!(request.uri().path(), "/v1/whereby");
    }

    fn events_dir() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events")
    }

    #[test]
    fn every_daily_fixture_parses_into_its_typed_event() {
        use crate::webhook::daily::{self, EventKind, Format};
        for (dir, format) in [("real", Format::Real), ("seed", Format::Seed)] {
            for name in [
                "participant.joined",
                "participant.left",
                "meeting.started",
                "meeting.ended",
                "recording.started",
                "recording.ready-to-download",
                "recording.error",
            ] {
                let path = events_dir().join(format!("daily/{dir}/{name}.json"));
                let body = std::fs::read(&path).unwrap();
                let event = daily::parse(&body).unwrap_or_else(|e| panic!("{path:?}: {e}"));
                assert_eq!(event.format, format, "{path:?}");
                assert_eq!(event.event_type, name, "{path:?}");
                assert_ne!(event.kind, EventKind::Unknown, "{path:?}");
            }
        }
        assert!(daily::is_probe(
            &std::fs::read(events_dir().join("daily/probe.json")).unwrap()
        ));
    }

    #[test]
    fn every_whereby_fixture_parses() {
        use crate::webhook::whereby::{self, EventKind};
        for (name, known) in [
            ("room.client.joined", true),
            ("room.client.left", true),
            ("recording.finished", false),
        ] {
            let body = std::fs::read(events_dir().join(format!("whereby/{name}.json"))).unwrap();
            let event = whereby::parse(&body).unwrap();
            assert_eq!(event.kind != EventKind::Unknown, known, "{name}");
        }
    }
}
