//! A local Lambda Runtime API (the `2018-06-01` interface a custom runtime polls), enough for one
//! cold start: the first `GET /next` receives the event, later ones wait forever (the harness
//! kills the process after the answer), and every request is reported with the instant it
//! arrived so the caller can time init and the first invocation.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const PREFIX: &str = "/2018-06-01/runtime";

/// The one event a run hands out.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    pub function_arn: String,
    /// Milliseconds since the Unix epoch by which the function must answer.
    pub deadline_ms: i64,
    pub trace_id: String,
    pub event: Vec<u8>,
}

/// What the function posted back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Response(Vec<u8>),
    Error(Vec<u8>),
    InitError(Vec<u8>),
}

/// One request the function made, with the instant it reached us.
#[derive(Debug, Clone)]
pub enum Report {
    /// `GET /invocation/next`: the runtime finished its init and asks for work.
    Next(Instant),
    /// A response, an invocation error or an init error.
    Done(Instant, Outcome),
}

struct Shared {
    pending: Mutex<Option<Invocation>>,
    reports: mpsc::UnboundedSender<Report>,
}

/// A running Runtime API on a free loopback port; stops when dropped.
pub struct RuntimeApi {
    pub addr: SocketAddr,
    pub reports: mpsc::UnboundedReceiver<Report>,
    task: JoinHandle<()>,
}

impl RuntimeApi {
    pub async fn start(invocation: Invocation) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            pending: Mutex::new(Some(invocation)),
            reports: tx,
        });
        let app = Router::new()
            .route(&format!("{PREFIX}/invocation/next"), get(next))
            .route(
                &format!("{PREFIX}/invocation/{{id}}/response"),
                post(response),
            )
            .route(&format!("{PREFIX}/invocation/{{id}}/error"), post(error))
            .route(&format!("{PREFIX}/init/error"), post(init_error))
            .with_state(shared);
        let task = tokio::spawn(async move {
            // The server only ends when the task is aborted; an accept error ends the run, and
            // the harness then reports "no response".
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            addr,
            reports: rx,
            task,
        })
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    let now = Instant::now();
    let _ = shared.reports.send(Report::Next(now));
    let invocation = shared.pending.lock().ok().and_then(|mut p| p.take());
    let Some(inv) = invocation else {
        // A warm runtime asking for its second event: like Lambda after the first answer, we
        // never hand one out; the harness kills the process.
        std::future::pending::<()>().await;
        return StatusCode::GONE.into_response();
    };
    let mut headers = HeaderMap::new();
    let pairs = [
        ("lambda-runtime-aws-request-id", inv.request_id.clone()),
        ("lambda-runtime-deadline-ms", inv.deadline_ms.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            inv.function_arn.clone(),
        ),
        ("lambda-runtime-trace-id", inv.trace_id.clone()),
        ("content-type", "application/json".to_owned()),
    ];
    for (name, value) in pairs {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
    (StatusCode::OK, headers, inv.event).into_response()
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, r#"{"status":"OK"}"#).into_response()
}

async fn response(
    State(shared): State<Arc<Shared>>,
    Path(_id): Path<String>,
    body: Bytes,
) -> Response {
    let now = Instant::now();
    let _ = shared
        .reports
        .send(Report::Done(now, Outcome::Response(body.to_vec())));
    accepted()
}

async fn error(
    State(shared): State<Arc<Shared>>,
    Path(_id): Path<String>,
    body: Bytes,
) -> Response {
    let now = Instant::now();
    let _ = shared
        .reports
        .send(Report::Done(now, Outcome::Error(body.to_vec())));
    accepted()
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let now = Instant::now();
    let _ = shared
        .reports
        .send(Report::Done(now, Outcome::InitError(body.to_vec())));
    accepted()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn invocation() -> Invocation {
        Invocation {
            request_id: "req-1".into(),
            function_arn: "arn:aws:lambda:us-east-1:123456789012:function:f".into(),
            deadline_ms: 1_700_000_000_000,
            trace_id: "Root=1-00000000-000000000000000000000000".into(),
            event: br#"{"hello":"world"}"#.to_vec(),
        }
    }

    fn url(api: &RuntimeApi, path: &str) -> String {
        format!("http://{}{PREFIX}{path}", api.addr)
    }

    #[tokio::test]
    async fn first_next_hands_out_the_event_with_lambda_headers() {
        let mut api = RuntimeApi::start(invocation()).await.unwrap();
        let res = reqwest::get(url(&api, "/invocation/next")).await.unwrap();
        assert_eq!(res.status(), 200);
        let h = res.headers().clone();
        assert_eq!(h["lambda-runtime-aws-request-id"], "req-1");
        assert_eq!(h["lambda-runtime-deadline-ms"], "1700000000000");
        assert_eq!(
            h["lambda-runtime-invoked-function-arn"],
            "arn:aws:lambda:us-east-1:123456789012:function:f"
        );
        assert!(h.contains_key("lambda-runtime-trace-id"));
        assert_eq!(res.bytes().await.unwrap().as_ref(), br#"{"hello":"world"}"#);
        assert!(matches!(api.reports.recv().await, Some(Report::Next(_))));
    }

    #[tokio::test]
    async fn second_next_is_never_answered() {
        let api = RuntimeApi::start(invocation()).await.unwrap();
        reqwest::get(url(&api, "/invocation/next")).await.unwrap();
        let second = tokio::time::timeout(
            Duration::from_millis(300),
            reqwest::get(url(&api, "/invocation/next")),
        )
        .await;
        assert!(second.is_err(), "a second event was handed out");
    }

    #[tokio::test]
    async fn response_error_and_init_error_are_reported_with_their_bodies() {
        let mut api = RuntimeApi::start(invocation()).await.unwrap();
        let client = reqwest::Client::new();
        for (path, body) in [
            ("/invocation/req-1/response", "ok"),
            ("/invocation/req-1/error", "bad"),
            ("/init/error", "broken"),
        ] {
            let res = client
                .post(url(&api, path))
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 202, "{path}");
        }
        let mut outcomes = Vec::new();
        for _ in 0..3 {
            match api.reports.recv().await {
                Some(Report::Done(_, o)) => outcomes.push(o),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(
            outcomes,
            vec![
                Outcome::Response(b"ok".to_vec()),
                Outcome::Error(b"bad".to_vec()),
                Outcome::InitError(b"broken".to_vec()),
            ]
        );
    }
}
