//! A pass-through in front of the AWS emulator that names and counts every request, so a cold
//! start reports which AWS calls its first invocation made (DynamoDB `GetItem`, SQS
//! `SendMessage`, S3 `PutObject`, ...). The function's `AWS_ENDPOINT_URL` points here.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::recorder::{CallLog, LoopbackServer};

/// Request bodies of a cold-start event are small; a cap keeps a runaway upload from eating memory.
const MAX_BODY: usize = 64 * 1024 * 1024;

struct Shared {
    upstream: String,
    client: reqwest::Client,
    calls: CallLog,
    waiting: Arc<Mutex<Waiting>>,
}

/// Wall time during which at least one request was waiting on the upstream: the part of a cold
/// start spent in the emulator (concurrent requests count once), as opposed to in the function.
#[derive(Default)]
struct Waiting {
    outstanding: usize,
    since: Option<Instant>,
    total: Duration,
}

impl Waiting {
    fn begin(&mut self) {
        if self.outstanding == 0 {
            self.since = Some(Instant::now());
        }
        self.outstanding += 1;
    }

    fn end(&mut self) {
        self.outstanding = self.outstanding.saturating_sub(1);
        if self.outstanding == 0 {
            if let Some(since) = self.since.take() {
                self.total += since.elapsed();
            }
        }
    }
}

/// Ends its request's wait even when the handler's future is dropped.
struct WaitGuard(Arc<Mutex<Waiting>>);

impl WaitGuard {
    fn begin(waiting: &Arc<Mutex<Waiting>>) -> Self {
        if let Ok(mut w) = waiting.lock() {
            w.begin();
        }
        Self(waiting.clone())
    }
}

impl Drop for WaitGuard {
    fn drop(&mut self) {
        if let Ok(mut w) = self.0.lock() {
            w.end();
        }
    }
}

/// A running proxy on a free loopback port; stops when dropped.
pub struct CountingProxy {
    server: LoopbackServer,
    calls: CallLog,
    waiting: Arc<Mutex<Waiting>>,
}

impl CountingProxy {
    /// Forwards to `upstream` (e.g. `http://127.0.0.1:5106`).
    pub async fn start(upstream: &str) -> std::io::Result<Self> {
        let calls = CallLog::default();
        let waiting = Arc::new(Mutex::new(Waiting::default()));
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: reqwest::Client::new(),
            calls: calls.clone(),
            waiting: waiting.clone(),
        });
        let app = Router::new().fallback(forward).with_state(shared);
        let server = LoopbackServer::start(app).await?;
        Ok(Self {
            server,
            calls,
            waiting,
        })
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The operations seen so far, in arrival order.
    pub fn calls(&self) -> Vec<String> {
        self.calls.all()
    }

    /// How long requests have waited on the upstream so far (overlapping waits count once).
    /// Measured from the proxy's request to the end of the upstream's answer, so it includes
    /// the proxy's own hop to the emulator: a slight overestimate of the emulator's share.
    pub fn waited(&self) -> Duration {
        self.waiting
            .lock()
            .map(|w| w.total + w.since.map_or(Duration::ZERO, |s| s.elapsed()))
            .unwrap_or_default()
    }
}

async fn forward(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    let name = operation(&parts.method, parts.uri.query(), &parts.headers);
    shared.calls.push(name);
    let body = match to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(e) => return (StatusCode::PAYLOAD_TOO_LARGE, e.to_string()).into_response(),
    };
    let _waiting = WaitGuard::begin(&shared.waiting);
    let mut headers = parts.headers.clone();
    for h in ["host", "content-length", "connection", "transfer-encoding"] {
        headers.remove(h);
    }
    let upstream = shared
        .client
        .request(
            parts.method,
            format!("{}{}", shared.upstream, path_and_query),
        )
        .headers(headers)
        .body(body)
        .send()
        .await;
    let upstream = match upstream {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let status = upstream.status();
    let mut headers = upstream.headers().clone();
    for h in ["content-length", "connection", "transfer-encoding"] {
        headers.remove(h);
    }
    match upstream.bytes().await {
        Ok(bytes) => {
            let mut response = Response::new(Body::from(bytes));
            *response.status_mut() = status;
            *response.headers_mut() = headers;
            response
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

/// A readable name for one AWS request: `DynamoDB.GetItem`, `SQS.SendMessage` (JSON protocols
/// name the operation in `X-Amz-Target`), or the S3 operation guessed from method and query.
pub fn operation(method: &Method, query: Option<&str>, headers: &HeaderMap) -> String {
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        let (service, op) = target.split_once('.').unwrap_or(("", target));
        let service = match service {
            s if s.starts_with("DynamoDB") => "DynamoDB",
            "AmazonSQS" => "SQS",
            other => other,
        };
        return format!("{service}.{op}");
    }
    let keys: Vec<&str> = query
        .unwrap_or("")
        .split('&')
        .map(|kv| kv.split('=').next().unwrap_or(""))
        .collect();
    let has = |k: &str| keys.contains(&k);
    let op = match *method {
        Method::POST if has("uploads") => "CreateMultipartUpload",
        Method::POST if has("uploadId") => "CompleteMultipartUpload",
        Method::PUT if has("partNumber") => "UploadPart",
        Method::PUT => "PutObject",
        Method::DELETE if has("uploadId") => "AbortMultipartUpload",
        Method::DELETE => "DeleteObject",
        Method::HEAD => "HeadObject",
        Method::GET => "GetObject",
        _ => "other",
    };
    format!("S3.{op}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    fn target(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-amz-target", value.parse().unwrap());
        h
    }

    #[test]
    fn json_protocol_requests_are_named_by_their_target() {
        assert_eq!(
            operation(
                &Method::POST,
                None,
                &target("DynamoDB_20120810.TransactWriteItems")
            ),
            "DynamoDB.TransactWriteItems"
        );
        assert_eq!(
            operation(&Method::POST, None, &target("AmazonSQS.SendMessage")),
            "SQS.SendMessage"
        );
    }

    #[test]
    fn s3_requests_are_named_from_method_and_query() {
        let none = HeaderMap::new();
        assert_eq!(
            operation(&Method::POST, Some("uploads"), &none),
            "S3.CreateMultipartUpload"
        );
        assert_eq!(
            operation(&Method::PUT, Some("partNumber=2&uploadId=x"), &none),
            "S3.UploadPart"
        );
        assert_eq!(
            operation(&Method::POST, Some("uploadId=x"), &none),
            "S3.CompleteMultipartUpload"
        );
        assert_eq!(operation(&Method::PUT, None, &none), "S3.PutObject");
    }

    #[tokio::test]
    async fn forwards_requests_and_answers_and_counts_them() {
        let upstream = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_string(r#"{"Item":{}}"#)
                    .set_delay(Duration::from_millis(30)),
            )
            .expect(1)
            .mount(&upstream)
            .await;
        let proxy = CountingProxy::start(&upstream.uri()).await.unwrap();
        let res = reqwest::Client::new()
            .post(proxy.url())
            .header("x-amz-target", "DynamoDB_20120810.GetItem")
            .body(r#"{"TableName":"t"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.text().await.unwrap(), r#"{"Item":{}}"#);
        assert_eq!(proxy.calls(), vec!["DynamoDB.GetItem".to_owned()]);
        // The upstream's delay is time spent waiting on it (a lower bound, whatever the load).
        assert!(proxy.waited() >= Duration::from_millis(30));
        let received = upstream.received_requests().await.unwrap();
        assert_eq!(received[0].body, br#"{"TableName":"t"}"#);
    }
}
