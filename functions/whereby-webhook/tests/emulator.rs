//! The Whereby webhook wired as in production (`Deps::from_config`: DynamoDB stores) against the
//! moto emulator. Needs `AWS_ENDPOINT_URL` (scripts/test starts the emulator); fails without it.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use secrecy::SecretString;
use serde_json::{json, Value};
use shared::aws::AwsClients;
use shared::config::Config;
use shared::domain::{Meeting, Platform, RecordingTrigger, RecordingType, RoomMode};
use shared::metrics::{Function, Metric, Metrics, Registry};
use shared::store::dynamo::{DynamoStores, RequestCounter};
use shared::store::{Claim, EventClaim, EventLease, MeetingStore, WebhookEventStore};
use shared::testing::{emulator, fresh_tables, unique_prefix};
use shared::webhook::fixtures::{apigw_v2_event, signed_headers, Scheme};
use shared::webhook::pipeline::DEFAULT_LEASE;
use shared::webhook::signature::header_map;
use tower::ServiceExt;
use whereby_webhook::handler::{handle_raw, router, Deps, DEDUPE_TTL};

const SECRET: &str = "whereby-emulator-secret";

struct Env {
    deps: Arc<Deps>,
    stores: DynamoStores,
    counter: RequestCounter,
    meeting: Meeting,
    metrics: Arc<Registry>,
}

async fn env() -> Env {
    let clients = emulator().await;
    let tables = fresh_tables(&clients).await;
    let mut config = Config::from_vars(&Default::default()).unwrap();
    config.tables = tables.clone();
    config.whereby.webhook_secret = Some(SecretString::from(SECRET.to_owned()));
    let (counted, counter) = RequestCounter::instrument(&clients.dynamodb);
    let metrics = Arc::new(Registry::default());
    let deps = Deps {
        metrics: Metrics::new(Function::WherebyWebhook, metrics.clone()),
        ..Deps::from_config(
            &config,
            &AwsClients {
                dynamodb: counted,
                s3: clients.s3.clone(),
                sqs: clients.sqs.clone(),
            },
        )
    };
    let stores = DynamoStores::new(clients.dynamodb.clone(), &tables);
    let now = Utc::now();
    let room_name = unique_prefix("room");
    let meeting = Meeting {
        recordings_started: Default::default(),
        id: uuid::Uuid::new_v4().to_string(),
        room_id: uuid::Uuid::new_v4().to_string(),
        room_name: room_name.clone(),
        room_url: format!("https://reflector.whereby.com/{room_name}"),
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
    };
    assert_eq!(
        stores.meetings.claim_active(&meeting, now).await.unwrap(),
        Claim::Won
    );
    counter.take();
    Env {
        deps: Arc::new(deps),
        stores,
        counter,
        meeting,
        metrics,
    }
}

impl Env {
    fn event(&self, kind: &str, id: &str, num_clients: i64, created_at: &str) -> Vec<u8> {
        json!({
            "id": id, "apiVersion": "1.0", "createdAt": created_at, "type": kind,
            "data": {"meetingId": "1", "roomName": format!("/{}", self.meeting.room_name),
                     "participantId": id, "roleName": "member", "numClients": num_clients}
        })
        .to_string()
        .into_bytes()
    }

    async fn send(&self, body: &[u8]) -> u16 {
        let headers =
            signed_headers(Scheme::Whereby, SECRET, Utc::now().timestamp(), body).unwrap();
        let event = apigw_v2_event("/v1/whereby", &headers, body);
        let request = lambda_http::request::from_str(&event.to_string()).unwrap();
        router(self.deps.clone())
            .oneshot(request)
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// The sum of `metric`'s Whereby samples so far.
    fn whereby(&self, metric: Metric) -> f64 {
        self.metrics
            .sum_where(metric, |k| k.platform == Some(Platform::Whereby))
    }

    async fn num_clients(&self) -> i64 {
        let m = self.stores.meetings.get(&self.meeting.id).await.unwrap();
        m.unwrap().num_clients
    }
}

#[tokio::test]
async fn joins_and_leaves_set_the_stored_count() {
    let e = env().await;
    assert_eq!(
        e.send(&e.event("room.client.joined", "a", 1, "2025-01-01T10:00:01Z"))
            .await,
        200
    );
    assert_eq!(
        e.send(&e.event("room.client.joined", "b", 2, "2025-01-01T10:00:02Z"))
            .await,
        200
    );
    assert_eq!(e.num_clients().await, 2);
    assert_eq!(
        e.send(&e.event("room.client.left", "c", 1, "2025-01-01T10:00:03Z"))
            .await,
        200
    );
    assert_eq!(e.num_clients().await, 1);
}

#[tokio::test]
async fn an_older_event_arriving_late_does_not_overwrite_the_newer_count() {
    let e = env().await;
    assert_eq!(
        e.send(&e.event("room.client.joined", "new", 3, "2025-01-01T10:00:05Z"))
            .await,
        200
    );
    assert_eq!(
        e.send(&e.event("room.client.left", "old", 0, "2025-01-01T10:00:01Z"))
            .await,
        200
    );
    assert_eq!(e.num_clients().await, 3);
}

#[tokio::test]
async fn a_client_event_makes_two_dynamodb_requests_and_so_does_its_duplicate() {
    let e = env().await;
    let body = e.event("room.client.joined", "once", 1, "2025-01-01T10:00:01Z");
    assert_eq!(e.send(&body).await, 200);
    // The meeting by room name, then the claim and the count in one transaction.
    assert_eq!(e.counter.take(), ["Query", "TransactWriteItems"]);
    assert_eq!(e.num_clients().await, 1);
    assert_eq!(e.send(&body).await, 200);
    // The transaction is refused by the claim.
    assert_eq!(e.counter.take(), ["Query", "TransactWriteItems"]);
    assert_eq!(e.num_clients().await, 1);
    assert_eq!(e.whereby(Metric::WebhookAccepted), 1.0);
    assert_eq!(e.whereby(Metric::WebhookDuplicate), 1.0);
}

#[tokio::test]
async fn an_older_event_is_claimed_in_a_third_request_and_its_replay_is_a_duplicate() {
    let e = env().await;
    let newer = e.event("room.client.joined", "newer", 3, "2025-01-01T10:00:05Z");
    let older = e.event("room.client.left", "older", 0, "2025-01-01T10:00:01Z");
    assert_eq!(e.send(&newer).await, 200);
    e.counter.take();
    assert_eq!(e.send(&older).await, 200);
    // The transaction refused by the count alone, then the claim written by itself.
    assert_eq!(e.counter.take(), ["Query", "TransactWriteItems", "PutItem"]);
    assert_eq!(e.num_clients().await, 3);
    assert_eq!(e.send(&older).await, 200);
    assert_eq!(e.counter.take(), ["Query", "TransactWriteItems"]);
    assert_eq!(e.num_clients().await, 3);
    assert_eq!(e.whereby(Metric::WebhookAccepted), 2.0);
    assert_eq!(e.whereby(Metric::WebhookDuplicate), 1.0);
}

#[tokio::test]
async fn an_event_for_an_unknown_meeting_makes_one_request_and_claims_nothing() {
    let e = env().await;
    let body = json!({
        "id": "elsewhere", "apiVersion": "1.0", "createdAt": "2025-01-01T10:00:01Z",
        "type": "room.client.joined",
        "data": {"meetingId": "1", "roomName": "/not-ours", "participantId": "p",
                 "roleName": "member", "numClients": 1}
    })
    .to_string()
    .into_bytes();
    assert_eq!(e.send(&body).await, 200);
    assert_eq!(e.counter.take(), ["Query"]);
    let claimed = e
        .stores
        .webhook_events
        .claim(EventClaim {
            platform: Platform::Whereby,
            event_id: "elsewhere",
            ttl: DEDUPE_TTL,
            lease: DEFAULT_LEASE,
            now: Utc::now(),
        })
        .await
        .unwrap();
    assert!(
        matches!(claimed, EventLease::Taken { .. }),
        "the event was claimed: {claimed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_deliveries_of_one_event_apply_it_once() {
    let e = Arc::new(env().await);
    let body = Arc::new(e.event("room.client.joined", "many", 2, "2025-01-01T10:00:01Z"));
    let deliveries: Vec<_> = (0..8)
        .map(|_| {
            let (e, body) = (e.clone(), body.clone());
            tokio::spawn(async move { e.send(&body).await })
        })
        .collect();
    for d in deliveries {
        assert_eq!(d.await.unwrap(), 200);
    }
    assert_eq!(e.num_clients().await, 2);
    assert_eq!(e.whereby(Metric::WebhookAccepted), 1.0);
    assert_eq!(e.whereby(Metric::WebhookDuplicate), 7.0);
    assert_eq!(e.whereby(Metric::ParticipantJoined), 1.0);
}

#[tokio::test]
async fn a_stale_signature_is_401_and_changes_nothing() {
    let e = env().await;
    let body = e.event("room.client.joined", "stale", 1, "2025-01-01T10:00:01Z");
    let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let stale = signed_headers(Scheme::Whereby, SECRET, now.timestamp() - 61, &body).unwrap();
    assert_eq!(
        handle_raw(&e.deps, &header_map(&stale), &body, now)
            .await
            .status(),
        401
    );
    assert_eq!(e.num_clients().await, 0);
    assert!(
        e.counter.take().is_empty(),
        "a rejected request touches no table"
    );
}
