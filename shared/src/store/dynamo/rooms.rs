//! Rooms: room items `room#<id>` and name markers `name#<name>` (a full copy of the room, so a
//! name both stays unique and is read in one strongly consistent request). Every write keeps
//! the two in step inside one transaction; a `version` number makes read-modify-writes safe.

use std::cmp::Reverse;
use std::collections::VecDeque;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use tracing::{debug, instrument};

use super::item::{b, n, s, ts, Item, Reader};
use super::{pk_key, sdk_error, transact, tx_delete, tx_put, Expr};
use crate::domain::{Room, RoomName};
use crate::store::{
    conflict, Page, RoomCursor, RoomPatch, RoomStore, StoreError, StoreResult, StreamPosition,
};

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
    // The two listing partitions are disjoint, so a listing merges them without reading a
    // room twice: a shared room is in the shared one only.
    if room.is_shared {
        item.insert("shared_key".into(), s(SHARED));
    } else {
        item.insert("owner_key".into(), s(owner_key(room.user_id.as_deref())));
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

    /// Up to `want` rooms of one listing stream (an index partition, newest first) after
    /// `from`, leaving out those `keep` refuses, and whether the stream has no more. One Query
    /// with `Limit` as a rule; another only when DynamoDB stopped early (1 MB) or left-out
    /// rooms used up the limit.
    async fn read_stream(
        &self,
        stream: &Stream,
        from: &StreamPosition,
        want: usize,
        keep: impl Fn(&Room) -> bool,
    ) -> StoreResult<(VecDeque<Room>, bool)> {
        let mut rooms = VecDeque::new();
        let mut start = match from {
            StreamPosition::End => return Ok((rooms, true)),
            StreamPosition::Start => None,
            StreamPosition::After(at, id) => Some(
                [
                    ("pk".to_owned(), s(room_pk(id))),
                    (stream.attr.to_owned(), s(stream.value.clone())),
                    ("created_at".to_owned(), ts(*at)),
                ]
                .into_iter()
                .collect::<Item>(),
            ),
        };
        loop {
            let limit = i32::try_from(want - rooms.len()).unwrap_or(i32::MAX);
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(stream.index)
                .key_condition_expression("#k = :k")
                .expression_attribute_names("#k", stream.attr)
                .expression_attribute_values(":k", s(stream.value.clone()))
                .scan_index_forward(false)
                .limit(limit)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error("Query", e))?;
            for item in out.items() {
                let room = read_room(item)?.0;
                if keep(&room) {
                    rooms.push_back(room);
                }
            }
            match out.last_evaluated_key() {
                Some(key) if !key.is_empty() => {
                    if rooms.len() >= want {
                        return Ok((rooms, false));
                    }
                    start = Some(key.clone());
                }
                _ => return Ok((rooms, true)),
            }
        }
    }
}

/// One newest-first stream of a room listing: a partition of a listing index.
struct Stream {
    index: &'static str,
    attr: &'static str,
    value: String,
}

/// Merges two newest-first streams (the caller's rooms that are not shared, and the shared
/// rooms, so each room comes from one stream only): `skip` rooms passed over, then up to
/// `size` taken. Each stream was read `skip + size + 1` rooms deep (or to its end), so the merge
/// never runs out of one stream while it has more: a stream whose buffer empties is at its end.
fn merge_streams(
    from: &RoomCursor,
    mut own: (VecDeque<Room>, bool),
    mut shared: (VecDeque<Room>, bool),
    skip: usize,
    size: usize,
) -> Page<Room> {
    let mut items = Vec::new();
    let (mut own_at, mut shared_at) = (from.own.clone(), from.shared.clone());
    let mut passed = 0;
    let mut more = false;
    loop {
        let take_own = match (own.0.front(), shared.0.front()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            // Ties keep the caller's own room first; the indexes order by created_at.
            (Some(a), Some(b)) => a.created_at >= b.created_at,
        };
        if passed == skip + size {
            more = true;
            break;
        }
        let (buffer, at) = if take_own {
            (&mut own.0, &mut own_at)
        } else {
            (&mut shared.0, &mut shared_at)
        };
        let Some(room) = buffer.pop_front() else {
            break;
        };
        *at = StreamPosition::After(room.created_at, room.id.clone());
        passed += 1;
        if passed > skip {
            items.push(room);
        }
    }
    // A stream read to its end and wholly passed is finished: its next page asks nothing.
    if own.0.is_empty() && own.1 {
        own_at = StreamPosition::End;
    }
    if shared.0.is_empty() && shared.1 {
        shared_at = StreamPosition::End;
    }
    more |= own_at != StreamPosition::End || shared_at != StreamPosition::End;
    let total = (!more && *from == RoomCursor::start()).then_some(passed as u64);
    Page {
        items,
        total,
        next: more.then_some(RoomCursor {
            own: own_at,
            shared: shared_at,
        }),
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

    /// Two requests as a rule, at once (a Query with `Limit` of the caller's partition of the
    /// owner index, one of the shared index; one only, the shared, for an anonymous caller),
    /// each reading `skip + size + 1` rooms at most, whatever the number of rooms.
    async fn list_for_user(
        &self,
        user_id: Option<&str>,
        from: &RoomCursor,
        skip: u32,
        size: u32,
    ) -> StoreResult<Page<Room>> {
        let want = skip as usize + size as usize + 1;
        let own_from = match user_id {
            Some(_) => &from.own,
            None => &StreamPosition::End,
        };
        let own_stream = Stream {
            index: OWNER_INDEX,
            attr: "owner_key",
            value: owner_key(user_id),
        };
        let shared_stream = Stream {
            index: SHARED_INDEX,
            attr: "shared_key",
            value: SHARED.to_owned(),
        };
        // Rooms written before the partitions were disjoint may be shared and still carry
        // an owner key: they come with the shared ones.
        let (own, shared) = futures::try_join!(
            self.read_stream(&own_stream, own_from, want, |r| !r.is_shared),
            self.read_stream(&shared_stream, &from.shared, want, |_| true),
        )?;
        Ok(merge_streams(
            from,
            own,
            shared,
            skip as usize,
            size as usize,
        ))
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
