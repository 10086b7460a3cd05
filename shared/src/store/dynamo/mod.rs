//! DynamoDB implementation of the store traits.
//!
//! Tables, keys and indexes are declared in `infra/tables.yaml` (created locally by
//! [`crate::provision::ensure_tables`]). Every item carries a `kind` attribute; marker items live
//! in their own key space (`name#`, `active#`, `source#`, ...) and lack the attributes that the
//! listing indexes are keyed on, so they never show up in a listing.
//!
//! | table | items (key) | indexes |
//! |---|---|---|
//! | rooms | room `pk = room#<id>`; name marker `pk = name#<name>`, a full copy of the room | `owner-created-index` (`owner_key` = `user#<id>` or `anon` while not shared, `created_at`); `shared-created-index` (`shared_key` = `shared` while shared, `created_at`): disjoint, a listing merges a page of each |
//! | meetings | meeting `pk = meeting#<id>`; active marker `pk = active#<room_id>` (`meeting_id`, `end_date`) | `room-name-index` (`room_name`, `start_date`); sparse `active-index` (`active_key` = `active` while active, `end_date`) |
//! | participant_sessions | `meeting_id` + `session_id` | |
//! | recordings | recording `pk = recording#<id>`; source marker `pk = source#<source key>` (`recording_id`) | sparse `status-created-index` (`status`, `created_at`) |
//! | transcripts | transcript `pk = transcript#<id>`; marker `pk = recording#<recording id>` (`transcript_id`) | |
//! | meeting_consents | `meeting_id` + `consent_key` (`user#<user id>` or `anon#<consent id>`) | |
//! | webhook_events | `pk = <platform>#<event id>`, TTL `expires_at` (epoch seconds) | |
//! | config | the runtime flags, `pk = flags` (flags, `version`, `history`) | |
//!
//! Why these shapes:
//! - Uniqueness (room names, recording sources, one transcript per recording, one active meeting
//!   per room) is a marker item written in the same `TransactWriteItems` as the entity with
//!   `attribute_not_exists(pk)`: DynamoDB has no unique secondary indexes, and index reads are
//!   eventually consistent, while a marker read is strongly consistent.
//! - Timestamps are stored as RFC 3339 strings with nanoseconds and `Z` (fixed width), so string
//!   order is time order in sort keys and conditions, and values round-trip exactly.
//! - Expired items are never trusted to be gone (TTL deletion lags, and moto never deletes):
//!   every condition and read checks expiry itself.
//!
//! Request counts stated on each method count SDK operations (each may be retried by the SDK on
//! throttling or 5xx; that is one request here). [`RequestCounter`] counts them in tests.

mod client_counts;
mod consents;
mod flags;
mod item;
mod marker;
mod meetings;
mod participant_events;
mod recordings;
mod rooms;
mod sessions;
mod transcripts;
mod webhooks;

#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::config::{ConfigBag, Intercept};
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{CancellationReason, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;

use crate::config::TableNames;
use crate::store::StoreError;

pub use client_counts::DynamoClientCountEvents;
pub use consents::DynamoConsentStore;
pub use flags::DynamoFlagStore;
pub use meetings::DynamoMeetingStore;
pub use participant_events::DynamoParticipantEvents;
pub use recordings::DynamoRecordingStore;
pub use rooms::DynamoRoomStore;
pub use sessions::DynamoParticipantSessionStore;
pub use transcripts::DynamoTranscriptStore;
pub use webhooks::DynamoWebhookEventStore;

/// All eight stores over one client, plus the cross-table writers of webhook participant and
/// client-count events. Each store is a cheap clone (the SDK client is an `Arc`),
/// so handlers can take `Arc::new(stores.rooms.clone()) as Arc<dyn RoomStore>`.
#[derive(Debug, Clone)]
pub struct DynamoStores {
    pub rooms: DynamoRoomStore,
    pub meetings: DynamoMeetingStore,
    pub participant_sessions: DynamoParticipantSessionStore,
    pub recordings: DynamoRecordingStore,
    pub transcripts: DynamoTranscriptStore,
    pub consents: DynamoConsentStore,
    pub webhook_events: DynamoWebhookEventStore,
    /// The runtime flags item (config table).
    pub flags: DynamoFlagStore,
    /// Webhook participant events (claim + session + count in one transaction).
    pub participant_events: DynamoParticipantEvents,
    /// Webhook client-count events (claim + count in one transaction).
    pub client_count_events: DynamoClientCountEvents,
}

impl DynamoStores {
    pub fn new(client: Client, tables: &TableNames) -> Self {
        Self {
            rooms: DynamoRoomStore::new(client.clone(), tables.rooms.clone()),
            meetings: DynamoMeetingStore::new(client.clone(), tables.meetings.clone()),
            participant_sessions: DynamoParticipantSessionStore::new(
                client.clone(),
                tables.participant_sessions.clone(),
            ),
            recordings: DynamoRecordingStore::new(client.clone(), tables.recordings.clone()),
            transcripts: DynamoTranscriptStore::new(client.clone(), tables.transcripts.clone()),
            consents: DynamoConsentStore::new(client.clone(), tables.meeting_consents.clone()),
            webhook_events: DynamoWebhookEventStore::new(
                client.clone(),
                tables.webhook_events.clone(),
            ),
            flags: DynamoFlagStore::new(client.clone(), tables.config.clone()),
            participant_events: DynamoParticipantEvents::new(client.clone(), tables),
            client_count_events: DynamoClientCountEvents::new(client, tables),
        }
    }
}

/// Counts DynamoDB operations made through a client (an SDK interceptor), recording each
/// operation's name. Used by tests to check the request counts documented on every method, and
/// usable by benchmarks.
#[derive(Debug, Clone, Default)]
pub struct RequestCounter {
    operations: Arc<Mutex<Vec<String>>>,
    queries: Arc<Mutex<Vec<QuerySeen>>>,
}

/// What a counted `Query` asked for: tests check that a listing reads one page, not all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuerySeen {
    pub index: Option<String>,
    pub limit: Option<i32>,
    /// Whether it went on from an `ExclusiveStartKey` (a cursor).
    pub continued: bool,
}

impl RequestCounter {
    /// A copy of `client` that reports every operation to a new counter.
    pub fn instrument(client: &Client) -> (Client, RequestCounter) {
        let counter = RequestCounter::default();
        let config = client
            .config()
            .to_builder()
            .interceptor(counter.clone())
            .build();
        (Client::from_conf(config), counter)
    }

    /// Operation names seen since the last `take`, oldest first; resets the counter.
    pub fn take(&self) -> Vec<String> {
        match self.operations.lock() {
            Ok(mut ops) => std::mem::take(&mut *ops),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        }
    }

    /// The `Query` requests seen since the last `take_queries`, oldest first; resets them.
    pub fn take_queries(&self) -> Vec<QuerySeen> {
        match self.queries.lock() {
            Ok(mut q) => std::mem::take(&mut *q),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        }
    }
}

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    // Runs once per operation (serialization precedes the SDK's retry loop), so SDK-internal
    // retries are not counted: "requests per call" as a caller sees them. Unlike
    // `read_before_execution`, it runs after the operation's configuration (with its name) is
    // applied.
    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &aws_sdk_dynamodb::config::RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        if let Some(q) = context
            .input()
            .downcast_ref::<aws_sdk_dynamodb::operation::query::QueryInput>()
        {
            let seen = QuerySeen {
                index: q.index_name().map(str::to_owned),
                limit: q.limit(),
                continued: q.exclusive_start_key().is_some(),
            };
            match self.queries.lock() {
                Ok(mut all) => all.push(seen),
                Err(poisoned) => poisoned.into_inner().push(seen),
            }
        }
        let name = cfg
            .load::<Metadata>()
            .map(|m| m.name().to_owned())
            .unwrap_or_else(|| "unknown".to_owned());
        match self.operations.lock() {
            Ok(mut ops) => ops.push(name),
            Err(poisoned) => poisoned.into_inner().push(name),
        }
        Ok(())
    }
}

const THROTTLING_CODES: [&str; 3] = [
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
];

/// Maps an SDK error that the caller did not handle specifically (condition failures are
/// handled where the condition is known): throttling is `Throttled`, the rest `Other`.
pub(crate) fn sdk_error<E, R>(operation: &'static str, err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let code = err.code().map(str::to_owned);
    let detail = format!("{operation}: {}", DisplayErrorContext(&err));
    match code.as_deref() {
        Some(c) if THROTTLING_CODES.contains(&c) => StoreError::Throttled(detail),
        _ => StoreError::Other(detail),
    }
}

/// Whether `err` is a failed condition of a single-item write.
pub(crate) fn is_condition_failed<E, R>(err: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
{
    err.as_service_error().and_then(|e| e.code()) == Some("ConditionalCheckFailedException")
}

/// A cancelled transaction: the reasons, one per item in request order.
pub(crate) struct Cancelled {
    pub reasons: Vec<CancellationReason>,
}

impl Cancelled {
    /// Whether item `index` of the transaction failed its condition.
    pub fn condition_failed(&self, index: usize) -> bool {
        self.reasons
            .get(index)
            .and_then(|r| r.code())
            .is_some_and(|c| c == "ConditionalCheckFailed")
    }

    /// The item as it was when item `index` failed its condition (requested with
    /// `ReturnValuesOnConditionCheckFailure::AllOld`).
    pub fn old_item(&self, index: usize) -> Option<&item::Item> {
        self.reasons.get(index).and_then(|r| r.item())
    }

    /// The error for a cancellation whose reasons the caller cannot explain (an item with no
    /// condition, or a code it does not expect): reported with every reason's code rather than
    /// guessed at. `what` names the transaction ("participant event").
    pub fn unexplained(&self, what: &str) -> StoreError {
        let codes: Vec<&str> = self
            .reasons
            .iter()
            .map(|r| r.code().unwrap_or("?"))
            .collect();
        StoreError::Other(format!(
            "{what} transaction cancelled: {}",
            codes.join(", ")
        ))
    }
}

/// How many times a transaction cancelled only by `TransactionConflict` (another transaction on
/// the same items in flight) is retried. Conflicts mean "try again", not "condition failed".
const TRANSACTION_CONFLICT_ATTEMPTS: u32 = 4;

/// Runs one transaction. `Ok(Err(cancelled))` when it was cancelled by a failed condition;
/// cancellations only due to concurrent transactions are retried (each retry is one more
/// request), throttling becomes `Throttled`.
pub(crate) async fn transact(
    client: &Client,
    items: Vec<TransactWriteItem>,
) -> Result<Result<(), Cancelled>, StoreError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = client
            .transact_write_items()
            .set_transact_items(Some(items.clone()))
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(Ok(())),
            Err(err) => err,
        };
        let reasons = match err.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(e)) => {
                e.cancellation_reasons().to_vec()
            }
            Some(TransactWriteItemsError::TransactionInProgressException(_))
                if attempt < TRANSACTION_CONFLICT_ATTEMPTS =>
            {
                conflict_backoff(attempt).await;
                continue;
            }
            _ => return Err(sdk_error("TransactWriteItems", err)),
        };
        let codes: Vec<&str> = reasons
            .iter()
            .filter_map(|r| r.code())
            .filter(|c| *c != "None")
            .collect();
        if codes.contains(&"ConditionalCheckFailed") {
            return Ok(Err(Cancelled { reasons }));
        }
        if codes
            .iter()
            .any(|c| *c == "ThrottlingError" || *c == "ProvisionedThroughputExceeded")
        {
            return Err(StoreError::Throttled(format!(
                "TransactWriteItems cancelled: {}",
                codes.join(", ")
            )));
        }
        if codes.iter().all(|c| *c == "TransactionConflict")
            && attempt < TRANSACTION_CONFLICT_ATTEMPTS
        {
            conflict_backoff(attempt).await;
            continue;
        }
        return Err(StoreError::Other(format!(
            "TransactWriteItems cancelled: {}",
            codes.join(", ")
        )));
    }
}

/// Jittered exponential backoff (10-20 ms, 20-40 ms, ...) so that conflicting writers spread out.
async fn conflict_backoff(attempt: u32) {
    let base = 5u64 << attempt.min(6);
    let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) * base / 255;
    tokio::time::sleep(Duration::from_millis(base + jitter)).await;
}

/// A condition or update expression with its placeholder names and values.
#[derive(Debug, Clone, Default)]
pub(crate) struct Expr {
    pub expr: String,
    pub names: std::collections::HashMap<String, String>,
    pub values: item::Item,
}

impl Expr {
    pub fn new(expr: impl Into<String>) -> Self {
        Self {
            expr: expr.into(),
            ..Self::default()
        }
    }

    pub fn name(mut self, placeholder: &str, attribute: &str) -> Self {
        self.names
            .insert(placeholder.to_owned(), attribute.to_owned());
        self
    }

    pub fn value(
        mut self,
        placeholder: &str,
        value: aws_sdk_dynamodb::types::AttributeValue,
    ) -> Self {
        self.values.insert(placeholder.to_owned(), value);
        self
    }

    /// DynamoDB rejects empty placeholder maps: absent instead.
    pub fn names_opt(&self) -> Option<std::collections::HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    pub fn values_opt(&self) -> Option<item::Item> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Other(format!("building a DynamoDB request: {e}"))
}

/// A transaction `Put` with a condition; on failure the old item comes back in the reason.
pub(crate) fn tx_put(
    table: &str,
    item: item::Item,
    cond: &Expr,
) -> Result<TransactWriteItem, StoreError> {
    let put = aws_sdk_dynamodb::types::Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(&cond.expr)
        .set_expression_attribute_names(cond.names_opt())
        .set_expression_attribute_values(cond.values_opt())
        .return_values_on_condition_check_failure(
            aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
        )
        .build()
        .map_err(build_error)?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// A transaction `Delete` with a condition; on failure the old item comes back in the reason.
pub(crate) fn tx_delete(
    table: &str,
    key: item::Item,
    cond: &Expr,
) -> Result<TransactWriteItem, StoreError> {
    let delete = aws_sdk_dynamodb::types::Delete::builder()
        .table_name(table)
        .set_key(Some(key))
        .condition_expression(&cond.expr)
        .set_expression_attribute_names(cond.names_opt())
        .set_expression_attribute_values(cond.values_opt())
        .return_values_on_condition_check_failure(
            aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
        )
        .build()
        .map_err(build_error)?;
    Ok(TransactWriteItem::builder().delete(delete).build())
}

/// A transaction `Update`, with a condition when given; on failure the old item comes back in
/// the reason. `placeholders` holds the names and values of both expressions.
pub(crate) fn tx_update(
    table: &str,
    key: item::Item,
    update: &str,
    condition: Option<&str>,
    placeholders: &Expr,
) -> Result<TransactWriteItem, StoreError> {
    let update = aws_sdk_dynamodb::types::Update::builder()
        .table_name(table)
        .set_key(Some(key))
        .update_expression(update)
        .set_condition_expression(condition.map(str::to_owned))
        .set_expression_attribute_names(placeholders.names_opt())
        .set_expression_attribute_values(placeholders.values_opt())
        .return_values_on_condition_check_failure(
            aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
        )
        .build()
        .map_err(build_error)?;
    Ok(TransactWriteItem::builder().update(update).build())
}

/// The key `{pk: <value>}` of the tables keyed by a single `pk`.
pub(crate) fn pk_key(pk: String) -> item::Item {
    [("pk".to_owned(), item::s(pk))].into()
}

/// One `UpdateItem`. `Ok(Ok(attributes))` as asked by `return_values`; `Ok(Err(old))` when
/// `condition` failed, with the item as it was (`None`: there was no item).
/// `placeholders` holds the names and values of both expressions; its `expr` is unused.
pub(crate) async fn update_item(
    client: &Client,
    table: &str,
    key: item::Item,
    update: &str,
    condition: Option<&str>,
    placeholders: &Expr,
    return_values: aws_sdk_dynamodb::types::ReturnValue,
) -> Result<Result<item::Item, Option<item::Item>>, StoreError> {
    use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
    let result = client
        .update_item()
        .table_name(table)
        .set_key(Some(key))
        .update_expression(update)
        .set_condition_expression(condition.map(str::to_owned))
        .set_expression_attribute_names(placeholders.names_opt())
        .set_expression_attribute_values(placeholders.values_opt())
        .return_values(return_values)
        .return_values_on_condition_check_failure(
            aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
        )
        .send()
        .await;
    match result {
        Ok(out) => Ok(Ok(out.attributes.unwrap_or_default())),
        Err(err) => match err.as_service_error() {
            Some(UpdateItemError::ConditionalCheckFailedException(e)) => {
                Ok(Err(e.item().filter(|i| !i.is_empty()).cloned()))
            }
            _ => Err(sdk_error("UpdateItem", err)),
        },
    }
}

/// One strongly consistent `GetItem`.
pub(crate) async fn get_item(
    client: &Client,
    table: &str,
    key: item::Item,
) -> Result<Option<item::Item>, StoreError> {
    let out = client
        .get_item()
        .table_name(table)
        .set_key(Some(key))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| sdk_error("GetItem", e))?;
    Ok(out.item)
}
