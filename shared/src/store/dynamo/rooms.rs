//! Rooms: room items `room#<id>` and name markers `name#<name>` (a full copy of the room, so a
//! name both stays unique and is read in one strongly consistent request). Every write keeps
//! the two in step inside one transaction; a `version` number makes read-modify-writes safe.

use std::cmp::Reverse;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use tracing::{debug, instrument};

use super::item::{b, n, s, ts, Item, Reader};
use super::{pk_key, sdk_error, transact, tx_delete, tx_put, Expr};
use crate::domain::{Room, RoomName};
use crate::store::{conflict, Page, RoomPatch, RoomStore, StoreError, StoreResult};

const OWNER_INDEX: &str = "owner-created-index";
const SHARED_INDEX: &str = "shared-created-index";
const SHARED: &str = "shared";

#[derive(Debug, Clone)]
pub struct DynamoRoomStore {
    client: Client,
    table: String,
}

fn room_pk(id: &str) -> String {
    format!("room#{id}")
}

fn name_pk(name: &str) -> String {
    format!("name#{name}")
}

/// The listing key of a room's owner; anonymous rooms share one key.
fn owner_key(user_id: Option<&str>) -> String {
    match user_id {
        Some(u) => format!("user#{u}"),
        None => "anon".to_owned(),
    }
}

/// The room's own attributes, shared by the room item and its name marker.
fn room_attrs(room: &Room, version: i64) -> Item {
    let mut item: Item = [
        ("id", s(&room.id)),
        ("name", s(room.name.as_str())),
        ("created_at", ts(room.created_at)),
        ("zulip_auto_post", b(room.zulip_auto_post)),
        ("zulip_stream", s(&room.zulip_stream)),
        ("zulip_topic", s(&room.zulip_topic)),
        ("is_locked", b(room.is_locked)),
        ("room_mode", s(room.room_mode.as_str())),
        ("recording_type", s(room.recording_type.as_str())),
        ("recording_trigger", s(room.recording_trigger.as_str())),
        ("is_shared", b(room.is_shared)),
        ("platform", s(room.platform.as_str())),
        ("skip_consent", b(room.skip_consent)),
        ("version", n(version)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if let Some(user) = &room.user_id {
        item.insert("user_id".into(), s(user));
    }
    item
}

fn room_item(room: &Room, version: i64) -> Item {
    let mut item = room_attrs(room, version);
    item.insert("pk".into(), s(room_pk(&room.id)));
    item.insert("kind".into(), s("room"));
    item.insert("owner_key".into(), s(owner_key(room.user_id.as_deref())));
    if room.is_shared {
        item.insert("shared_key".into(), s(SHARED));
    }
    item
}

fn marker_item(room: &Room, version: i64) -> Item {
    let mut item = room_attrs(room, version);
    item.insert("pk".into(), s(name_pk(room.name.as_str())));
    item.insert("kind".into(), s("name"));
    item
}

fn read_room(item: &Item) -> StoreResult<(Room, i64)> {
    let r = Reader::new(item, "room", "id");
    let name = r.s("name")?;
    let room = Room {
        id: r.s("id")?,
        name: RoomName::parse(&name).map_err(|e| r.corrupt(format!("name {name:?}: {e}")))?,
        user_id: r.opt_s("user_id")?,
        created_at: r.ts("created_at")?,
        zulip_auto_post: r.bool("zulip_auto_post")?,
        zulip_stream: r.s("zulip_stream")?,
        zulip_topic: r.s("zulip_topic")?,
        is_locked: r.bool("is_locked")?,
        room_mode: r.parse("room_mode")?,
        recording_type: r.parse("recording_type")?,
        recording_trigger: r.parse("recording_trigger")?,
        is_shared: r.bool("is_shared")?,
        platform: r.parse("platform")?,
        // Absent on rooms stored before the field existed.
        skip_consent: r.bool_or("skip_consent", false)?,
    };
    Ok((room, r.i64("version")?))
}

/// The condition "`owner` owns this item"; `None` owns anonymous rooms.
fn owner_condition(owner: Option<&str>) -> Expr {
    match owner {
        Some(u) => Expr::new("#user_id = :owner")
            .name("#user_id", "user_id")
            .value(":owner", s(u)),
        None => Expr::new("attribute_not_exists(#user_id)").name("#user_id", "user_id"),
    }
}

fn name_taken(name: &str) -> StoreError {
    StoreError::Conflict {
        entity: "room",
        id: name.to_owned(),
        condition: conflict::ROOM_NAME_TAKEN.to_owned(),
    }
}

fn changed(id: &str) -> StoreError {
    StoreError::Conflict {
        entity: "room",
        id: id.to_owned(),
        condition: conflict::CHANGED_CONCURRENTLY.to_owned(),
    }
}

fn not_found(id: &str) -> StoreError {
    StoreError::NotFound {
        entity: "room",
        id: id.to_owned(),
    }
}

impl DynamoRoomStore {
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }

    async fn get_with_version(&self, id: &str) -> StoreResult<Option<(Room, i64)>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(pk_key(room_pk(id))))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        out.item().map(read_room).transpose()
    }

    /// Every room, newest first: a `Scan` of the rooms table (all pages; one request per
    /// page of up to 1 MB), skipping name markers. For operators' tools (`reflector-admin
    /// rooms list`), never for a request path.
    #[instrument(skip(self))]
    pub async fn list_all(&self) -> StoreResult<Vec<Room>> {
        let mut rooms = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("#kind = :room")
                .expression_attribute_names("#kind", "kind")
                .expression_attribute_values(":room", s("room"))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error("Scan", e))?;
            for item in out.items() {
                rooms.push(read_room(item)?.0);
            }
            match out.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => break,
            }
        }
        rooms.sort_by_key(|r| Reverse(r.created_at));
        Ok(rooms)
    }

    /// Every room item of one index partition, all pages.
    async fn query_partition(
        &self,
        index: &str,
        attr: &str,
        value: String,
    ) -> StoreResult<Vec<Room>> {
        let mut rooms = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(index)
                .key_condition_expression("#k = :k")
                .expression_attribute_names("#k", attr)
                .expression_attribute_values(":k", s(value.clone()))
                .scan_index_forward(false)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error("Query", e))?;
            for item in out.items() {
                rooms.push(read_room(item)?.0);
            }
            match out.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => return Ok(rooms),
            }
        }
    }
}

#[async_trait]
impl RoomStore for DynamoRoomStore {
    /// One request: a transaction putting the room and its name marker, each only if absent.
    #[instrument(skip(self, room), fields(room_id = %room.id, room_name = %room.name))]
    async fn create(&self, room: &Room) -> StoreResult<()> {
        let absent = Expr::new("attribute_not_exists(pk)");
        let items = vec![
            tx_put(&self.table, room_item(room, 1), &absent)?,
            tx_put(&self.table, marker_item(room, 1), &absent)?,
        ];
        match transact(&self.client, items).await? {
            Ok(()) => Ok(()),
            Err(c) if c.condition_failed(1) => Err(name_taken(room.name.as_str())),
            Err(_) => Err(StoreError::Conflict {
                entity: "room",
                id: room.id.clone(),
                condition: conflict::ID_TAKEN.to_owned(),
            }),
        }
    }

    /// One request (a strongly consistent GetItem).
    async fn get(&self, id: &str) -> StoreResult<Option<Room>> {
        Ok(self.get_with_version(id).await?.map(|(room, _)| room))
    }

    /// One request: a strongly consistent GetItem of the name marker.
    async fn get_by_name(&self, name: &str) -> StoreResult<Option<Room>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(pk_key(name_pk(name))))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        out.item()
            .map(|i| read_room(i).map(|(room, _)| room))
            .transpose()
    }

    /// Two requests (a Query of the owner's rooms and one of the shared rooms, each one more per
    /// further 1 MB of results), merged newest first. `user_id = None` lists the anonymous rooms
    /// (which `None` owns) plus the shared rooms. `page` starts at 1 (0 counts as 1).
    async fn list_for_user(
        &self,
        user_id: Option<&str>,
        page: u32,
        size: u32,
    ) -> StoreResult<Page<Room>> {
        let (own, shared) = futures::try_join!(
            self.query_partition(OWNER_INDEX, "owner_key", owner_key(user_id)),
            self.query_partition(SHARED_INDEX, "shared_key", SHARED.to_owned()),
        )?;
        let mut rooms = own;
        for room in shared {
            if !rooms.iter().any(|r| r.id == room.id) {
                rooms.push(room);
            }
        }
        rooms.sort_by(|a, b| (Reverse(a.created_at), &a.id).cmp(&(Reverse(b.created_at), &b.id)));
        let total = rooms.len() as u64;
        let skip = (page.max(1) as usize - 1).saturating_mul(size as usize);
        let items = rooms.into_iter().skip(skip).take(size as usize).collect();
        Ok(Page { items, total })
    }

    /// Two requests: a GetItem, then a transaction writing the room and its marker(s) on
    /// condition that the room is unchanged since the read and `owner` owns it (a rename
    /// moves the marker, taking the new name only if free). One request when `owner` does not
    /// own the room or the patch changes nothing.
    #[instrument(skip(self, patch), fields(room_id = %id))]
    async fn update(&self, id: &str, owner: Option<&str>, patch: &RoomPatch) -> StoreResult<Room> {
        let (current, version) = self
            .get_with_version(id)
            .await?
            .ok_or_else(|| not_found(id))?;
        if current.user_id.as_deref() != owner {
            return Err(not_found(id));
        }
        let next = patch.applied_to(&current);
        if next == current {
            return Ok(current);
        }
        let owner_cond = owner_condition(owner);
        let room_cond = Expr {
            expr: format!("#version = :version AND {}", owner_cond.expr),
            ..owner_cond
        }
        .name("#version", "version")
        .value(":version", n(version));
        let same_room = Expr::new("#id = :id").name("#id", "id").value(":id", s(id));
        let renamed = next.name != current.name;
        let mut items = vec![tx_put(
            &self.table,
            room_item(&next, version + 1),
            &room_cond,
        )?];
        if renamed {
            items.push(tx_delete(
                &self.table,
                pk_key(name_pk(current.name.as_str())),
                &same_room,
            )?);
            items.push(tx_put(
                &self.table,
                marker_item(&next, version + 1),
                &Expr::new("attribute_not_exists(pk)"),
            )?);
        } else {
            items.push(tx_put(
                &self.table,
                marker_item(&next, version + 1),
                &same_room,
            )?);
        }
        match transact(&self.client, items).await? {
            Ok(()) => Ok(next),
            Err(c) if c.condition_failed(0) && c.old_item(0).is_none() => Err(not_found(id)),
            Err(c) if renamed && c.condition_failed(2) && !c.condition_failed(0) => {
                Err(name_taken(next.name.as_str()))
            }
            Err(_) => {
                debug!(room_id = %id, "room changed between read and write");
                Err(changed(id))
            }
        }
    }

    /// Two requests: a GetItem (for the owner and the name), then a transaction deleting the
    /// room (if `owner` owns it) and its name marker. One request when `owner` does not own it.
    #[instrument(skip(self), fields(room_id = %id))]
    async fn delete(&self, id: &str, owner: Option<&str>) -> StoreResult<()> {
        let (current, _) = self
            .get_with_version(id)
            .await?
            .ok_or_else(|| not_found(id))?;
        if current.user_id.as_deref() != owner {
            return Err(not_found(id));
        }
        let owner_cond = owner_condition(owner);
        let room_cond = Expr {
            expr: format!("attribute_exists(pk) AND {}", owner_cond.expr),
            ..owner_cond
        };
        let same_room = Expr::new("#id = :id").name("#id", "id").value(":id", s(id));
        let items = vec![
            tx_delete(&self.table, pk_key(room_pk(id)), &room_cond)?,
            tx_delete(
                &self.table,
                pk_key(name_pk(current.name.as_str())),
                &same_room,
            )?,
        ];
        match transact(&self.client, items).await? {
            Ok(()) => Ok(()),
            Err(c) if c.condition_failed(0) && c.old_item(0).is_none() => Err(not_found(id)),
            Err(_) => Err(changed(id)),
        }
    }
}
