//! Fake Daily and Whereby APIs (wiremock on loopback) that the black-box tests share: room
//! creation answers shaped like the real ones, only for requests carrying the right key, and the
//! accounts (RS256 user tokens) of `AUTH_BACKEND=jwt` stacks.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};
use wiremock::matchers::{header, method, path, path_regex};
use wiremock::{Match, Mock, MockServer, Request, Respond, ResponseTemplate};

/// `DAILY_API_KEY` of the fakes; Daily meeting tokens are signed with it.
pub const DAILY_KEY: &str = "e2e-daily-key";
pub const WHEREBY_KEY: &str = "e2e-whereby-key";
/// `AUTH_JWT_PUBLIC_KEY` of jwt stacks; [`user_token`] signs with its private half.
pub const TEST_PUBLIC_KEY: &str = include_str!("../keys/test-public.pem");
const TEST_PRIVATE_KEY: &str = include_str!("../keys/test-private.pem");

/// A bearer token of `user` for `AUTH_BACKEND=jwt` stacks, valid for `valid_for_s` seconds
/// (negative: already expired).
pub fn user_token(user: &str, valid_for_s: i64) -> String {
    let claims = json!({
        "sub": user,
        "email": format!("{user}@example.com"),
        "exp": chrono::Utc::now().timestamp() + valid_for_s,
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_rsa_pem(TEST_PRIVATE_KEY.as_bytes())
            .expect("test private key"),
    )
    .expect("token signed")
}

/// Fake Daily `POST /rooms`: echoes the requested name (400 without one, as Daily answers).
pub struct DailyCreate;

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

/// Fake Whereby `POST /meetings`: 201 with a fresh meeting whose host URL is its room URL with
/// `?roomKey=host`.
#[derive(Default)]
pub struct WherebyCreate(AtomicUsize);

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

/// Both fake platform APIs: room creation and deletion, answering only requests with the key.
/// Tests mount more mocks on `daily` / `whereby` for what else they exercise.
pub struct PlatformFakes {
    pub daily: MockServer,
    pub whereby: MockServer,
}

impl PlatformFakes {
    pub async fn start() -> Self {
        let daily = MockServer::start().await;
        let daily_auth = format!("Bearer {DAILY_KEY}");
        Mock::given(method("POST"))
            .and(path("/v1/rooms"))
            .and(header("authorization", daily_auth.as_str()))
            .respond_with(DailyCreate)
            .mount(&daily)
            .await;
        Mock::given(method("DELETE"))
            .and(path_regex(r"^/v1/rooms/[A-Za-z0-9_-]+$"))
            .and(header("authorization", daily_auth.as_str()))
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
            .respond_with(WherebyCreate::default())
            .mount(&whereby)
            .await;
        Mock::given(method("DELETE"))
            .and(path_regex(r"^/v1/meetings/[0-9]+$"))
            .respond_with(ResponseTemplate::new(204))
            .mount(&whereby)
            .await;
        Self { daily, whereby }
    }

    /// The platform variables of a stack that uses these fakes.
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

    /// Daily rooms asked for and not deleted, by name (a deletion may be retried, so a room
    /// may be deleted more than once).
    pub async fn live_daily_rooms(&self) -> BTreeSet<String> {
        let mut live = BTreeSet::new();
        let mut deleted = BTreeSet::new();
        for r in self.daily.received_requests().await.unwrap_or_default() {
            let p = r.url.path().to_owned();
            if r.method.as_str() == "POST" && p == "/v1/rooms" {
                let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
                if let Some(name) = body["name"].as_str() {
                    live.insert(name.to_owned());
                }
            } else if r.method.as_str() == "DELETE" {
                deleted.insert(p.trim_start_matches("/v1/rooms/").to_owned());
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

    /// How many `verb` requests `server` (one of the two fakes) received.
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

/// A switchable outage of a fake platform: while on, every request to the server is answered
/// with the given answer, ahead of its other mocks; off, they answer as before.
///
/// A matcher on a flag, not a scoped mock: wiremock 0.6 sorts its mocks by priority in place
/// and then unmounts a scoped one by its original position, so dropping the guard of a
/// prioritized mock unmounts another one.
#[derive(Clone)]
pub struct Outage(Arc<AtomicBool>);

impl Match for Outage {
    fn matches(&self, _: &Request) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

impl Outage {
    /// Mounts the outage on `server`, off.
    pub async fn mount(server: &MockServer, answer: ResponseTemplate) -> Self {
        let outage = Outage(Arc::new(AtomicBool::new(false)));
        Mock::given(outage.clone())
            .respond_with(answer)
            .with_priority(1)
            .mount(server)
            .await;
        outage
    }

    pub fn begin(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn end(&self) {
        self.0.store(false, Ordering::SeqCst);
    }
}
