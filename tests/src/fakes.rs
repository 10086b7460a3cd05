//! Fake Daily and Whereby REST APIs (wiremock, on loopback) that answer only requests with
//! the right API key, for tests that run the stack or `reflector-admin` against them.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{json, Value};
use wiremock::matchers::{header, method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const DAILY_KEY: &str = "daily-test-key";
pub const WHEREBY_KEY: &str = "whereby-test-key";

/// Fake Daily: `POST /rooms` echoes the requested name; `DELETE /rooms/:name` deletes it.
struct DailyCreate;

impl Respond for DailyCreate {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let Some(name) = body["name"].as_str() else {
            return ResponseTemplate::new(400)
                .set_body_json(json!({"error": "invalid-request-error", "info": "name missing"}));
        };
        ResponseTemplate::new(200).set_body_json(json!({
            "id": uuid::Uuid::new_v4().to_string(),
            "name": name,
            "api_created": true,
            "privacy": body["privacy"],
            "url": format!("https://fake.daily.co/{name}"),
            "created_at": "2024-03-12T10:15:42.000Z",
            "config": body["properties"],
        }))
    }
}

/// Fake Whereby: `POST /meetings` answers 201 with a fresh meeting.
struct WherebyCreate(AtomicUsize);

impl Respond for WherebyCreate {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let n = self.0.fetch_add(1, Ordering::SeqCst);
        let prefix = body["roomNamePrefix"].as_str().unwrap_or("");
        let name = format!("/{prefix}{n:08}");
        ResponseTemplate::new(201).set_body_json(json!({
            "meetingId": format!("{}", 1000 + n),
            "roomName": name,
            "roomUrl": format!("https://fake.whereby.com{name}"),
            "hostRoomUrl": format!("https://fake.whereby.com{name}?roomKey=host"),
            "startDate": "2024-03-12T10:15:42.000Z",
            "endDate": body["endDate"],
        }))
    }
}

pub struct Fakes {
    pub daily: MockServer,
    pub whereby: MockServer,
}

impl Fakes {
    pub async fn start() -> Self {
        let daily = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/rooms"))
            .and(header(
                "authorization",
                format!("Bearer {DAILY_KEY}").as_str(),
            ))
            .respond_with(DailyCreate)
            .mount(&daily)
            .await;
        Mock::given(method("DELETE"))
            .and(path_regex(r"^/v1/rooms/[A-Za-z0-9_-]+$"))
            .and(header(
                "authorization",
                format!("Bearer {DAILY_KEY}").as_str(),
            ))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"deleted": true})))
            .mount(&daily)
            .await;
        let whereby = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/meetings"))
            .and(header(
                "authorization",
                format!("Bearer {WHEREBY_KEY}").as_str(),
            ))
            .respond_with(WherebyCreate(AtomicUsize::new(0)))
            .mount(&whereby)
            .await;
        Mock::given(method("DELETE"))
            .and(path_regex(r"^/v1/meetings/[0-9]+$"))
            .respond_with(ResponseTemplate::new(204))
            .mount(&whereby)
            .await;
        Self { daily, whereby }
    }

    pub fn vars(&self) -> Vec<(String, String)> {
        vec![
            ("DAILY_API_URL".into(), format!("{}/v1", self.daily.uri())),
            ("DAILY_API_KEY".into(), DAILY_KEY.into()),
            (
                "WHEREBY_API_URL".into(),
                format!("{}/v1", self.whereby.uri()),
            ),
            ("WHEREBY_API_KEY".into(), WHEREBY_KEY.into()),
        ]
    }

    /// Daily rooms created and not deleted, by name.
    pub async fn live_daily_rooms(&self) -> BTreeSet<String> {
        let mut live = BTreeSet::new();
        let mut deleted = Vec::new();
        for r in self.daily.received_requests().await.unwrap_or_default() {
            let p = r.url.path().to_owned();
            if r.method.as_str() == "POST" && p == "/v1/rooms" {
                let body: Value = serde_json::from_slice(&r.body).unwrap();
                live.insert(body["name"].as_str().unwrap().to_owned());
            } else if r.method.as_str() == "DELETE" {
                deleted.push(p.trim_start_matches("/v1/rooms/").to_owned());
            }
        }
        for d in deleted {
            assert!(
                live.remove(&d),
                "deleted a room that was never created: {d}"
            );
        }
        live
    }

    /// Requests `server` received with HTTP method `verb`.
    pub async fn count(&self, server: &MockServer, verb: &str) -> usize {
        server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.method.as_str() == verb)
            .count()
    }
}
