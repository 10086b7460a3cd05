//! The pipeline's order of checks and claim handling, with a test platform over the in-memory
//! event store: Whereby's signature scheme and envelope, and an apply step that records calls.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use secrecy::SecretString;

use super::*;
use crate::fakes::MemoryWebhookEvents;
use crate::metrics::{Detail, Function, Registry};
use crate::webhook::signature::{header_map, sign_whereby, verify_whereby};
use crate::webhook::whereby::{self, EventKind};

const SECRET: &str = "pipeline-secret";
const PROBE: &[u8] = b"probe";

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000, 0).unwrap()
}

fn join(id: &str) -> Vec<u8> {
    format!(
        r#"{{"id":"{id}","type":"room.client.joined","createdAt":"2023-11-14T22:13:20Z","data":{{"roomName":"/room","numClients":2}}}}"#
    )
    .into_bytes()
}

fn signed(body: &[u8]) -> HeaderMap {
    header_map(&sign_whereby(SECRET, now().timestamp(), body))
}

#[derive(Default)]
struct Calls {
    /// Event ids applied, with whether the pipeline held a claim on them at the time.
    applied: Vec<(String, bool)>,
    follow_ups: Vec<i64>,
}

struct TestHook {
    secret: Option<SecretString>,
    events: MemoryWebhookEvents,
    claiming: Claiming,
    /// Apply fails while set.
    failing: Mutex<bool>,
    /// Apply never finishes while set (a delivery killed by its timeout, once dropped).
    hanging: Mutex<bool>,
    calls: Mutex<Calls>,
    registry: Arc<Registry>,
    metrics: Metrics,
}

impl TestHook {
    fn new(claiming: Claiming) -> Self {
        let registry = Arc::new(Registry::default());
        Self {
            secret: Some(SecretString::from(SECRET)),
            events: MemoryWebhookEvents::default(),
            claiming,
            failing: Mutex::new(false),
            hanging: Mutex::new(false),
            calls: Mutex::default(),
            registry: registry.clone(),
            metrics: Metrics::new(Function::WherebyWebhook, registry),
        }
    }

    /// How many webhooks were counted under `metric` (and `reason`, for rejections).
    fn counted(&self, metric: Metric, reason: Option<RejectReason>) -> f64 {
        self.registry.sum_where(metric, |k| {
            k.platform == Some(Platform::Whereby)
                && reason.is_none_or(|r| k.detail == Some(Detail::Reason(r)))
        })
    }

    fn fail_apply(&self, failing: bool) {
        *self.failing.lock().unwrap() = failing;
    }

    fn hang_apply(&self, hanging: bool) {
        *self.hanging.lock().unwrap() = hanging;
    }

    fn applied(&self) -> Vec<(String, bool)> {
        self.calls.lock().unwrap().applied.clone()
    }

    fn follow_ups(&self) -> Vec<i64> {
        self.calls.lock().unwrap().follow_ups.clone()
    }

    fn claimed(&self, id: &str) -> bool {
        self.events.is_claimed(Platform::Whereby, id)
    }
}

#[async_trait]
impl Webhook for TestHook {
    type Event<'a> = whereby::Event<'a>;
    type Effect = i64;
    type Error = String;

    const PLATFORM: Platform = Platform::Whereby;
    const NAME: &'static str = "test";
    const TITLE: &'static str = "Test";
    const SECRET_VAR: &'static str = "TEST_WEBHOOK_SECRET";
    const DEDUPE_TTL: Duration = Duration::from_secs(60);

    fn events(&self) -> &dyn WebhookEventStore {
        &self.events
    }

    fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn is_probe(&self, body: &[u8]) -> bool {
        body == PROBE
    }

    fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), SignatureError> {
        verify_whereby(self.secret.as_ref(), headers, body, now)
    }

    fn parse<'a>(&self, body: &'a [u8]) -> Result<Self::Event<'a>, ParseError> {
        whereby::parse(body)
    }

    fn event_id<'e>(event: &'e Self::Event<'_>) -> &'e str {
        &event.id
    }

    fn event_type<'e>(event: &'e Self::Event<'_>) -> &'e str {
        &event.event_type
    }

    fn claiming(&self, event: &Self::Event<'_>) -> Claiming {
        match event.kind {
            EventKind::Unknown => Claiming::NotHandled,
            _ => self.claiming,
        }
    }

    async fn apply(
        &self,
        event: Self::Event<'_>,
        claim: EventClaim<'_>,
    ) -> Result<Outcome<i64>, String> {
        assert_eq!(claim.event_id, event.id.as_ref());
        assert_eq!(claim.platform, Platform::Whereby);
        assert_eq!(claim.lease, DEFAULT_LEASE);
        let held = self.claimed(&event.id);
        if *self.failing.lock().unwrap() {
            return Err("store down".into());
        }
        if *self.hanging.lock().unwrap() {
            std::future::pending::<()>().await;
        }
        if self.claiming == Claiming::InApply {
            // Like a transaction that writes the claim with the effect.
            let lease = self.events.claim(claim).await.map_err(|e| e.to_string())?;
            let EventLease::Taken { token } = lease else {
                return Ok(Outcome::Duplicate);
            };
            self.events
                .complete(claim, &token)
                .await
                .map_err(|e| e.to_string())?;
        }
        self.calls
            .lock()
            .unwrap()
            .applied
            .push((event.id.to_string(), held));
        let num_clients = match &event.kind {
            EventKind::ClientJoined(c) | EventKind::ClientLeft(c) => c.num_clients,
            EventKind::Unknown => -1,
        };
        Ok(Outcome::Applied(num_clients))
    }

    async fn follow_up(&self, effect: i64, _now: DateTime<Utc>) {
        self.calls.lock().unwrap().follow_ups.push(effect);
    }
}

async fn send(hook: &TestHook, headers: &HeaderMap, body: &[u8]) -> (u16, serde_json::Value) {
    send_at(hook, headers, body, now()).await
}

async fn send_at(
    hook: &TestHook,
    headers: &HeaderMap,
    body: &[u8],
    at: DateTime<Utc>,
) -> (u16, serde_json::Value) {
    let response = run(hook, headers, body, at).await;
    let status = response.status().as_u16();
    let body = serde_json::from_slice(response.body().as_ref()).unwrap_or_default();
    (status, body)
}

fn ok() -> (u16, serde_json::Value) {
    (200, serde_json::json!({"status": "ok"}))
}

fn detail(status: u16, detail: &str) -> (u16, serde_json::Value) {
    (status, serde_json::json!({ "detail": detail }))
}

#[tokio::test]
async fn an_oversized_body_is_413_even_when_correctly_signed() {
    let hook = TestHook::new(Claiming::Pipeline);
    let body = vec![b' '; MAX_BODY_BYTES + 1];
    assert_eq!(
        send(&hook, &signed(&body), &body).await,
        detail(413, "Request body too large")
    );
    assert!(hook.applied().is_empty());
}

#[tokio::test]
async fn the_probe_is_answered_before_verification_and_changes_nothing() {
    let mut hook = TestHook::new(Claiming::Pipeline);
    hook.secret = None;
    assert_eq!(send(&hook, &HeaderMap::new(), PROBE).await, ok());
    assert!(hook.applied().is_empty());
}

#[tokio::test]
async fn the_signature_is_checked_before_the_body_is_parsed() {
    let hook = TestHook::new(Claiming::Pipeline);
    // Malformed and unsigned: the signature decides (401), not the body (422).
    assert_eq!(
        send(&hook, &HeaderMap::new(), b"not json").await,
        detail(401, "Missing signature")
    );
    let wrong = header_map(&sign_whereby("other", now().timestamp(), b"not json"));
    assert_eq!(
        send(&hook, &wrong, b"not json").await,
        detail(401, "Invalid signature")
    );
    assert!(hook.applied().is_empty());
}

#[tokio::test]
async fn an_unset_secret_rejects_a_correctly_signed_event() {
    let mut hook = TestHook::new(Claiming::Pipeline);
    hook.secret = None;
    let body = join("e1");
    for _ in 0..2 {
        assert_eq!(
            send(&hook, &signed(&body), &body).await,
            detail(401, "Invalid signature")
        );
    }
    assert!(hook.applied().is_empty());
    assert!(!hook.claimed("e1"));
}

#[tokio::test]
async fn a_signed_malformed_body_is_422_and_claims_nothing() {
    let hook = TestHook::new(Claiming::Pipeline);
    let body = br#"{"id":"e1","type":"room.client.joined","data":{}}"#;
    let (status, _) = send(&hook, &signed(body), body).await;
    assert_eq!(status, 422);
    assert!(!hook.claimed("e1"));
    assert!(hook.applied().is_empty());
}

#[tokio::test]
async fn an_unhandled_type_is_accepted_without_claim_or_apply() {
    let hook = TestHook::new(Claiming::Pipeline);
    let body = br#"{"id":"e9","type":"room.session.started","data":{"whatever":1}}"#;
    assert_eq!(send(&hook, &signed(body), body).await, ok());
    assert!(!hook.claimed("e9"));
    assert!(hook.applied().is_empty());
}

#[tokio::test]
async fn a_pipeline_claim_is_taken_before_apply_and_a_duplicate_is_not_applied() {
    let hook = TestHook::new(Claiming::Pipeline);
    let body = join("e1");
    assert_eq!(send(&hook, &signed(&body), &body).await, ok());
    assert_eq!(send(&hook, &signed(&body), &body).await, ok());
    assert_eq!(hook.applied(), vec![("e1".to_owned(), true)]);
    assert!(hook.claimed("e1"));
    assert_eq!(hook.follow_ups(), vec![2]);
}

#[tokio::test]
async fn a_failed_apply_releases_the_claim_so_the_retry_applies() {
    let hook = TestHook::new(Claiming::Pipeline);
    let body = join("e1");
    hook.fail_apply(true);
    assert_eq!(
        send(&hook, &signed(&body), &body).await,
        detail(503, "Temporarily unable to process the event; retry later")
    );
    assert!(!hook.claimed("e1"));
    assert!(hook.follow_ups().is_empty());
    hook.fail_apply(false);
    assert_eq!(send(&hook, &signed(&body), &body).await, ok());
    assert_eq!(hook.applied(), vec![("e1".to_owned(), true)]);
}

#[tokio::test]
async fn a_claim_store_failure_is_503_and_nothing_is_applied() {
    let hook = TestHook::new(Claiming::Pipeline);
    hook.events.failures.fail("claim");
    let body = join("e1");
    let (status, _) = send(&hook, &signed(&body), &body).await;
    assert_eq!(status, 503);
    assert!(hook.applied().is_empty());
}

#[tokio::test]
async fn a_failed_release_still_answers_503() {
    let hook = TestHook::new(Claiming::Pipeline);
    hook.events.failures.fail("release");
    hook.fail_apply(true);
    let body = join("e1");
    let (status, _) = send(&hook, &signed(&body), &body).await;
    assert_eq!(status, 503);
    // The lease stays until it runs out: a retry meanwhile is asked to come back later, one
    // after it applies the event.
    assert!(hook.claimed("e1"));
    hook.fail_apply(false);
    let retry = send(&hook, &signed(&body), &body).await;
    assert_eq!(retry.0, 503);
    assert!(hook.applied().is_empty());
    let later = now() + chrono::Duration::seconds(61);
    assert_eq!(
        send_at(&hook, &signed_at(&body, later), &body, later).await,
        ok()
    );
    assert_eq!(hook.applied().len(), 1);
}

fn signed_at(body: &[u8], at: DateTime<Utc>) -> HeaderMap {
    header_map(&sign_whereby(SECRET, at.timestamp(), body))
}

/// Sends one delivery whose apply step never finishes, and drops it after its first poll: a
/// function killed by its timeout between the claim and the effect.
fn killed_delivery(hook: &TestHook, body: &[u8]) {
    use futures::FutureExt;
    hook.hang_apply(true);
    let response = run(hook, &signed(body), body, now()).now_or_never();
    assert!(response.is_none(), "the delivery was meant to die in apply");
    hook.hang_apply(false);
}

#[tokio::test]
async fn a_retry_after_the_lease_of_a_killed_delivery_applies_the_event_once() {
    let hook = TestHook::new(Claiming::Pipeline);
    let body = join("e1");
    killed_delivery(&hook, &body);
    assert!(hook.claimed("e1"));
    assert!(hook.applied().is_empty());

    // The platform's retry once the lease ran out takes the event over and applies it.
    let after_lease = now() + chrono::Duration::from_std(DEFAULT_LEASE).unwrap();
    let at = after_lease + chrono::Duration::seconds(1);
    assert_eq!(send_at(&hook, &signed_at(&body, at), &body, at).await, ok());
    assert_eq!(hook.applied(), vec![("e1".to_owned(), true)]);
    assert!(hook.events.is_completed(Platform::Whereby, "e1"));
    // Later retries and replays are duplicates: one effect in all.
    let again = at + chrono::Duration::seconds(30);
    assert_eq!(
        send_at(&hook, &signed_at(&body, again), &body, again).await,
        ok()
    );
    assert_eq!(hook.applied().len(), 1);
    assert_eq!(hook.follow_ups(), vec![2]);
    assert_eq!(hook.counted(Metric::WebhookAccepted, None), 1.0);
    assert_eq!(hook.counted(Metric::WebhookDuplicate, None), 1.0);
}

#[tokio::test]
async fn a_retry_within_the_lease_is_asked_to_come_back_and_applies_nothing() {
    let hook = TestHook::new(Claiming::Pipeline);
    let body = join("e1");
    killed_delivery(&hook, &body);
    let at = now() + chrono::Duration::seconds(20);
    let response = run(&hook, &signed_at(&body, at), &body, at).await;
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(response.headers()["retry-after"], "40");
    let body_json: serde_json::Value = serde_json::from_slice(response.body().as_ref()).unwrap();
    assert_eq!(
        body_json,
        serde_json::json!({"detail": "The event is being handled; retry later"})
    );
    assert!(hook.applied().is_empty());
    assert!(!hook.events.is_completed(Platform::Whereby, "e1"));
    assert_eq!(hook.counted(Metric::WebhookInProgress, None), 1.0);
    assert_eq!(hook.counted(Metric::WebhookDuplicate, None), 0.0);
}

#[tokio::test]
async fn a_delivery_whose_lease_was_taken_over_does_not_complete_the_other_lease() {
    let hook = TestHook::new(Claiming::Pipeline);
    let claim = |at| EventClaim {
        platform: Platform::Whereby,
        event_id: "e1",
        ttl: Duration::from_secs(3600),
        lease: DEFAULT_LEASE,
        now: at,
    };
    let EventLease::Taken { token: first } = hook.events.claim(claim(now())).await.unwrap() else {
        panic!("first claim refused");
    };
    let later = now() + chrono::Duration::seconds(61);
    let EventLease::Taken { token: second } = hook.events.claim(claim(later)).await.unwrap() else {
        panic!("an expired lease was not taken over");
    };
    // The first delivery, late, neither completes nor releases the second one's lease.
    assert!(!hook.events.complete(claim(now()), &first).await.unwrap());
    hook.events.release(claim(now()), &first).await.unwrap();
    assert_eq!(
        hook.events.claim(claim(later)).await.unwrap(),
        EventLease::InProgress {
            until: later + chrono::Duration::seconds(60)
        }
    );
    assert!(hook.events.complete(claim(later), &second).await.unwrap());
    assert_eq!(
        hook.events.claim(claim(later)).await.unwrap(),
        EventLease::Completed
    );
}

#[tokio::test]
async fn an_apply_step_that_claims_itself_gets_no_pipeline_claim() {
    let hook = TestHook::new(Claiming::InApply);
    let body = join("e1");
    assert_eq!(send(&hook, &signed(&body), &body).await, ok());
    // Not claimed when apply ran: the claim was the apply step's to write.
    assert_eq!(hook.applied(), vec![("e1".to_owned(), false)]);
    assert!(hook.claimed("e1"));
    // Its duplicate answer is 200 and applies nothing more.
    assert_eq!(send(&hook, &signed(&body), &body).await, ok());
    assert_eq!(hook.applied().len(), 1);
    assert_eq!(hook.follow_ups(), vec![2]);
}

#[tokio::test]
async fn a_failure_of_an_apply_step_that_claims_itself_releases_no_claim() {
    // The claim of an earlier, applied delivery is not the pipeline's to release: releasing it
    // would let a later retry apply the event twice.
    let hook = TestHook::new(Claiming::InApply);
    let body = join("e1");
    assert_eq!(send(&hook, &signed(&body), &body).await, ok());
    hook.fail_apply(true);
    let (status, _) = send(&hook, &signed(&body), &body).await;
    assert_eq!(status, 503);
    assert!(hook.claimed("e1"));
}

#[tokio::test]
async fn an_unclaimed_event_is_applied_every_time_without_a_claim() {
    let hook = TestHook::new(Claiming::Unclaimed);
    let body = join("e1");
    assert_eq!(send(&hook, &signed(&body), &body).await, ok());
    assert_eq!(send(&hook, &signed(&body), &body).await, ok());
    assert_eq!(hook.applied().len(), 2);
    assert!(!hook.claimed("e1"));
}

#[tokio::test]
async fn each_request_is_counted_once_under_its_outcome_and_rejection_reason() {
    let hook = TestHook::new(Claiming::Pipeline);
    let body = join("e1");
    // Accepted, then a duplicate.
    send(&hook, &signed(&body), &body).await;
    send(&hook, &signed(&body), &body).await;
    // Unsigned, wrongly signed, signed too long ago, signed but malformed, too large.
    send(&hook, &HeaderMap::new(), &body).await;
    let wrong = header_map(&sign_whereby("other", now().timestamp(), &body));
    send(&hook, &wrong, &body).await;
    let stale = header_map(&sign_whereby(SECRET, now().timestamp() - 3600, &body));
    send(&hook, &stale, &body).await;
    let malformed = br#"{"id":"e2","type":"room.client.joined","data":{}}"#;
    send(&hook, &signed(malformed), malformed).await;
    let large = vec![b' '; MAX_BODY_BYTES + 1];
    send(&hook, &signed(&large), &large).await;
    // A failed apply (503); the probe is not a webhook event and is not counted.
    hook.fail_apply(true);
    let other = join("e3");
    send(&hook, &signed(&other), &other).await;
    send(&hook, &HeaderMap::new(), PROBE).await;

    assert_eq!(hook.counted(Metric::WebhookAccepted, None), 1.0);
    assert_eq!(hook.counted(Metric::WebhookDuplicate, None), 1.0);
    assert_eq!(hook.counted(Metric::WebhookFailed, None), 1.0);
    assert_eq!(hook.counted(Metric::WebhookRejected, None), 5.0);
    for reason in [
        RejectReason::Missing,
        RejectReason::Invalid,
        RejectReason::Stale,
        RejectReason::Malformed,
        RejectReason::TooLarge,
    ] {
        assert_eq!(
            hook.counted(Metric::WebhookRejected, Some(reason)),
            1.0,
            "{reason:?}"
        );
    }
}

#[tokio::test]
async fn an_unset_secret_is_counted_as_unconfigured() {
    let mut hook = TestHook::new(Claiming::Pipeline);
    hook.secret = None;
    let body = join("e1");
    send(&hook, &signed(&body), &body).await;
    assert_eq!(
        hook.counted(Metric::WebhookRejected, Some(RejectReason::Unconfigured)),
        1.0
    );
}
