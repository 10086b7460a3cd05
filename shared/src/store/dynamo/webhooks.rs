//! Webhook event claims as leases (DESIGN.md section 4): `pk = <platform>#<event id>`, with
//! `claim_state` `IN_PROGRESS` (a delivery is applying the event; `lease_token` names it) or
//! `COMPLETED` (its effects are written), and a TTL attribute `expires_at` (epoch seconds): the
//! end of the lease while in progress, the end of the dedupe window once completed. TTL deletion
//! lags (and moto never deletes), so every condition treats an expired item as absent: an
//! expired lease is how a retry takes over the event of a delivery that died between claim and
//! effect. An item without `claim_state` (written before leases) counts as completed.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use tracing::instrument;

use super::item::{n, s, string_attr, ts, Item};
use super::{get_item, is_condition_failed, pk_key, sdk_error, update_item, Expr};
use crate::domain::Platform;
use crate::store::{EventClaim, EventLease, StoreResult, WebhookEventStore};

#[derive(Debug, Clone)]
pub struct DynamoWebhookEventStore {
    client: Client,
    table: String,
}

fn event_pk(platform: Platform, event_id: &str) -> String {
    format!("{platform}#{event_id}")
}

/// `claim_state` of an event whose delivery is applying it.
const IN_PROGRESS: &str = "IN_PROGRESS";
/// `claim_state` of an event whose effects are written.
const COMPLETED: &str = "COMPLETED";

/// A claim (lease or completed) succeeds on an unknown event or one whose item expired: the
/// dedupe window of a completed event, or the lease of a delivery that never finished
/// (`:now` in epoch seconds).
pub(super) const CLAIM_CONDITION: &str = "attribute_not_exists(pk) OR expires_at <= :now";

/// Epoch seconds `d` after `now`.
fn after(now: DateTime<Utc>, d: Duration) -> i64 {
    now.timestamp()
        .saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn base_item(claim: &EventClaim<'_>, state: &str, expires_at: i64) -> Item {
    [
        ("pk", s(event_pk(claim.platform, claim.event_id))),
        ("kind", s("webhook_event")),
        ("platform", s(claim.platform.as_str())),
        ("event_id", s(claim.event_id)),
        ("claimed_at", ts(claim.now)),
        ("claim_state", s(state)),
        ("expires_at", n(expires_at)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// The completed claim of an event whose claim is written together with its effects (one
/// transaction, [`super::participant_events`]), remembered until `claim.now + claim.ttl`.
pub(super) fn claim_item(claim: &EventClaim<'_>) -> Item {
    base_item(claim, COMPLETED, after(claim.now, claim.ttl))
}

/// The lease item of a delivery: in progress until `claim.now + claim.lease`.
fn lease_item(claim: &EventClaim<'_>, token: &str) -> Item {
    let mut item = base_item(claim, IN_PROGRESS, after(claim.now, claim.lease));
    item.insert("lease_token".to_owned(), s(token));
    item
}

/// What a claim that found `existing` (unexpired) reports.
fn held_by(existing: &Item) -> EventLease {
    if string_attr(Some(existing), "claim_state") != Some(IN_PROGRESS) {
        return EventLease::Completed;
    }
    let until = match existing.get("expires_at") {
        Some(AttributeValue::N(v)) => v.parse::<i64>().ok(),
        _ => None,
    }
    .and_then(|secs| DateTime::from_timestamp(secs, 0))
    .unwrap_or(DateTime::<Utc>::MIN_UTC);
    EventLease::InProgress { until }
}

impl DynamoWebhookEventStore {
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }
}

#[async_trait]
impl WebhookEventStore for DynamoWebhookEventStore {
    /// One request: a PutItem of the lease on condition that the event is unknown or its item
    /// expired; a refusal carries the item that refused it (one more GetItem only when it did
    /// not).
    #[instrument(skip(self, claim), fields(platform = %claim.platform, event_id = claim.event_id))]
    async fn claim(&self, claim: EventClaim<'_>) -> StoreResult<EventLease> {
        let token = uuid::Uuid::new_v4().to_string();
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(lease_item(&claim, &token)))
            .condition_expression(CLAIM_CONDITION)
            .expression_attribute_values(":now", n(claim.now.timestamp()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let existing = match result {
            Ok(_) => return Ok(EventLease::Taken { token }),
            Err(e) if is_condition_failed(&e) => match e.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(c)) => {
                    c.item().filter(|i| !i.is_empty()).cloned()
                }
                _ => None,
            },
            Err(e) => return Err(sdk_error("PutItem", e)),
        };
        let existing = match existing {
            Some(item) => Some(item),
            None => {
                get_item(
                    &self.client,
                    &self.table,
                    pk_key(event_pk(claim.platform, claim.event_id)),
                )
                .await?
            }
        };
        match existing {
            Some(item) => Ok(held_by(&item)),
            // Released between the refusal and the read: the event is free again, and the
            // platform's retry (asked for at once) takes it.
            None => Ok(EventLease::InProgress { until: claim.now }),
        }
    }

    /// One request: an UpdateItem to `COMPLETED` with the dedupe window, on condition that the
    /// lease is still `token`'s.
    #[instrument(skip(self, claim, token), fields(platform = %claim.platform, event_id = claim.event_id))]
    async fn complete(&self, claim: EventClaim<'_>, token: &str) -> StoreResult<bool> {
        let placeholders = Expr::default()
            .value(":done", s(COMPLETED))
            .value(":exp", n(after(claim.now, claim.ttl)))
            .value(":at", ts(Utc::now()))
            .value(":token", s(token));
        let result = update_item(
            &self.client,
            &self.table,
            pk_key(event_pk(claim.platform, claim.event_id)),
            "SET claim_state = :done, expires_at = :exp, completed_at = :at REMOVE lease_token",
            Some("lease_token = :token"),
            &placeholders,
            ReturnValue::None,
        )
        .await?;
        Ok(result.is_ok())
    }

    /// One request: a DeleteItem on condition that the lease is still `token`'s (a lease taken
    /// over by a retry, or completed by it, is not this delivery's to give back).
    #[instrument(skip(self, claim, token), fields(platform = %claim.platform, event_id = claim.event_id))]
    async fn release(&self, claim: EventClaim<'_>, token: &str) -> StoreResult<()> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(pk_key(event_pk(claim.platform, claim.event_id))))
            .condition_expression("lease_token = :token")
            .expression_attribute_values(":token", s(token))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Ok(()),
            Err(e) => Err(sdk_error("DeleteItem", e)),
        }
    }
}
