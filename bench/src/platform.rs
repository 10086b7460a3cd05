//! A stand-in for the Whereby and Daily APIs during a cold start, so the meeting sweeper's first
//! run makes its platform requests (the room-session list of a Whereby meeting; Daily's presence
//! of a Daily meeting, its recording list and its webhooks) instead of skipping them because no
//! platform is configured. Each gets an empty answer (nobody joined yet, so the meetings stay
//! active and every run sees the same state); a wrong bearer token gets 401, anything else 404. Every request
//! is recorded, like the AWS proxy's, so the report shows what the first invocation called.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::recorder::{CallLog, LoopbackServer};

struct Shared {
    api_key: String,
    calls: CallLog,
}

/// A running fake on a free loopback port; stops when dropped.
pub struct FakePlatform {
    server: LoopbackServer,
    calls: CallLog,
}

impl FakePlatform {
    /// Accepts requests carrying `Authorization: Bearer <api_key>`.
    pub async fn start(api_key: &str) -> std::io::Result<Self> {
        let calls = CallLog::default();
        let shared = Arc::new(Shared {
            api_key: api_key.to_owned(),
            calls: calls.clone(),
        });
        let app = Router::new().fallback(answer).with_state(shared);
        let server = LoopbackServer::start(app).await?;
        Ok(Self { server, calls })
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// `Whereby.GET /insights/room-sessions`, ... in arrival order; refused ones say why.
    pub fn calls(&self) -> Vec<String> {
        self.calls.all()
    }
}

/// Daily's webhook list: ours (the sweeper case's `DAILY_WEBHOOK_URL`), healthy.
const BENCH_WEBHOOKS: &str = r#"[{"uuid":"bench-webhook","url":"https://bench.invalid/v1/daily_webhook","state":"ACTIVE","failedCount":0,"eventTypes":["participant.joined"]}]"#;

async fn answer(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let authorised = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        == Some(shared.api_key.as_str());
    // What the sweeper asks in its first run: Whereby's session list for its Whereby meeting;
    // Daily's presence for its Daily meeting and Daily's recording list and webhooks for the
    // reconciliation. Each gets an empty answer: nobody there, nothing lost.
    let empty = match (request.method() == axum::http::Method::GET, path.as_str()) {
        (true, p) if p.ends_with("/insights/room-sessions") => Some((
            "Whereby",
            "/insights/room-sessions",
            r#"{"results":[],"cursor":null}"#,
        )),
        (true, p) if p.starts_with("/v1/rooms/") && p.ends_with("/presence") => Some((
            "Daily",
            "/rooms/:name/presence",
            r#"{"total_count":0,"data":[]}"#,
        )),
        (true, "/v1/recordings") => {
            Some(("Daily", "/recordings", r#"{"total_count":0,"data":[]}"#))
        }
        (true, "/v1/webhooks") => Some(("Daily", "/webhooks", BENCH_WEBHOOKS)),
        _ => None,
    };
    let (name, response) = match (empty, authorised) {
        (Some((platform, route, body)), true) => (
            format!("{platform}.GET {route}"),
            ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        ),
        (Some((platform, route, _)), false) => (
            format!("{platform}.GET {route} (401: wrong key)"),
            (StatusCode::UNAUTHORIZED, r#"{"error":"Unauthorized"}"#).into_response(),
        ),
        (None, _) => (
            format!("platform.{} {path} (404)", request.method()),
            StatusCode::NOT_FOUND.into_response(),
        ),
    };
    shared.calls.push(name);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_the_session_list_with_the_right_key_and_records_every_request() {
        let fake = FakePlatform::start("k1").await.unwrap();
        let client = reqwest::Client::new();
        let ok = client
            .get(format!(
                "{}/v1/insights/room-sessions?roomName=%2Fr",
                fake.url()
            ))
            .bearer_auth("k1")
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);
        let body: serde_json::Value = ok.json().await.unwrap();
        assert_eq!(body["results"], serde_json::json!([]));
        assert!(body["cursor"].is_null());

        let wrong = client
            .get(format!("{}/v1/insights/room-sessions", fake.url()))
            .bearer_auth("nope")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401);
        let other = client
            .post(format!("{}/v1/meetings", fake.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(other.status(), 404);
        let presence = client
            .get(format!("{}/v1/rooms/r1/presence", fake.url()))
            .bearer_auth("k1")
            .send()
            .await
            .unwrap();
        let body: serde_json::Value = presence.json().await.unwrap();
        assert_eq!(body["total_count"], 0);

        assert_eq!(
            fake.calls(),
            vec![
                "Whereby.GET /insights/room-sessions",
                "Whereby.GET /insights/room-sessions (401: wrong key)",
                "platform.POST /v1/meetings (404)",
                "Daily.GET /rooms/:name/presence",
            ]
        );
    }
}
