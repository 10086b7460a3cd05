//! A stand-in for the Whereby API during a cold start, so the meeting sweeper's first run makes
//! its platform request (the room-session list of a Whereby meeting) instead of skipping the
//! meeting because no platform is configured. It answers `GET .../insights/room-sessions` with
//! an empty page (nobody joined yet, so the meeting stays active and every run sees the same
//! state), refuses a wrong bearer token with 401, and answers anything else 404. Every request
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

async fn answer(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let authorised = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        == Some(shared.api_key.as_str());
    let is_sessions =
        request.method() == axum::http::Method::GET && path.ends_with("/insights/room-sessions");
    let (name, response) = match (is_sessions, authorised) {
        (true, true) => (
            "Whereby.GET /insights/room-sessions".to_owned(),
            (
                [(header::CONTENT_TYPE, "application/json")],
                r#"{"results":[],"cursor":null}"#,
            )
                .into_response(),
        ),
        (true, false) => (
            "Whereby.GET /insights/room-sessions (401: wrong key)".to_owned(),
            (StatusCode::UNAUTHORIZED, r#"{"error":"Unauthorized"}"#).into_response(),
        ),
        (false, _) => (
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

        assert_eq!(
            fake.calls(),
            vec![
                "Whereby.GET /insights/room-sessions",
                "Whereby.GET /insights/room-sessions (401: wrong key)",
                "platform.POST /v1/meetings (404)",
            ]
        );
    }
}
