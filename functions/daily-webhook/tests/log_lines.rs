//! What the Daily webhook's log lines carry. Its own test binary: tracing caches, per call
//! site, whether any subscriber is interested, and a test thread of a larger binary can hit a
//! call site before this test's subscriber exists and leave it cached as "never".

use std::sync::Arc;

use chrono::Utc;
use daily_webhook::handler::handle_raw;
use serde_json::{json, Value};
use shared::webhook::fixtures::{signed_headers, Scheme};
use shared::webhook::signature::header_map;

mod world;
use world::*;

/// A log writer that keeps every line, for checking what each line carries.
#[derive(Clone, Default)]
struct Lines(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Under the runtime's invocation span (what `lambda_runtime` wraps every invocation in, with
/// JSON logs as template.yaml configures), every line of a join names the request, and every
/// line after the meeting lookup names the meeting and the room: one meeting's story can be
/// read from the logs alone.
#[test]
fn every_log_line_of_a_join_carries_the_request_id_and_once_known_the_meeting_and_room() {
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    let w = world();
    let body = daily_fixture("real", "participant.joined", None);
    let headers =
        header_map(&signed_headers(Scheme::Daily, SECRET, Utc::now().timestamp(), &body).unwrap());
    tracing::subscriber::with_default(subscriber, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // The span lambda_runtime's TracingLayer opens around each invocation.
        let span = tracing::info_span!("Lambda runtime invoke", requestId = "req-42");
        let _entered = span.enter();
        runtime.block_on(handle_raw(&w.deps, &headers, &body, Utc::now()));
    });

    let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
    let logged: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!logged.is_empty(), "{text}");
    let field = |line: &Value, name: &str| {
        line["spans"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|s| s.get(name).cloned())
    };
    for line in &logged {
        assert_eq!(field(line, "requestId"), Some(json!("req-42")), "{line}");
        assert_eq!(field(line, "room"), Some(json!(ROOM)), "{line}");
    }
    let applied = logged
        .iter()
        .find(|l| l["fields"]["message"] == "participant change applied")
        .expect("the join is logged");
    assert_eq!(field(applied, "meeting_id"), Some(json!(MEETING_ID)));
}
