//! The runtime flags item: `pk = "flags"` in the config table, with `daily_migration_enabled`
//! (BOOL), `daily_migration_room_ids` (SS, absent when empty: DynamoDB has no empty sets),
//! `default_video_platform` (S), `version` (N) and `history` (a list of maps `version`, `at`,
//! `by`, `what`, oldest first). One item, so a change and its history entry are one
//! conditional `PutItem`.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use tracing::instrument;

use super::item::{b, n, s, ss, ts, Item, Reader};
use super::{is_condition_failed, pk_key, sdk_error};
use crate::config::Flags;
use crate::flags::{FlagChange, FlagStore, StoredFlags};
use crate::store::{conflict, StoreError, StoreResult};

const FLAGS_PK: &str = "flags";

#[derive(Debug, Clone)]
pub struct DynamoFlagStore {
    client: Client,
    table: String,
}

impl DynamoFlagStore {
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }
}

fn to_item(stored: &StoredFlags) -> Item {
    let history = stored
        .history
        .iter()
        .map(|c| {
            AttributeValue::M(
                [
                    ("version", n(i64::try_from(c.version).unwrap_or(i64::MAX))),
                    ("at", ts(c.at)),
                    ("by", s(&c.by)),
                    ("what", s(&c.what)),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            )
        })
        .collect();
    let mut item: Item = [
        ("pk", s(FLAGS_PK)),
        ("kind", s("flags")),
        (
            "daily_migration_enabled",
            b(stored.flags.daily_migration_enabled),
        ),
        (
            "default_video_platform",
            s(stored.flags.default_video_platform.as_str()),
        ),
        (
            "version",
            n(i64::try_from(stored.version).unwrap_or(i64::MAX)),
        ),
        ("history", AttributeValue::L(history)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if let Some(ids) = ss(&stored.flags.daily_migration_room_ids) {
        item.insert("daily_migration_room_ids".into(), ids);
    }
    item
}

fn version_of(r: &Reader<'_>, name: &str) -> StoreResult<u64> {
    let v = r.i64(name)?;
    u64::try_from(v).map_err(|_| r.corrupt(format!("attribute {name} is negative: {v}")))
}

fn from_item(item: &Item) -> StoreResult<StoredFlags> {
    let r = Reader::with_id(item, "flags", FLAGS_PK);
    let history = match item.get("history") {
        None => Vec::new(),
        Some(AttributeValue::L(entries)) => entries
            .iter()
            .map(|entry| {
                let AttributeValue::M(m) = entry else {
                    return Err(r.corrupt("a history entry is not a map"));
                };
                let e = Reader::with_id(m, "flags history entry", FLAGS_PK);
                Ok(FlagChange {
                    version: version_of(&e, "version")?,
                    at: e.ts("at")?,
                    by: e.s("by")?,
                    what: e.s("what")?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?,
        Some(_) => return Err(r.corrupt("attribute history is not a list")),
    };
    Ok(StoredFlags {
        flags: Flags {
            daily_migration_enabled: r.bool("daily_migration_enabled")?,
            daily_migration_room_ids: r.string_set("daily_migration_room_ids")?,
            default_video_platform: r.parse("default_video_platform")?,
        },
        version: version_of(&r, "version")?,
        history,
    })
}

#[async_trait]
impl FlagStore for DynamoFlagStore {
    /// One request: a GetItem.
    #[instrument(skip(self))]
    async fn load(&self, consistent: bool) -> StoreResult<Option<StoredFlags>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(pk_key(FLAGS_PK.to_owned())))
            .consistent_read(consistent)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        out.item().map(from_item).transpose()
    }

    /// One request: a PutItem on condition that the stored version is `expected` (or that
    /// there is no item when `expected` is `None`).
    #[instrument(skip(self, next), fields(version = next.version))]
    async fn save(&self, next: &StoredFlags, expected: Option<u64>) -> StoreResult<()> {
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(next)));
        let request = match expected {
            None => request.condition_expression("attribute_not_exists(pk)"),
            Some(v) => request
                .condition_expression("#version = :expected")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":expected", n(i64::try_from(v).unwrap_or(i64::MAX))),
        };
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Err(StoreError::Conflict {
                entity: "flags",
                id: FLAGS_PK.to_owned(),
                condition: format!(
                    "{}: expected version {}",
                    conflict::CHANGED_CONCURRENTLY,
                    expected.map_or_else(|| "none".to_owned(), |v| v.to_string())
                ),
            }),
            Err(e) => Err(sdk_error("PutItem", e)),
        }
    }
}
