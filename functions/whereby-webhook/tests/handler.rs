//! The Whereby webhook handler through its router, with requests built the way API
//! Gateway (HTTP API, payload v2) delivers them and in-memory stores behind the ports.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use secrecy::SecretString;
use serde_json::{json, Value};
use shared::domain::{Meeting, Platform, RecordingTrigger, RecordingType, RoomMode};
use shared::fakes::{MemoryClientCountEvents, MemoryMeetings, MemoryWebhookEvents};
use shared::metrics::{Function, Metric, Metrics, Registry};
use shared::store::{EventClaim, EventLease, WebhookEventStore};
use shared::webhook::fixtures::{apigw_v2_event, retarget, signed_headers, Scheme};
use shared::webhook::signature::header_map;
use tower::ServiceExt;
use whereby_webhook::handler::{handle_raw, router, Deps};

const SECRET: &str = "whereby-test-secret";
const ROOM: &str = "fixture-room";
const MEETING_ID: &str = "meeting-w";

struct World {
    meetings: Arc<MemoryMeetings>,
    counts: Arc<MemoryClientCountEvents>,
    events: Arc<MemoryWebhookEvents>,
    metrics: Arc<Registry>,
    deps: Arc<Deps>,
}

fn world_with(secret: Option<&str>) -> World {
    let meetings = Arc::new(MemoryMeetings::default());
    let now = Utc::now();
    meetings.insert(Meeting {
        recordings_started: Default::default(),
        id: MEETING_ID.into(),
        room_id: "room-1".into(),
        room_name: ROOM.into(),
        room_url: format!("https://reflector.whereby.com/{ROOM}"),
        host_room_url: String::new(),
        start_date: now,
        end_date: now + Duration::hours(8),
        user_id: None,
        is_locked: false,
        room_mode: RoomMode::Normal,
        recording_type: RecordingType::Cloud,
        recording_trigger: RecordingTrigger::Automatic2ndParticipant,
        num_clients: 0,
        is_active: true,
        platform: Platform::Whereby,
        extra_data: Value::Null,
    });
    let events = Arc::new(MemoryWebhookEvents::default());
    let counts = Arc::new(MemoryClientCountEvents::new(
        meetings.clone(),
        events.clone(),
    ));
    let metrics = Arc::new(Registry::default());
    let deps = Deps {
        meetings: meetings.clone(),
        counts: counts.clone(),
        events: events.clone(),
        secret: secret.map(|s| SecretString::from(s.to_owned())),
        lease: shared::webhook::pipeline::DEFAULT_LEASE,
        metrics: Metrics::new(Function::WherebyWebhook, metrics.clone()),
    };
    World {
        meetings,
        counts,
        events,
        metrics,
        deps: Arc::new(deps),
    }
}

fn world() -> World {
    world_with(Some(SECRET))
}

fn fixture(name: &str) -> Vec<u8> {
    let full = format!(
        "{}/../../events/whereby/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// A client event with the given id, count and creation time.
fn client_event(kind: &str, id: &str, num_clients: i64, created_at: &str) -> Vec<u8> {
    json!({
        "id": id, "apiVersion": "1.0", "createdAt": created_at, "type": kind,
        "data": {"meetingId": "91234567", "roomName": format!("/{ROOM}"), "participantId": id,
                 "roleName": "member", "numClients": num_clients}
    })
    .to_string()
    .into_bytes()
}

async fn send_with(w: &World, headers: Vec<(&'static str, String)>, body: &[u8]) -> (u16, Value) {
    let event = apigw_v2_event("/v1/whereby", &headers, body);
    let request = lambda_http::request::from_str(&event.to_string()).unwrap();
    let response = router(w.deps.clone()).oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    (
        status,
        serde_json::from_slice(
            &axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap(),
        )
        .unwrap_or(Value::Null),
    )
}

async fn send(w: &World, body: &[u8]) -> (u16, Value) {
    let headers = signed_headers(Scheme::Whereby, SECRET, Utc::now().timestamp(), body).unwrap();
    send_with(w, headers, body).await
}

fn ok() -> (u16, Value) {
    (200, json!({"status": "ok"}))
}

#[tokio::test]
async fn client_joined_sets_the_count_from_num_clients() {
    let w = world();
    assert_eq!(send(&w, &fixture("room.client.joined")).await, ok());
    assert_eq!(w.meetings.num_clients(MEETING_ID), Some(1));
}

#[tokio::test]
async fn client_left_sets_the_count_from_num_clients() {
    let w = world();
    send(&w, &fixture("room.client.joined")).await;
    assert_eq!(send(&w, &fixture("room.client.left")).await, ok());
    assert_eq!(w.meetings.num_clients(MEETING_ID), Some(0));
}

#[tokio::test]
async fn an_older_event_after_a_newer_one_keeps_the_newer_count() {
    let w = world();
    let newer = client_event("room.client.joined", "e-2", 2, "2025-01-01T10:00:02Z");
    let older = client_event("room.client.left", "e-1", 0, "2025-01-01T10:00:01Z");
    assert_eq!(send(&w, &newer).await, ok());
    assert_eq!(send(&w, &older).await, ok());
    assert_eq!(w.meetings.num_clients(MEETING_ID), Some(2));
}

#[tokio::test]
async fn a_duplicate_event_changes_nothing_after_a_newer_one() {
    let w = world();
    let first = client_event("room.client.joined", "e-1", 1, "2025-01-01T10:00:01Z");
    let second = client_event("room.client.joined", "e-2", 2, "2025-01-01T10:00:02Z");
    send(&w, &first).await;
    send(&w, &second).await;
    for _ in 0..3 {
        assert_eq!(send(&w, &first).await, ok());
    }
    assert_eq!(w.meetings.num_clients(MEETING_ID), Some(2));
}

#[tokio::test]
async fn a_stale_signature_older_than_sixty_seconds_is_401() {
    let w = world();
    let body = fixture("room.client.joined");
    let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let stale = signed_headers(Scheme::Whereby, SECRET, now.timestamp() - 61, &body).unwrap();
    let r = handle_raw(&w.deps, &header_map(&stale), &body, now).await;
    assert_eq!(r.status(), 401);
    let v: Value = serde_json::from_slice(r.body().as_ref()).unwrap();
    assert_eq!(v, json!({"detail": "Invalid signature"}));
    assert_eq!(w.meetings.num_clients(MEETING_ID), Some(0));
    let fresh = signed_headers(Scheme::Whereby, SECRET, now.timestamp() - 59, &body).unwrap();
    assert_eq!(
        handle_raw(&w.deps, &header_map(&fresh), &body, now)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_stale_signature_through_the_lambda_entry_point_is_401() {
    let w = world();
    let body = fixture("room.client.joined");
    let headers =
        signed_headers(Scheme::Whereby, SECRET, Utc::now().timestamp() - 120, &body).unwrap();
    assert_eq!(send_with(&w, headers, &body).await.0, 401);
}

#[tokio::test]
async fn an_invalid_signature_is_401_and_changes_nothing() {
    let w = world();
    let body = fixture("room.client.joined");
    let headers = signed_headers(Scheme::Whereby, "other", Utc::now().timestamp(), &body).unwrap();
    assert_eq!(
        send_with(&w, headers, &body).await,
        (401, json!({"detail": "Invalid signature"}))
    );
    assert_eq!(w.meetings.num_clients(MEETING_ID), Some(0));
}

#[tokio::test]
async fn a_missing_signature_is_401() {
    let w = world();
    assert_eq!(
        send_with(&w, vec![], &fixture("room.client.joined")).await,
        (401, json!({"detail": "Missing signature"}))
    );
}

#[tokio::test]
async fn an_unset_secret_rejects_even_a_correctly_signed_event() {
    let w = world_with(None);
    assert_eq!(send(&w, &fixture("room.client.joined")).await.0, 401);
    assert_eq!(w.meetings.num_clients(MEETING_ID), Some(0));
}

#[tokio::test]
async fn an_unknown_event_type_is_200_and_changes_nothing() {
    let w = world();
    assert_eq!(send(&w, &fixture("recording.finished")).await, ok());
    assert_eq!(w.meetings.num_clients(MEETING_ID), Some(0));
    assert!(!w
        .events
        .is_claimed(Platform::Whereby, "5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a"));
}

#[tokio::test]
async fn an_event_for_an_unknown_meeting_is_200() {
    let w = world();
    let body = retarget(&fixture("room.client.joined"), Some("elsewhere"), None).unwrap();
    assert_eq!(send(&w, &body).await, ok());
    assert_eq!(w.meetings.num_clients(MEETING_ID), Some(0));
}

#[tokio::test]
async fn a_signed_but_malformed_body_is_422() {
    for body in [
        &b"{oops"[..],
        br#"{"id":"e","type":"room.client.joined","data":{"roomName":"/fixture-room"}}"#,
        br#"{"id":"e","type":"room.client.joined","data":{"roomName":"/fixture-room","numClients":"two"}}"#,
    ] {
        let w = world();
        assert_eq!(send(&w, body).await.0, 422, "{}", String::from_utf8_lossy(body));
    }
}

#[tokio::test]
async fn an_oversized_body_is_413() {
    let w = world();
    let body = vec![b' '; shared::webhook::MAX_BODY_BYTES + 1];
    assert_eq!(send(&w, &body).await.0, 413);
}

#[tokio::test]
async fn a_failed_count_write_leaves_no_claim_so_the_retry_applies() {
    let w = world();
    let body = fixture("room.client.joined");
    let id = fixture_id(&body);
    w.counts.failures.fail("set_clients");
    assert_eq!(send(&w, &body).await.0, 503);
    assert!(!w.events.is_claimed(Platform::Whereby, &id));
    w.counts.failures.heal("set_clients");
    assert_eq!(send(&w, &body).await, ok());
    assert_eq!(w.meetings.num_clients(MEETING_ID), Some(1));
    assert!(w.events.is_completed(Platform::Whereby, &id));
}

#[tokio::test]
async fn a_failed_meeting_lookup_is_503_and_claims_nothing() {
    let w = world();
    let body = fixture("room.client.joined");
    w.meetings.failures.fail("get_by_room_name");
    assert_eq!(send(&w, &body).await.0, 503);
    assert!(!w.events.is_claimed(Platform::Whereby, &fixture_id(&body)));
    assert_eq!(w.meetings.num_clients(MEETING_ID), Some(0));
}

#[tokio::test]
async fn an_older_event_is_claimed_so_its_replay_is_a_duplicate() {
    let w = world();
    let newer = client_event("room.client.joined", "e-2", 2, "2025-01-01T10:00:02Z");
    let older = client_event("room.client.left", "e-1", 0, "2025-01-01T10:00:01Z");
    send(&w, &newer).await;
    assert_eq!(send(&w, &older).await, ok());
    assert!(w.events.is_completed(Platform::Whereby, "e-1"));
    assert_eq!(send(&w, &older).await, ok());
    assert_eq!(w.meetings.num_clients(MEETING_ID), Some(2));
    let whereby = |m| {
        w.metrics
            .sum_where(m, |k| k.platform == Some(Platform::Whereby))
    };
    assert_eq!(whereby(Metric::WebhookAccepted), 2.0);
    assert_eq!(whereby(Metric::WebhookDuplicate), 1.0);
}

#[tokio::test]
async fn an_event_for_an_unknown_meeting_is_not_claimed() {
    let w = world();
    let body = retarget(&fixture("room.client.joined"), Some("elsewhere"), None).unwrap();
    assert_eq!(send(&w, &body).await, ok());
    assert!(!w.events.is_claimed(Platform::Whereby, &fixture_id(&body)));
}

/// A lease the pipeline took on `event_id` at `at` (as deployments before client events were
/// claimed in their own write did), held for the default lease.
async fn pipeline_lease(w: &World, event_id: &str, at: DateTime<Utc>) {
    let claim = EventClaim {
        platform: Platform::Whereby,
        event_id,
        ttl: whereby_webhook::handler::DEDUPE_TTL,
        lease: shared::webhook::pipeline::DEFAULT_LEASE,
        now: at,
    };
    let taken = w.events.claim(claim).await.unwrap();
    assert!(matches!(taken, EventLease::Taken { .. }), "{taken:?}");
}

#[tokio::test]
async fn a_live_lease_of_an_earlier_deployment_makes_the_event_a_duplicate() {
    let w = world();
    let body = fixture("room.client.joined");
    pipeline_lease(&w, &fixture_id(&body), Utc::now()).await;
    assert_eq!(send(&w, &body).await, ok());
    assert_eq!(w.meetings.num_clients(MEETING_ID), Some(0));
    let duplicates = w.metrics.sum_where(Metric::WebhookDuplicate, |k| {
        k.platform == Some(Platform::Whereby)
    });
    assert_eq!(duplicates, 1.0);
}

#[tokio::test]
async fn an_expired_lease_of_an_earlier_deployment_is_taken_over_and_the_event_applied() {
    let w = world();
    let body = fixture("room.client.joined");
    let id = fixture_id(&body);
    pipeline_lease(&w, &id, Utc::now() - Duration::minutes(5)).await;
    assert_eq!(send(&w, &body).await, ok());
    assert_eq!(w.meetings.num_clients(MEETING_ID), Some(1));
    assert!(w.events.is_completed(Platform::Whereby, &id));
}

/// The event id of a fixture body.
fn fixture_id(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap();
    v["id"].as_str().unwrap().to_owned()
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever a sender signs, the answer is one of the documented statuses, never a 5xx.
        #[test]
        fn any_signed_body_gets_a_documented_status(
            body in prop::collection::vec(any::<u8>(), 0..600),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let w = world();
            let (status, _) = runtime.block_on(send(&w, &body));
            prop_assert!([200, 413, 422].contains(&status), "status {status}");
        }
    }
}

#[tokio::test]
async fn a_join_is_counted_once_however_often_it_is_delivered_and_a_leave_not_at_all() {
    let w = world();
    let joined = fixture("room.client.joined");
    send(&w, &joined).await;
    send(&w, &joined).await;
    send(&w, &fixture("room.client.left")).await;
    let whereby = |m| {
        w.metrics
            .sum_where(m, |k| k.platform == Some(Platform::Whereby))
    };
    assert_eq!(whereby(Metric::ParticipantJoined), 1.0);
    assert_eq!(whereby(Metric::WebhookAccepted), 2.0);
    assert_eq!(whereby(Metric::WebhookDuplicate), 1.0);
}
