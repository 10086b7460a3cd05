//! Webhook event dedupe: `pk = <platform>#<event id>` with a TTL attribute `expires_at` (epoch
//! seconds). TTL deletion lags (and moto never deletes), so the claim's condition treats an
//! expired item as absent.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use tracing::instrument;

use super::item::{n, s, ts, Item};
use super::{is_condition_failed, pk_key, sdk_error};
use crate::domain::Platform;
use crate::store::{StoreResult, WebhookEventStore};

#[derive(Debug, Clone)]
pub struct DynamoWebhookEventStore {
    client: Client,
    table: String,
}

fn event_pk(platform: Platform, event_id: &str) -> String {
    format!("{platform}#{event_id}")
}

/// A claim succeeds on an unknown event or one whose claim expired (`:now` in epoch seconds).
pub(super) const CLAIM_CONDITION: &str = "attribute_not_exists(pk) OR expires_at <= :now";

/// The claim item of an event handled at `now`, expiring `ttl` later.
pub(super) fn claim_item(
    platform: Platform,
    event_id: &str,
    ttl: Duration,
    now: DateTime<Utc>,
) -> Item {
    let ttl_secs = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
    let expires_at = now.timestamp().saturating_add(ttl_secs);
    [
        ("pk", s(event_pk(platform, event_id))),
        ("kind", s("webhook_event")),
        ("platform", s(platform.as_str())),
        ("event_id", s(event_id)),
        ("claimed_at", ts(now)),
        ("expires_at", n(expires_at)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

impl DynamoWebhookEventStore {
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }
}

#[async_trait]
impl WebhookEventStore for DynamoWebhookEventStore {
    /// One request: a PutItem on condition that the event is unknown or its claim expired.
    #[instrument(skip(self), fields(platform = %platform, event_id))]
    async fn claim(&self, platform: Platform, event_id: &str, ttl: Duration) -> StoreResult<bool> {
        let now = Utc::now();
        let item = claim_item(platform, event_id, ttl, now);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(CLAIM_CONDITION)
            .expression_attribute_values(":now", n(now.timestamp()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(sdk_error("PutItem", e)),
        }
    }

    /// One request: a DeleteItem (releasing an unknown event is not an error).
    #[instrument(skip(self), fields(platform = %platform, event_id))]
    async fn release(&self, platform: Platform, event_id: &str) -> StoreResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(pk_key(event_pk(platform, event_id))))
            .send()
            .await
            .map_err(|e| sdk_error("DeleteItem", e))?;
        Ok(())
    }
}
