//! Webhook client-count events (Whereby's `room.client.joined/left`, which carry the room's whole
//! count) in one `TransactWriteItems` across two tables: the event's dedupe claim
//! (webhook_events, written `COMPLETED`) and the meeting's count, set only when the event is newer
//! than the stored count (meetings). Written together or not at all, so a failed event leaves no
//! claim behind that would make the platform's retry a no-op.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::TransactWriteItem;
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use tracing::{debug, instrument};

use super::item::n;
use super::meetings::{
    clients_placeholders, meeting_not_found, meeting_pk, CLIENTS_NEWER_CONDITION, CLIENTS_UPDATE,
};
use super::webhooks::{claim_item, CLAIM_CONDITION};
use super::{is_condition_failed, pk_key, sdk_error, transact, tx_put, tx_update, Expr};
use crate::config::TableNames;
use crate::store::{ClientCountEvents, CountWrite, EventClaim, StoreResult};

/// Positions of the items in the transaction (cancellation reasons come in this order).
const CLAIM: usize = 0;
const COUNT: usize = 1;

#[derive(Debug, Clone)]
pub struct DynamoClientCountEvents {
    client: Client,
    webhook_events: String,
    meetings: String,
}

impl DynamoClientCountEvents {
    pub fn new(client: Client, tables: &TableNames) -> Self {
        Self {
            client,
            webhook_events: tables.webhook_events.clone(),
            meetings: tables.meetings.clone(),
        }
    }

    fn claim_condition(claim: &EventClaim<'_>) -> Expr {
        Expr::new(CLAIM_CONDITION).value(":now", n(claim.now.timestamp()))
    }

    /// The claim alone, as a PutItem with the claim's condition: true when written, false
    /// when the event was claimed already.
    async fn put_claim(&self, claim: &EventClaim<'_>) -> StoreResult<bool> {
        let cond = Self::claim_condition(claim);
        let result = self
            .client
            .put_item()
            .table_name(&self.webhook_events)
            .set_item(Some(claim_item(claim)))
            .condition_expression(&cond.expr)
            .set_expression_attribute_values(cond.values_opt())
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(sdk_error("PutItem", e)),
        }
    }
}

#[async_trait]
impl ClientCountEvents for DynamoClientCountEvents {
    /// One request: a TransactWriteItems of the claim Put (unknown event, or its item expired:
    /// a completed claim past its dedupe window or a lease that ran out) and the count Update
    /// (an existing meeting with no observation at or after `observed_at`). A claim that is
    /// still live, completed or `IN_PROGRESS` under a pipeline lease of an earlier deployment,
    /// makes the event a duplicate, as for Daily's participant events. Two requests only for an
    /// event older than the stored count (out of order): the claim is then written alone. Each
    /// retry of a transaction cancelled by a concurrent one (`TransactionConflict`) is one more
    /// request.
    #[instrument(skip(self, claim), fields(platform = %claim.platform, event_id = claim.event_id))]
    async fn set_clients(
        &self,
        claim: EventClaim<'_>,
        meeting_id: &str,
        count: i64,
        observed_at: DateTime<Utc>,
    ) -> StoreResult<CountWrite> {
        let claim_put: TransactWriteItem = tx_put(
            &self.webhook_events,
            claim_item(&claim),
            &Self::claim_condition(&claim),
        )?;
        let count_update = tx_update(
            &self.meetings,
            pk_key(meeting_pk(meeting_id)),
            CLIENTS_UPDATE,
            Some(CLIENTS_NEWER_CONDITION),
            &clients_placeholders(count, observed_at),
        )?;
        let cancelled = match transact(&self.client, vec![claim_put, count_update]).await? {
            Ok(()) => return Ok(CountWrite::Written),
            Err(cancelled) => cancelled,
        };
        if cancelled.condition_failed(CLAIM) {
            return Ok(CountWrite::Duplicate);
        }
        if !cancelled.condition_failed(COUNT) {
            return Err(cancelled.unexplained("client count"));
        }
        if cancelled.old_item(COUNT).is_none() {
            return Err(meeting_not_found(meeting_id));
        }
        // Not newer than the stored count: an out-of-order delivery, or the retry of an event
        // whose count an earlier deployment's delivery wrote before it died holding its lease.
        // The cancelled transaction wrote nothing, so the claim is written alone: one more
        // request, on this rare path only, and a replay of the event stays a duplicate that
        // the transaction answers. Leaving it unclaimed would also be correct while
        // `observed_at` is Whereby's `createdAt` (a replay repeats the same no-op), but an
        // event without `createdAt` is ordered by its receive time, and an unclaimed replay of
        // it, received later, would overwrite a newer count with a stale one.
        debug!("older than the stored count; the count is kept and the event claimed alone");
        if self.put_claim(&claim).await? {
            Ok(CountWrite::Older)
        } else {
            Ok(CountWrite::Duplicate)
        }
    }
}
