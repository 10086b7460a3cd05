//! `POST /v1/whereby` (DESIGN.md section 4).
//!
//! Body size (413), then `Whereby-Signature` over the raw bytes with a 60 s tolerance (401), then
//! the envelope (422). `room.client.joined/left` set the meeting's `num_clients` to Whereby's
//! `numClients` unless a newer event (by `createdAt`) was applied already, so duplicates and
//! out-of-order deliveries are harmless; event ids are also claimed, so a replay costs one
//! DynamoDB request instead of three.
//!
//! DynamoDB requests per client event: 3 (claim, meeting by room name, conditional count write).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

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
use shared::platform::signature::verify_whereby;
use shared::platform::SignatureError;
use shared::store::dynamo::DynamoStores;
use shared::store::{MeetingStore, StoreError, WebhookEventStore};
use shared::webhook::whereby::{self, ClientChange, EventKind};
use shared::webhook::{responses, MAX_BODY_BYTES};

/// How long an event id is remembered: Whereby retries twice within seconds; a day covers
/// manual replays of a meeting's events (rooms live until 1 h after their end date).
pub const DEDUPE_TTL: Duration = Duration::from_secs(24 * 3600);

/// What the handler needs; built once per process.
#[derive(Clone)]
pub struct Deps {
    pub meetings: Arc<dyn MeetingStore>,
    pub events: Arc<dyn WebhookEventStore>,
    /// `WHEREBY_WEBHOOK_SECRET`; `None` rejects every request.
    pub secret: Option<SecretString>,
}

impl Deps {
    /// The production wiring: DynamoDB stores and `WHEREBY_WEBHOOK_SECRET` from `config`. An
    /// unset secret is not a start-up error: every request is then rejected (401) and the first
    /// rejection logs the configuration error.
    pub fn from_config(config: &Config, clients: &AwsClients) -> Self {
        let stores = DynamoStores::new(clients.dynamodb.clone(), &config.tables);
        Self {
            meetings: Arc::new(stores.meetings),
            events: Arc::new(stores.webhook_events),
            secret: config.whereby.webhook_secret.clone(),
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
#[instrument(skip_all, fields(bytes = body.len(), event_id = Empty, event_type = Empty))]
pub async fn handle_raw(
    deps: &Deps,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Response<Body> {
    if body.len() > MAX_BODY_BYTES {
        warn!(limit = MAX_BODY_BYTES, "whereby webhook body too large");
        return responses::too_large();
    }
    if let Err(e) = verify_whereby(deps.secret.as_ref(), headers, body, now) {
        log_rejection(&e);
        return responses::signature_rejected(&e);
    }
    let event = match whereby::parse(body) {
        Ok(event) => event,
        Err(e) => {
            warn!(error = %e, "signed whereby webhook body is malformed");
            return responses::unprocessable(&e);
        }
    };
    // Recorded on the handler's span (not a guard held across awaits) so every log line of
    // this event carries them.
    let span = Span::current();
    span.record("event_id", event.id.as_ref());
    span.record("event_type", event.event_type.as_ref());

    let change = match &event.kind {
        EventKind::ClientJoined(c) | EventKind::ClientLeft(c) => c,
        EventKind::Unknown => {
            info!("whereby event type not handled; accepted");
            return responses::ok();
        }
    };
    match deps
        .events
        .claim(Platform::Whereby, &event.id, DEDUPE_TTL)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            info!("whereby event already handled; duplicate ignored");
            return responses::ok();
        }
        Err(e) => {
            error!(error = %e, "cannot claim whereby event");
            return responses::retry_later();
        }
    }
    // Without createdAt the receive time is the best order we have.
    let observed_at = event.created_at.unwrap_or(now);
    match set_count(deps, change, observed_at).await {
        Ok(()) => responses::ok(),
        Err(e) => {
            error!(error = %e, "whereby event handling failed; releasing the claim for a retry");
            if let Err(release) = deps.events.release(Platform::Whereby, &event.id).await {
                error!(error = %release, "cannot release the whereby event claim; a retry will be ignored");
            }
            responses::retry_later()
        }
    }
}

static SECRET_MISSING_LOGGED: AtomicBool = AtomicBool::new(false);

fn log_rejection(e: &SignatureError) {
    match e {
        SignatureError::NotConfigured => {
            if !SECRET_MISSING_LOGGED.swap(true, Ordering::Relaxed) {
                error!("WHEREBY_WEBHOOK_SECRET is not set: every Whereby webhook is rejected");
            }
        }
        SignatureError::Missing => warn!("whereby webhook without signature rejected"),
        SignatureError::Invalid { reason } => warn!(reason, "whereby webhook signature rejected"),
    }
}

async fn set_count(
    deps: &Deps,
    change: &ClientChange<'_>,
    observed_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let Some(meeting) = deps.meetings.get_by_room_name(&change.room_name).await? else {
        warn!(room = %change.room_name, "whereby event for an unknown meeting; accepted and ignored");
        return Ok(());
    };
    let written = deps
        .meetings
        .set_clients_if_newer(&meeting.id, change.num_clients, observed_at)
        .await?;
    if written {
        info!(meeting_id = %meeting.id, num_clients = change.num_clients, "whereby client count set");
    } else {
        info!(meeting_id = %meeting.id, num_clients = change.num_clients, "older whereby event; newer count kept");
    }
    Ok(())
}
