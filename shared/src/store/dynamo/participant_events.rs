//! Webhook participant events in one `TransactWriteItems` across three tables: the event's
//! dedupe claim (webhook_events), the participant session (participant_sessions) and the
//! meeting's client count (meetings). Written together or not at all, so a failed event leaves no
//! claim behind that would make the platform's retry a no-op, and no count without its claim.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::TransactWriteItem;
use aws_sdk_dynamodb::Client;
use tracing::{debug, instrument};

use super::item::{b, n, s, ts, Reader};
use super::meetings::{meeting_not_found, meeting_pk};
use super::sessions::{join_update, key as session_key, LEAVE_UPDATE};
use super::webhooks::{claim_item, CLAIM_CONDITION};
use super::{pk_key, transact, tx_put, tx_update, Expr};
use crate::config::TableNames;
use crate::store::{Applied, EventClaim, ParticipantChange, ParticipantEvents, StoreResult};

/// Positions of the items in the transaction (cancellation reasons come in this order).
const CLAIM: usize = 0;
const COUNT: usize = 2;

#[derive(Debug, Clone)]
pub struct DynamoParticipantEvents {
    client: Client,
    webhook_events: String,
    participant_sessions: String,
    meetings: String,
}

impl DynamoParticipantEvents {
    pub fn new(client: Client, tables: &TableNames) -> Self {
        Self {
            client,
            webhook_events: tables.webhook_events.clone(),
            participant_sessions: tables.participant_sessions.clone(),
            meetings: tables.meetings.clone(),
        }
    }

    fn claim_put(&self, claim: &EventClaim<'_>) -> StoreResult<TransactWriteItem> {
        let cond = Expr::new(CLAIM_CONDITION).value(":now", n(claim.now.timestamp()));
        tx_put(&self.webhook_events, claim_item(claim), &cond)
    }

    fn session_update(
        &self,
        meeting_id: &str,
        change: &ParticipantChange<'_>,
    ) -> StoreResult<TransactWriteItem> {
        match *change {
            ParticipantChange::Joined {
                session_id,
                user_id,
                user_name,
                joined_at,
            } => {
                let mut placeholders = Expr::default()
                    .value(":j", ts(joined_at))
                    .value(":t", b(true));
                if let Some(u) = user_id {
                    placeholders = placeholders.value(":u", s(u));
                }
                if let Some(name) = user_name {
                    placeholders = placeholders.value(":n", s(name));
                }
                tx_update(
                    &self.participant_sessions,
                    session_key(meeting_id, session_id),
                    &join_update(user_id.is_some(), user_name.is_some()),
                    None,
                    &placeholders,
                )
            }
            ParticipantChange::Left {
                session_id,
                left_at,
            } => tx_update(
                &self.participant_sessions,
                session_key(meeting_id, session_id),
                LEAVE_UPDATE,
                None,
                &Expr::default().value(":l", ts(left_at)),
            ),
        }
    }

    fn count_update(
        &self,
        meeting_id: &str,
        change: &ParticipantChange<'_>,
    ) -> StoreResult<TransactWriteItem> {
        let placeholders = Expr::default().value(":one", n(1)).value(":zero", n(0));
        let (update, condition) = match change {
            ParticipantChange::Joined { .. } => (
                "SET num_clients = if_not_exists(num_clients, :zero) + :one",
                "attribute_exists(pk)",
            ),
            ParticipantChange::Left { .. } => (
                "SET num_clients = num_clients - :one",
                "attribute_exists(pk) AND num_clients > :zero",
            ),
        };
        tx_update(
            &self.meetings,
            pk_key(meeting_pk(meeting_id)),
            update,
            Some(condition),
            &placeholders,
        )
    }
}

#[async_trait]
impl ParticipantEvents for DynamoParticipantEvents {
    /// One request: a TransactWriteItems of the claim Put (unknown or expired event), the
    /// session Update and the count Update (+1 on an existing meeting; -1 only while
    /// `num_clients > 0`). Two requests only when a leave finds the count at 0 already: the
    /// claim and session are then written again without the count. Each retry of a transaction
    /// cancelled by a concurrent one (`TransactionConflict`) is one more request.
    #[instrument(skip(self, claim, change), fields(platform = %claim.platform, event_id = claim.event_id))]
    async fn apply(
        &self,
        claim: EventClaim<'_>,
        meeting_id: &str,
        change: ParticipantChange<'_>,
    ) -> StoreResult<Applied> {
        let claim_put = self.claim_put(&claim)?;
        let session = self.session_update(meeting_id, &change)?;
        let count = self.count_update(meeting_id, &change)?;
        let cancelled = match transact(
            &self.client,
            vec![claim_put.clone(), session.clone(), count],
        )
        .await?
        {
            Ok(()) => return Ok(Applied::Applied),
            Err(cancelled) => cancelled,
        };
        if cancelled.condition_failed(CLAIM) {
            return Ok(Applied::Duplicate);
        }
        if !cancelled.condition_failed(COUNT) {
            return Err(cancelled.unexplained("participant event"));
        }
        let Some(meeting) = cancelled.old_item(COUNT) else {
            return Err(meeting_not_found(meeting_id));
        };
        if matches!(change, ParticipantChange::Joined { .. }) {
            // The join's only condition is that the meeting exists, and it did.
            return Err(cancelled.unexplained("participant event"));
        }
        let clients = Reader::with_id(meeting, "meeting", meeting_id).opt_i64("num_clients")?;
        debug!(
            num_clients = clients,
            "leave with no client counted; recording the leave without the count"
        );
        // The count is already 0 (a leave without its join, or a count reset by the sweeper):
        // the leave is still recorded and the event claimed, the count stays at 0.
        match transact(&self.client, vec![claim_put, session]).await? {
            Ok(()) => Ok(Applied::Applied),
            Err(again) if again.condition_failed(CLAIM) => Ok(Applied::Duplicate),
            Err(again) => Err(again.unexplained("participant event")),
        }
    }
}
