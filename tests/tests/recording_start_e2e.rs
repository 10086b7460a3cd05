//! Issue 14 acceptance, black-box: server-started Daily recordings through `reflector-local`
//! (webhook -> `StartRecording` on the recordings queue -> the poller -> the recording
//! processor -> Daily's `POST /rooms/:name/recordings/start`), against a fake Daily that
//! records every request.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use shared::domain::RecordingKind;
use shared::platform::daily::recording_instance_id;
use shared::store::MeetingStore;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use support::{eventually, fixture_json, ok, DailyCreate, Stack};

const DAILY_KEY: &str = "daily-start-key";

/// Fake Daily recording start: 503 ("no recording worker free") for the first `fail` calls.
struct StartAfter {
    fail: usize,
    calls: AtomicUsize,
}

impl Respond for StartAfter {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        if self.calls.fetch_add(1, Ordering::SeqCst) < self.fail {
            ResponseTemplate::new(503)
                .set_body_json(json!({"error": "server-error", "info": "no worker available"}))
        } else {
            ResponseTemplate::new(200).set_body_json(json!({"status": "recording"}))
        }
    }
}

async fn daily(fail_starts: usize) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/rooms"))
        .respond_with(DailyCreate)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/v1/rooms/[^/]+/recordings/start$"))
        .respond_with(StartAfter {
            fail: fail_starts,
            calls: AtomicUsize::new(0),
        })
        .mount(&server)
        .await;
    server
}

/// A stack whose meetings are all on the fake Daily, with the processor polling the queue and a
/// one-second first retry delay.
async fn stack(test: &str, daily: &MockServer) -> Stack {
    let url = format!("{}/v1", daily.uri());
    Stack::start(
        test,
        &[
            ("DAILY_API_URL", &url),
            ("DAILY_API_KEY", DAILY_KEY),
            ("DAILY_DOMAIN_ID", "domain-e2e"),
            ("DAILY_MIGRATION_ENABLED", "true"),
            ("DEFAULT_VIDEO_PLATFORM", "daily"),
            ("RECORDING_START_RETRY_SECONDS", "1"),
        ],
        true,
        Duration::from_secs(1),
    )
    .await
}

/// A cloud-recorded room with `trigger` and its Daily meeting: (meeting id, Daily room name).
async fn meeting(s: &Stack, room: &str, trigger: &str) -> (String, String) {
    let body = json!({"name": room, "recording_trigger": trigger}).to_string();
    let (status, created) = s.post("/v1/rooms", &[], body.as_bytes()).await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["recording_type"], "cloud");
    let (status, m) = s.meeting_json(room).await;
    assert_eq!(status, 200, "{m}");
    assert_eq!(m["platform"], "daily");
    (
        m["id"].as_str().unwrap().to_owned(),
        m["room_name"].as_str().unwrap().to_owned(),
    )
}

/// Daily's real `participant.joined` for `room`, participant `n`, sent now; every answer must
/// be 200 within 2 s whatever Daily's recording API does.
async fn join(s: &Stack, room: &str, n: u32) {
    let mut event = fixture_json("daily/real/participant.joined.json", room);
    event["id"] = json!(format!("join-{room}-{n}"));
    event["payload"]["session_id"] = json!(format!("session-{n}"));
    send_timed(s, &event).await;
}

async fn send_timed(s: &Stack, event: &Value) {
    let started = Instant::now();
    let answer = s.daily(event.to_string().as_bytes()).await;
    let took = started.elapsed();
    assert_eq!(answer, ok(), "{event}");
    assert!(
        took < Duration::from_secs(2),
        "webhook answered in {took:?}"
    );
}

/// The bodies of the start requests Daily received for `room`.
async fn starts(daily: &MockServer, room: &str) -> Vec<Value> {
    let want = format!("/v1/rooms/{room}/recordings/start");
    daily
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path() == want)
        .map(|r| serde_json::from_slice(&r.body).unwrap_or(Value::Null))
        .collect()
}

fn cloud_start(meeting_id: &str) -> Value {
    json!({
        "type": "cloud",
        "instanceId": recording_instance_id(meeting_id, RecordingKind::Cloud).to_string(),
    })
}

async fn marked_started(s: &Stack, meeting_id: &str) -> bool {
    s.stores
        .meetings
        .get(meeting_id)
        .await
        .unwrap()
        .is_some_and(|m| m.recordings_started.contains(&RecordingKind::Cloud))
}

#[tokio::test]
async fn the_second_join_starts_one_cloud_recording_and_a_replay_starts_nothing_more() {
    let fake = daily(0).await;
    let s = stack("start_2nd", &fake).await;
    let (id, room) = meeting(&s, "second-joins", "automatic-2nd-participant").await;

    join(&s, &room, 1).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        starts(&fake, &room).await,
        Vec::<Value>::new(),
        "one participant: no start"
    );

    join(&s, &room, 2).await;
    let s_ref = &s;
    eventually(
        "the meeting is marked as recording",
        Duration::from_secs(20),
        || async { marked_started(s_ref, &id).await.then_some(()) },
    )
    .await;
    assert_eq!(starts(&fake, &room).await, vec![cloud_start(&id)]);

    // Daily's retry of the second join, and a third participant: still one recording.
    join(&s, &room, 2).await;
    join(&s, &room, 3).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(starts(&fake, &room).await, vec![cloud_start(&id)]);
    s.stop().await;
}

#[tokio::test]
async fn a_start_refused_twice_with_503_still_happens_under_one_instance_id() {
    let fake = daily(2).await;
    let s = stack("start_503", &fake).await;
    let (id, room) = meeting(&s, "busy-workers", "automatic-2nd-participant").await;
    join(&s, &room, 1).await;
    join(&s, &room, 2).await;
    let s_ref = &s;
    eventually(
        "the start succeeds after two 503s",
        Duration::from_secs(40),
        || async { marked_started(s_ref, &id).await.then_some(()) },
    )
    .await;
    // Two refusals and the accepted start, all with the meeting's instance id.
    assert_eq!(starts(&fake, &room).await, vec![cloud_start(&id); 3]);
    // Joins while Daily refused (and after) were all counted once each.
    let (_, m) = s.meeting_json("busy-workers").await;
    assert_eq!(m["num_clients"], 2);
    s.stop().await;
}

#[tokio::test]
async fn a_room_whose_trigger_is_none_never_starts_a_recording() {
    let fake = daily(0).await;
    let s = stack("start_none", &fake).await;
    let (id, room) = meeting(&s, "never-recorded", "none").await;
    for n in 1..=3 {
        join(&s, &room, n).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(starts(&fake, &room).await, Vec::<Value>::new());
    assert!(!marked_started(&s, &id).await);
    s.stop().await;
}
