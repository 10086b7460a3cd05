//! Create-if-absent with a unique marker: an entity whose natural key must be unique (a
//! recording's source, a transcript's recording) is written together with a marker item keyed
//! by that natural key and naming the entity's id, both only if absent, in one transaction. A
//! second create with the same natural key finds the marker and gets the existing id back.

use aws_sdk_dynamodb::Client;

use super::item::{s, string_attr, Item, Reader};
use super::{get_item, pk_key, transact, tx_put, Expr};
use crate::store::{conflict, StoreError, StoreResult};

/// The marker of one natural key.
pub(crate) struct Marker {
    /// The marker's `pk`: the natural key (`source#...`, `recording#...`).
    pub pk: String,
    /// Its `kind` attribute.
    pub kind: &'static str,
    /// The attribute naming the entity's id (`recording_id`, `transcript_id`).
    pub id_attr: &'static str,
    /// What errors call it ("recording source marker").
    pub name: &'static str,
}

impl Marker {
    fn item(&self, id: &str) -> Item {
        [
            ("pk", s(&self.pk)),
            ("kind", s(self.kind)),
            (self.id_attr, s(id)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// The id this marker names, if it exists (one strongly consistent GetItem).
    pub async fn read(&self, client: &Client, table: &str) -> StoreResult<Option<String>> {
        get_item(client, table, pk_key(self.pk.clone()))
            .await?
            .map(|m| Reader::new(&m, self.name, "pk").s(self.id_attr))
            .transpose()
    }
}

/// What [`put_with_marker`] did.
pub(crate) enum Put {
    Created,
    /// The marker already named another entity, returned as stored; nothing was written.
    Exists(Item),
}

/// Puts `item` (entity `id`, whose `pk` is `entity_pk(id)`) and `marker` in one transaction,
/// each only if absent: one request. When the marker exists, the entity it names is read (one
/// GetItem, two when the cancellation did not carry the marker). Another entity with the same
/// id is a conflict; a marker that vanished in between is `NotFound`; a marker naming a missing
/// entity is `Corrupt`.
pub(crate) async fn put_with_marker(
    client: &Client,
    table: &str,
    entity: &'static str,
    entity_pk: fn(&str) -> String,
    id: &str,
    item: Item,
    marker: &Marker,
) -> StoreResult<Put> {
    let absent = Expr::new("attribute_not_exists(pk)");
    let items = vec![
        tx_put(table, item, &absent)?,
        tx_put(table, marker.item(id), &absent)?,
    ];
    let cancelled = match transact(client, items).await? {
        Ok(()) => return Ok(Put::Created),
        Err(c) => c,
    };
    if !cancelled.condition_failed(1) {
        return Err(StoreError::Conflict {
            entity,
            id: id.to_owned(),
            condition: conflict::ID_TAKEN.to_owned(),
        });
    }
    let existing_id = match string_attr(cancelled.old_item(1), marker.id_attr) {
        Some(existing) => existing.to_owned(),
        None => marker
            .read(client, table)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                entity,
                id: id.to_owned(),
            })?,
    };
    let existing = get_item(client, table, pk_key(entity_pk(&existing_id)))
        .await?
        .ok_or_else(|| StoreError::Corrupt {
            entity: marker.name,
            id: marker.pk.clone(),
            reason: format!("names {entity} {existing_id}, which does not exist"),
        })?;
    Ok(Put::Exists(existing))
}
