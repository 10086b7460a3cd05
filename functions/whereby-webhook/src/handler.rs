//! `POST /v1/whereby` (DESIGN.md section 4).
//!
//! The steps are [`shared::webhook::pipeline`]'s: body size (413), then `Whereby-Signature` over
//! the raw bytes with a 60 s tolerance (401), then the envelope (422); this module supplies
//! Whereby's verifier, parser and apply step. `room.client.joined/left` set the meeting's
//! `num_clients` to Whereby's `numClients` unless a newer event (by `createdAt`) was applied
//! already, so duplicates and out-of-order deliveries are harmless. A client event is claimed in
//! the same transaction that sets the count ([`ClientCountEvents`]): it is applied whole or not
//! at all, so a failure (503) leaves no claim behind for Whereby's retry to trip over, and a
//! replay is answered by that one transaction. An event older than the stored count is still
//! claimed (the count kept), so its replays are duplicates too. Nothing is claimed for an
//! unknown meeting (nothing would change). Claims written by earlier deployments (a pipeline
//! lease, `IN_PROGRESS` or `COMPLETED`) keep working: a live one makes the event a duplicate, an
//! expired one is overwritten.
//!
//! DynamoDB requests per client event: 2 (meeting by room name, one transaction of claim and
//! conditional count write; 3 for an event older than the stored count, whose claim is then
//! written alone; 1 for an unknown meeting). The meeting lookup is needed because Whereby names
//! rooms, not meetings.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::State;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::HeaderMap;
use lambda_http::{Body, Response};
use secrecy::SecretString;
use tracing::field::Empty;
use tracing::{error, info, instrument, warn, Span};

use shared::aws::AwsClients;
use shared::config::Config;
use shared::domain::Platform;
use shared::http::Route;
use shared::metrics::{Function, Metric, Metrics};
use shared::store::dynamo::DynamoStores;
use shared::store::{
    ClientCountEvents, CountWrite, EventClaim, MeetingStore, StoreError, WebhookEventStore,
};
use shared::webhook::pipeline::{self, Claiming, Outcome, Webhook};
use shared::webhook::signature::{verify_whereby, SignatureError};
use shared::webhook::whereby::{self, ClientChange, EventKind};
use shared::webhook::ParseError;

/// How long an event id is remembered: Whereby retries twice within seconds; a day covers
/// manual replays of a meeting's events (rooms live until 1 h after their end date).
pub const DEDUPE_TTL: Duration = Duration::from_secs(24 * 3600);

/// What the handler needs; built once per process.
#[derive(Clone)]
pub struct Deps {
    pub meetings: Arc<dyn MeetingStore>,
    /// Client events: claim and count in one write.
    pub counts: Arc<dyn ClientCountEvents>,
    /// The pipeline's claims (no event type of this webhook uses them since client events
    /// claim in their own write; required by [`Webhook`]).
    pub events: Arc<dyn WebhookEventStore>,
    /// `WHEREBY_WEBHOOK_SECRET`; `None` rejects every request.
    pub secret: Option<SecretString>,
    /// `WEBHOOK_LEASE_SECONDS`: how long a delivery holds an event before a retry may take it
    /// over.
    pub lease: Duration,
    pub metrics: Metrics,
}

impl Deps {
    /// The production wiring: DynamoDB stores and `WHEREBY_WEBHOOK_SECRET` from `config`. An
    /// unset secret is not a start-up error: every request is then rejected (401) and the first
    /// rejection logs the configuration error.
    pub fn from_config(config: &Config, clients: &AwsClients) -> Self {
        let stores = DynamoStores::new(clients.dynamodb.clone(), &config.tables);
        Self {
            meetings: Arc::new(stores.meetings),
            counts: Arc::new(stores.client_count_events),
            events: Arc::new(stores.webhook_events),
            secret: config.whereby.webhook_secret.clone(),
            lease: config.webhook_lease,
            metrics: Metrics::standard(Function::WherebyWebhook),
        }
    }
}

/// The function's one route, as in template.yaml's HttpApi events (a test of the local crate
/// checks both ways).
pub const ROUTES: &[Route<Arc<Deps>>] = &[Route {
    method: http::Method::POST,
    path: "/v1/whereby",
    handler: |m| axum::routing::on(m, handle),
}];

/// The function's router over `deps`: `lambda_http` serves it in Lambda, `reflector-local`
/// merges it into its server.
pub fn router(deps: Arc<Deps>) -> axum::Router {
    shared::http::router(ROUTES, deps)
}

/// The route's handler: the raw headers and body (lambda_http has decoded base64 already).
pub async fn handle(
    State(deps): State<Arc<Deps>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    handle_raw(&deps, &headers, &body, Utc::now()).await
}

/// The whole webhook over raw parts, with the time as a parameter so tests can check tolerance.
/// The steps are [`pipeline::run`]'s; what is Whereby's is the [`Webhook`] implementation below.
#[instrument(skip_all, fields(bytes = body.len(), event_id = Empty, event_type = Empty, room = Empty, meeting_id = Empty))]
pub async fn handle_raw(
    deps: &Deps,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Response<Body> {
    pipeline::run(deps, headers, body, now).await
}

#[async_trait]
impl Webhook for Deps {
    type Event<'a> = whereby::Event<'a>;
    type Effect = ();
    type Error = StoreError;

    const PLATFORM: Platform = Platform::Whereby;
    const NAME: &'static str = "whereby";
    const TITLE: &'static str = "Whereby";
    const SECRET_VAR: &'static str = "WHEREBY_WEBHOOK_SECRET";
    const DEDUPE_TTL: Duration = DEDUPE_TTL;

    fn events(&self) -> &dyn WebhookEventStore {
        self.events.as_ref()
    }

    fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn lease(&self) -> Duration {
        self.lease
    }

    fn record_details(event: &Self::Event<'_>, span: &Span) {
        if let EventKind::ClientJoined(c) | EventKind::ClientLeft(c) = &event.kind {
            span.record("room", &*c.room_name);
        }
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
            // Claimed in the transaction that sets the count.
            EventKind::ClientJoined(_) | EventKind::ClientLeft(_) => Claiming::InApply,
            EventKind::Unknown => Claiming::NotHandled,
        }
    }

    async fn apply(
        &self,
        event: Self::Event<'_>,
        claim: EventClaim<'_>,
    ) -> Result<Outcome<()>, StoreError> {
        let change = match &event.kind {
            EventKind::ClientJoined(c) | EventKind::ClientLeft(c) => c,
            // Answered before apply (`Claiming::NotHandled`).
            EventKind::Unknown => return Ok(Outcome::Applied(())),
        };
        // Without createdAt the receive time is the best order we have.
        let observed_at = event.created_at.unwrap_or(claim.now);
        let joined = matches!(event.kind, EventKind::ClientJoined(_));
        set_count(self, claim, change, observed_at, joined).await
    }
}

/// The meeting lookup, then one transaction that claims the event and sets the meeting's count
/// if the event is newer. The pipeline holds no claim for these events, so failures are logged
/// here: nothing was written, and Whereby's retry applies the event.
async fn set_count(
    deps: &Deps,
    claim: EventClaim<'_>,
    change: &ClientChange<'_>,
    observed_at: DateTime<Utc>,
    joined: bool,
) -> Result<Outcome<()>, StoreError> {
    let meeting = match deps.meetings.get_by_room_name(&change.room_name).await {
        Ok(Some(meeting)) => meeting,
        Ok(None) => {
            warn!(room = %change.room_name, "whereby event for an unknown meeting; accepted and ignored");
            return Ok(Outcome::Applied(()));
        }
        Err(e) => {
            error!(error = %e, "cannot look up the meeting of a whereby client event; nothing written, a retry can apply it");
            return Err(e);
        }
    };
    Span::current().record("meeting_id", meeting.id.as_str());
    let written = match deps
        .counts
        .set_clients(claim, &meeting.id, change.num_clients, observed_at)
        .await
    {
        Ok(written) => written,
        Err(e) => {
            error!(error = %e, meeting_id = %meeting.id, "whereby client event not applied; nothing written, a retry can apply it");
            return Err(e);
        }
    };
    match written {
        CountWrite::Written => {
            info!(meeting_id = %meeting.id, num_clients = change.num_clients, "whereby client count set");
        }
        CountWrite::Older => {
            info!(meeting_id = %meeting.id, num_clients = change.num_clients, "older whereby event; newer count kept");
        }
        CountWrite::Duplicate => return Ok(Outcome::Duplicate),
    }
    if joined {
        deps.metrics
            .count(Metric::ParticipantJoined, Some(Platform::Whereby));
    }
    Ok(Outcome::Applied(()))
}
