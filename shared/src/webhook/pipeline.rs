//! The one path every webhook request takes (DESIGN.md section 4), whatever the platform.
//!
//! [`run`] does, in this order, each step before anything of the next is looked at:
//! 1. body size: over [`MAX_BODY_BYTES`] is 413;
//! 2. the platform's unsigned probe, if it has one ([`Webhook::is_probe`]): 200, no effect;
//! 3. the signature over the raw bytes ([`Webhook::verify`]): 401, and the first rejection for
//!    an unset secret logs the configuration error once per process and platform;
//! 4. parse ([`Webhook::parse`]): 422 for a signed body we cannot understand;
//! 5. the event id and type recorded on the current span, so every later log line carries them;
//! 6. the claim, chosen per event by [`Webhook::claiming`] (see [`Claiming`]): a lease
//!    (`IN_PROGRESS` for [`Webhook::lease`]). A completed event is a duplicate, answered 200
//!    without applying anything; an event another delivery holds a live lease on is answered 503
//!    (with `Retry-After`) without applying anything, so the platform asks again; a lease that
//!    ran out (its delivery died between claim and effect) is taken over, and the event applied;
//! 7. apply ([`Webhook::apply`]), then the claim is completed ([`complete_claim`]) or, when
//!    apply failed, released ([`release_claim`]) and the answer is 503 so the platform retries.
//!    Because a lease can run out while its delivery still runs, and a delivery can die after
//!    its effects but before completing, every apply step's effects are idempotent;
//! 8. a follow-up on the apply step's outcome ([`Webhook::follow_up`]), after the claim is
//!    complete: work whose failure must not make the platform retry the event.
//!
//! Every request that reaches verification is counted once ([`crate::metrics`]):
//! `WebhookRejected` (with its `Reason`), `WebhookAccepted`, `WebhookDuplicate`,
//! `WebhookInProgress` (a live lease's 503) or `WebhookFailed` (the other 503s). The unsigned probe is not counted.
//!
//! A platform supplies only its verifier, parser, apply step and a few constants; status codes
//! and bodies come from [`responses`], and log lines name the platform by [`Webhook::NAME`].

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use http::HeaderMap;
use lambda_http::{Body, Response};
use tracing::{error, info, warn, Span};

use super::signature::SignatureError;
use super::{responses, ParseError, MAX_BODY_BYTES};
use crate::domain::Platform;
use crate::metrics::{Metric, Metrics, RejectReason};
use crate::store::{EventClaim, EventLease, StoreResult, WebhookEventStore};

/// The lease of an event unless configured (`WEBHOOK_LEASE_SECONDS`): six times the webhook
/// functions' 10 s timeout, so a delivery still running is never overtaken, and shorter than
/// Daily's retry backoff (minutes), so Daily's next retry after a dead delivery applies the
/// event. (Whereby's client events take no lease: they are claimed in their count's write.)
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

/// How an event is deduplicated, chosen per event by [`Webhook::claiming`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claiming {
    /// A type this service does not act on: accepted (200) without a claim or an apply.
    NotHandled,
    /// Applied without a claim: the apply step changes nothing that a repeat could double.
    Unclaimed,
    /// The pipeline takes a lease on the event id before apply, completes it after, and
    /// releases it when apply fails; the apply step's effects must be idempotent (a lease that
    /// ran out is taken over by a retry).
    Pipeline,
    /// The apply step writes the claim it is given together with its effect (one transaction),
    /// so there is nothing to release: it answers [`Outcome::Duplicate`] for a repeat.
    InApply,
}

/// What an apply step did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome<T> {
    /// Applied (possibly with nothing to change, e.g. an unknown meeting); `T` says what.
    Applied(T),
    /// The event was claimed before ([`Claiming::InApply`] only): nothing changed.
    Duplicate,
}

/// One platform's webhook: what differs between Daily and Whereby. Implemented by each webhook
/// function's dependencies; [`run`] is the rest. The event moves into the apply step, and the
/// async steps are boxed (`async_trait`): an unboxed future holding a generic associated type
/// across an await cannot be proven `Send` (rust-lang/rust#100013), and the webhook functions
/// need `Send` futures.
#[async_trait]
pub trait Webhook: Sync {
    /// A parsed event, borrowing from the raw body.
    type Event<'a>: Send + Sync;
    /// What an apply step reports when it succeeds, for [`Webhook::follow_up`].
    type Effect: Send;
    /// Why an apply step failed (our dependencies, not the event): answered 503.
    type Error: fmt::Display + Send;

    /// The platform events are claimed under.
    const PLATFORM: Platform;
    /// Lower-case platform name that starts log lines ("daily webhook body too large").
    const NAME: &'static str;
    /// The name in the log line of an unset secret ("every Daily webhook is rejected").
    const TITLE: &'static str;
    /// The variable holding the secret, named when it is unset.
    const SECRET_VAR: &'static str;
    /// How long a completed event id is remembered.
    const DEDUPE_TTL: Duration;

    /// How long a lease holds an event before a retry may take it over
    /// (`WEBHOOK_LEASE_SECONDS`): longer than the function may run.
    fn lease(&self) -> Duration {
        DEFAULT_LEASE
    }

    /// Where the pipeline's claims are written.
    fn events(&self) -> &dyn WebhookEventStore;

    /// Where the pipeline counts outcomes: accepted, duplicate, rejected (by reason), failed.
    fn metrics(&self) -> &Metrics;

    /// A request answered 200 before verification, with no effect (Daily's creation probe).
    fn is_probe(&self, _body: &[u8]) -> bool {
        false
    }

    /// Verifies the signature over the raw bytes.
    fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), SignatureError>;

    /// Parses a verified body.
    fn parse<'a>(&self, body: &'a [u8]) -> Result<Self::Event<'a>, ParseError>;

    /// The deduplication key.
    fn event_id<'e>(event: &'e Self::Event<'_>) -> &'e str;

    /// The type as sent, for logs.
    fn event_type<'e>(event: &'e Self::Event<'_>) -> &'e str;

    /// Records fields beyond `event_id` and `event_type` on the request's span.
    fn record_details(_event: &Self::Event<'_>, _span: &Span) {}

    /// How this event is claimed.
    fn claiming(&self, event: &Self::Event<'_>) -> Claiming;

    /// The event's effect. `claim` is the claim the event is handled under (`claim.now` is the
    /// time it is handled): written by the
    /// pipeline before this call for [`Claiming::Pipeline`], to be written by this step with its
    /// effect for [`Claiming::InApply`]. When the pipeline holds no claim ([`Claiming::InApply`],
    /// [`Claiming::Unclaimed`]) this step logs its own failure, since only it knows what was
    /// (not) written.
    async fn apply(
        &self,
        event: Self::Event<'_>,
        claim: EventClaim<'_>,
    ) -> Result<Outcome<Self::Effect>, Self::Error>;

    /// Work after an applied event's claim is complete; its failures are logged, not retried by
    /// the platform (the event is handled). Nothing by default.
    async fn follow_up(&self, _effect: Self::Effect, _now: DateTime<Utc>) {}
}

/// The whole webhook over raw parts. Call it inside the handler's span, which declares
/// `event_id` and `event_type` (and whatever [`Webhook::record_details`] records) as empty
/// fields for this function to fill in.
pub async fn run<W: Webhook>(
    webhook: &W,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Response<Body> {
    let name = W::NAME;
    let metrics = webhook.metrics();
    let platform = Some(W::PLATFORM);
    if body.len() > MAX_BODY_BYTES {
        warn!(limit = MAX_BODY_BYTES, "{name} webhook body too large");
        metrics.webhook_rejected(W::PLATFORM, RejectReason::TooLarge);
        return responses::too_large();
    }
    if webhook.is_probe(body) {
        info!("{name} webhook verification probe answered");
        return responses::ok();
    }
    if let Err(e) = webhook.verify(headers, body, now) {
        log_rejection::<W>(&e);
        metrics.webhook_rejected(W::PLATFORM, reject_reason(&e));
        return responses::signature_rejected(&e);
    }
    let event = match webhook.parse(body) {
        Ok(event) => event,
        Err(e) => {
            warn!(error = %e, "signed {name} webhook body is malformed");
            metrics.webhook_rejected(W::PLATFORM, RejectReason::Malformed);
            return responses::unprocessable(&e);
        }
    };
    // Recorded on the handler's span (not a guard held across awaits) so every log line of
    // this event carries them.
    let span = Span::current();
    span.record("event_id", W::event_id(&event));
    span.record("event_type", W::event_type(&event));
    W::record_details(&event, &span);

    // Owned, because the event itself moves into the apply step.
    let event_id = W::event_id(&event).to_owned();
    let claim = EventClaim {
        platform: W::PLATFORM,
        event_id: &event_id,
        ttl: W::DEDUPE_TTL,
        lease: webhook.lease(),
        now,
    };
    let claiming = webhook.claiming(&event);
    // The lease token this delivery holds (`Claiming::Pipeline` only).
    let lease = match claiming {
        Claiming::NotHandled => {
            info!("{name} event type not handled; accepted");
            metrics.count(Metric::WebhookAccepted, platform);
            return responses::ok();
        }
        Claiming::Pipeline => match take_claim(webhook.events(), claim).await {
            Ok(EventLease::Taken { token }) => Some(token),
            Ok(EventLease::Completed) => {
                info!("{name} event already handled; duplicate ignored");
                metrics.count(Metric::WebhookDuplicate, platform);
                return responses::ok();
            }
            Ok(EventLease::InProgress { until }) => {
                let wait = until.signed_duration_since(now).num_seconds().max(1);
                info!(
                    retry_after = wait,
                    "{name} event being handled by another delivery; retry later"
                );
                metrics.count(Metric::WebhookInProgress, platform);
                return responses::in_progress(u64::try_from(wait).unwrap_or(1));
            }
            Err(e) => {
                error!(error = %e, "cannot claim {name} event");
                metrics.count(Metric::WebhookFailed, platform);
                return responses::retry_later();
            }
        },
        Claiming::Unclaimed | Claiming::InApply => None,
    };

    let effect = match webhook.apply(event, claim).await {
        Ok(Outcome::Applied(effect)) => effect,
        Ok(Outcome::Duplicate) => {
            info!("{name} event already handled; duplicate ignored");
            metrics.count(Metric::WebhookDuplicate, platform);
            return responses::ok();
        }
        Err(e) => {
            if let Some(token) = &lease {
                error!(error = %e, "{name} event handling failed; releasing the claim for a retry");
                release_claim(webhook.events(), claim, token, name).await;
            }
            metrics.count(Metric::WebhookFailed, platform);
            return responses::retry_later();
        }
    };
    metrics.count(Metric::WebhookAccepted, platform);
    if let Some(token) = &lease {
        complete_claim(webhook.events(), claim, token, name).await;
    }
    webhook.follow_up(effect, now).await;
    responses::ok()
}

/// Takes the event's lease, or says who holds it.
async fn take_claim(
    events: &dyn WebhookEventStore,
    claim: EventClaim<'_>,
) -> StoreResult<EventLease> {
    events.claim(claim).await
}

/// Marks the event's effects as written, so retries and replays are duplicates. A failure
/// leaves the lease to run out: a retry after it applies the event again, which its
/// idempotent effects make harmless.
async fn complete_claim(
    events: &dyn WebhookEventStore,
    claim: EventClaim<'_>,
    token: &str,
    name: &str,
) {
    match events.complete(claim, token).await {
        Ok(true) => {}
        Ok(false) => {
            warn!("the {name} event's lease ran out before it was completed; the delivery that took it over completes it")
        }
        Err(e) => {
            error!(error = %e, "cannot complete the {name} event claim; a retry after the lease applies it again (harmless)")
        }
    }
}

/// Gives the lease back after a failed apply, so the platform's retry is handled at once.
async fn release_claim(
    events: &dyn WebhookEventStore,
    claim: EventClaim<'_>,
    token: &str,
    name: &str,
) {
    if let Err(e) = events.release(claim, token).await {
        error!(error = %e, "cannot release the {name} event claim; a retry is handled once the lease runs out");
    }
}

/// The `Reason` a signature error is counted under.
fn reject_reason(e: &SignatureError) -> RejectReason {
    match e {
        SignatureError::NotConfigured => RejectReason::Unconfigured,
        SignatureError::Missing => RejectReason::Missing,
        e if e.is_stale() => RejectReason::Stale,
        SignatureError::Invalid { .. } => RejectReason::Invalid,
    }
}

fn log_rejection<W: Webhook>(e: &SignatureError) {
    let name = W::NAME;
    match e {
        SignatureError::NotConfigured => {
            if first_unset_secret(W::PLATFORM) {
                error!(
                    "{} is not set: every {} webhook is rejected",
                    W::SECRET_VAR,
                    W::TITLE
                );
            }
        }
        SignatureError::Missing => warn!("{name} webhook without signature rejected"),
        SignatureError::Invalid { reason } => warn!(reason, "{name} webhook signature rejected"),
    }
}

/// True the first time per process that `platform`'s secret was found unset (one flag per
/// platform: a static in a generic function is shared by all its instances).
fn first_unset_secret(platform: Platform) -> bool {
    static DAILY: AtomicBool = AtomicBool::new(false);
    static WHEREBY: AtomicBool = AtomicBool::new(false);
    static MOCK: AtomicBool = AtomicBool::new(false);
    let flag = match platform {
        Platform::Daily => &DAILY,
        Platform::Whereby => &WHEREBY,
        Platform::Mock => &MOCK,
    };
    !flag.swap(true, Ordering::Relaxed)
}

#[cfg(test)]
#[path = "pipeline_tests.rs"]
mod tests;
