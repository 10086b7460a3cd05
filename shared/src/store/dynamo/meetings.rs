//! Meetings: meeting items `meeting#<id>` and one active-meeting marker per room
//! `active#<room_id>` (`meeting_id`, `end_date`). The marker is what makes "one active meeting
//! per room" hold under concurrent get-or-create: it is written in the same transaction as the
//! meeting, only if absent or ended, so of N concurrent claims exactly one commits.
//! `active_key` is present only while a meeting is active (sparse `active-index`).

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use tracing::{debug, instrument, warn};

use super::item::{b, n, s, ss, string_attr, ts, Item, Reader};
use super::{get_item, pk_key, sdk_error, transact, tx_put, update_item, Expr};
use crate::domain::{Meeting, RecordingKind};
use crate::store::{conflict, Claim, MeetingStore, StoreError, StoreResult};

const ROOM_NAME_INDEX: &str = "room-name-index";
const ACTIVE_INDEX: &str = "active-index";
const ACTIVE: &str = "active";
/// String set of the recording kinds the server started (absent while none).
const RECORDINGS_STARTED: &str = "recordings_started";
/// A claim that finds the marker pointing at a meeting that is no longer active (a deactivate
/// that stopped between its two writes) takes the marker over; bounded so a pathological race
/// cannot loop.
const CLAIM_ATTEMPTS: usize = 3;

#[derive(Debug, Clone)]
pub struct DynamoMeetingStore {
    client: Client,
    table: String,
}

/// Sets a meeting's client count from a whole-count observation (Whereby's events, the
/// sweeper's corrections): `:c` the count, `:t` when it was observed.
pub(super) const CLIENTS_UPDATE: &str = "SET num_clients = :c, clients_observed_at = :t";
/// [`CLIENTS_UPDATE`] applies to an existing meeting and only when no observation at or after
/// `:t` is stored, so duplicates and out-of-order deliveries change nothing.
pub(super) const CLIENTS_NEWER_CONDITION: &str = "attribute_exists(pk) AND \
     (attribute_not_exists(clients_observed_at) OR clients_observed_at < :t)";

/// The values of [`CLIENTS_UPDATE`] and [`CLIENTS_NEWER_CONDITION`].
pub(super) fn clients_placeholders(count: i64, observed_at: DateTime<Utc>) -> Expr {
    Expr::default()
        .value(":c", n(count.max(0)))
        .value(":t", ts(observed_at))
}

pub(super) fn meeting_pk(id: &str) -> String {
    format!("meeting#{id}")
}

fn active_pk(room_id: &str) -> String {
    format!("active#{room_id}")
}

fn meeting_item(m: &Meeting) -> Item {
    let mut item: Item = [
        ("pk", s(meeting_pk(&m.id))),
        ("kind", s("meeting")),
        ("id", s(&m.id)),
        ("room_id", s(&m.room_id)),
        ("room_name", s(&m.room_name)),
        ("room_url", s(&m.room_url)),
        ("host_room_url", s(&m.host_room_url)),
        ("start_date", ts(m.start_date)),
        ("end_date", ts(m.end_date)),
        ("is_locked", b(m.is_locked)),
        ("room_mode", s(m.room_mode.as_str())),
        ("recording_type", s(m.recording_type.as_str())),
        ("recording_trigger", s(m.recording_trigger.as_str())),
        ("num_clients", n(m.num_clients.max(0))),
        ("is_active", b(m.is_active)),
        ("platform", s(m.platform.as_str())),
        ("extra_data", s(m.extra_data.to_string())),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if let Some(user) = &m.user_id {
        item.insert("user_id".into(), s(user));
    }
    if m.is_active {
        item.insert("active_key".into(), s(ACTIVE));
    }
    if let Some(kinds) = ss(&m.recordings_started) {
        item.insert(RECORDINGS_STARTED.into(), kinds);
    }
    item
}

fn read_meeting(item: &Item) -> StoreResult<Meeting> {
    let r = Reader::new(item, "meeting", "id");
    let extra = r.s("extra_data")?;
    Ok(Meeting {
        id: r.s("id")?,
        room_id: r.s("room_id")?,
        room_name: r.s("room_name")?,
        room_url: r.s("room_url")?,
        host_room_url: r.s("host_room_url")?,
        start_date: r.ts("start_date")?,
        end_date: r.ts("end_date")?,
        user_id: r.opt_s("user_id")?,
        is_locked: r.bool("is_locked")?,
        room_mode: r.parse("room_mode")?,
        recording_type: r.parse("recording_type")?,
        recording_trigger: r.parse("recording_trigger")?,
        num_clients: r.i64("num_clients")?,
        is_active: r.bool("is_active")?,
        platform: r.parse("platform")?,
        extra_data: serde_json::from_str(&extra)
            .map_err(|e| r.corrupt(format!("extra_data is not JSON: {e}")))?,
        recordings_started: r.string_set(RECORDINGS_STARTED)?,
    })
}

pub(super) fn meeting_not_found(id: &str) -> StoreError {
    StoreError::NotFound {
        entity: "meeting",
        id: id.to_owned(),
    }
}

impl DynamoMeetingStore {
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }

    async fn marker(&self, room_id: &str) -> StoreResult<Option<Item>> {
        get_item(&self.client, &self.table, pk_key(active_pk(room_id))).await
    }
}

#[async_trait]
impl MeetingStore for DynamoMeetingStore {
    /// One request when it wins (a transaction putting the meeting, stored active, and the
    /// room's marker if absent or ended at `now`); two when it loses (plus a GetItem of the
    /// winner). A marker left pointing at an inactive meeting is taken over: two more per retry.
    #[instrument(skip(self, meeting), fields(meeting_id = %meeting.id, room_id = %meeting.room_id))]
    async fn claim_active(&self, meeting: &Meeting, now: DateTime<Utc>) -> StoreResult<Claim> {
        let mut active = meeting.clone();
        active.is_active = true;
        let marker: Item = [
            ("pk", s(active_pk(&meeting.room_id))),
            ("kind", s("active")),
            ("meeting_id", s(&meeting.id)),
            ("end_date", ts(meeting.end_date)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let mut stale: Option<String> = None;
        for _ in 0..CLAIM_ATTEMPTS {
            let mut marker_cond = Expr::new("attribute_not_exists(pk) OR #end_date <= :now")
                .name("#end_date", "end_date")
                .value(":now", ts(now));
            if let Some(stale_id) = &stale {
                marker_cond = marker_cond
                    .name("#meeting_id", "meeting_id")
                    .value(":stale", s(stale_id));
                marker_cond.expr.push_str(" OR #meeting_id = :stale");
            }
            let items = vec![
                tx_put(
                    &self.table,
                    meeting_item(&active),
                    &Expr::new("attribute_not_exists(pk)"),
                )?,
                tx_put(&self.table, marker.clone(), &marker_cond)?,
            ];
            let cancelled = match transact(&self.client, items).await? {
                Ok(()) => return Ok(Claim::Won),
                Err(c) => c,
            };
            if cancelled.condition_failed(0) {
                return Err(StoreError::Conflict {
                    entity: "meeting",
                    id: meeting.id.clone(),
                    condition: conflict::ID_TAKEN.to_owned(),
                });
            }
            let winner_id = match string_attr(cancelled.old_item(1), "meeting_id") {
                Some(id) => Some(id.to_owned()),
                // Emulators may not return the old item: read the marker instead.
                None => self
                    .marker(&meeting.room_id)
                    .await?
                    .and_then(|m| string_attr(Some(&m), "meeting_id").map(str::to_owned)),
            };
            let Some(winner_id) = winner_id else {
                // The marker vanished (deactivated) between the write and the read: try again.
                continue;
            };
            match self.get(&winner_id).await? {
                Some(winner) if winner.is_active && winner.end_date > now => {
                    debug!(winner_id = %winner.id, "another meeting is active");
                    return Ok(Claim::Lost(winner));
                }
                _ => {
                    warn!(stale_meeting_id = %winner_id, "taking over a stale active-meeting marker");
                    stale = Some(winner_id);
                }
            }
        }
        Err(StoreError::Conflict {
            entity: "meeting",
            id: meeting.id.clone(),
            condition: conflict::CHANGED_CONCURRENTLY.to_owned(),
        })
    }

    /// One request (a strongly consistent GetItem).
    async fn get(&self, id: &str) -> StoreResult<Option<Meeting>> {
        get_item(&self.client, &self.table, pk_key(meeting_pk(id)))
            .await?
            .as_ref()
            .map(read_meeting)
            .transpose()
    }

    /// One request: a Query of `room-name-index`, newest start first, limit 1 (eventually
    /// consistent, like every index read).
    async fn get_by_room_name(&self, room_name: &str) -> StoreResult<Option<Meeting>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(ROOM_NAME_INDEX)
            .key_condition_expression("room_name = :n")
            .expression_attribute_values(":n", s(room_name))
            .scan_index_forward(false)
            .limit(1)
            .send()
            .await
            .map_err(|e| sdk_error("Query", e))?;
        out.items().first().map(read_meeting).transpose()
    }

    /// Two requests (GetItem of the room's marker, then of the meeting); one when the room has
    /// no marker or its meeting ended by `now`.
    async fn get_active_for_room(
        &self,
        room_id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Meeting>> {
        let Some(marker) = self.marker(room_id).await? else {
            return Ok(None);
        };
        let r = Reader::new(&marker, "active meeting marker", "pk");
        if r.ts("end_date")? <= now {
            return Ok(None);
        }
        let meeting_id = r.s("meeting_id")?;
        Ok(self
            .get(&meeting_id)
            .await?
            .filter(|m| m.is_active && m.end_date > now))
    }

    /// One request per 1 MB of active meetings: a Query of the sparse `active-index`.
    async fn list_active(&self) -> StoreResult<Vec<Meeting>> {
        let mut meetings = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(ACTIVE_INDEX)
                .key_condition_expression("active_key = :a")
                .expression_attribute_values(":a", s(ACTIVE))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error("Query", e))?;
            for item in out.items() {
                meetings.push(read_meeting(item)?);
            }
            match out.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => return Ok(meetings),
            }
        }
    }

    /// One request: an UpdateItem conditional on no later observation stored
    /// (`clients_observed_at`); false when a newer or equal one was.
    #[instrument(skip(self), fields(meeting_id = %id, count))]
    async fn set_clients_if_newer(
        &self,
        id: &str,
        count: i64,
        observed_at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        match update_item(
            &self.client,
            &self.table,
            pk_key(meeting_pk(id)),
            CLIENTS_UPDATE,
            Some(CLIENTS_NEWER_CONDITION),
            &clients_placeholders(count, observed_at),
            ReturnValue::None,
        )
        .await?
        {
            Ok(_) => Ok(true),
            Err(None) => Err(meeting_not_found(id)),
            Err(Some(_)) => Ok(false),
        }
    }

    /// Two requests: an UpdateItem clearing `is_active` (and the index key), then a DeleteItem
    /// of the room's marker if it still names this meeting. Should the second fail, the next
    /// claim for the room sees an inactive meeting behind the marker and takes it over.
    #[instrument(skip(self), fields(meeting_id = %id))]
    async fn deactivate(&self, id: &str) -> StoreResult<()> {
        let placeholders = Expr::default().value(":f", b(false));
        let updated = match update_item(
            &self.client,
            &self.table,
            pk_key(meeting_pk(id)),
            "SET is_active = :f REMOVE active_key",
            Some("attribute_exists(pk)"),
            &placeholders,
            ReturnValue::AllNew,
        )
        .await?
        {
            Ok(item) => item,
            Err(_) => return Err(meeting_not_found(id)),
        };
        let room_id = Reader::new(&updated, "meeting", "id").s("room_id")?;
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(pk_key(active_pk(&room_id))))
            .condition_expression("meeting_id = :id")
            .expression_attribute_values(":id", s(id))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // The room's marker names another meeting (or none): nothing to free.
            Err(e) if super::is_condition_failed(&e) => Ok(()),
            Err(e) => Err(sdk_error("DeleteItem", e)),
        }
    }

    /// One request (see `mark_started`).
    async fn mark_recording_started(&self, id: &str, kind: RecordingKind) -> StoreResult<bool> {
        self.mark_started(id, kind).await
    }

    /// One request: an UpdateItem setting `platform_started_at`, conditional on the meeting
    /// existing and the attribute being absent (the first start is kept).
    #[instrument(skip(self), fields(meeting_id = %id))]
    async fn record_platform_start(&self, id: &str, at: DateTime<Utc>) -> StoreResult<bool> {
        match update_item(
            &self.client,
            &self.table,
            pk_key(meeting_pk(id)),
            "SET platform_started_at = :t",
            Some("attribute_exists(pk) AND attribute_not_exists(platform_started_at)"),
            &Expr::default().value(":t", ts(at)),
            ReturnValue::None,
        )
        .await?
        {
            Ok(_) => Ok(true),
            Err(None) => Err(meeting_not_found(id)),
            Err(Some(_)) => Ok(false),
        }
    }
}

impl DynamoMeetingStore {
    /// One request: an UpdateItem adding `kind` to the `recordings_started` set, conditional
    /// on the meeting existing and the set not holding `kind` yet.
    #[instrument(skip(self), fields(meeting_id = %id, %kind))]
    async fn mark_started(&self, id: &str, kind: RecordingKind) -> StoreResult<bool> {
        let placeholders = Expr::default()
            .name("#started", RECORDINGS_STARTED)
            .value(":kinds", AttributeValue::Ss(vec![kind.as_str().to_owned()]))
            .value(":kind", s(kind.as_str()));
        match update_item(
            &self.client,
            &self.table,
            pk_key(meeting_pk(id)),
            "ADD #started :kinds",
            Some("attribute_exists(pk) AND NOT contains(#started, :kind)"),
            &placeholders,
            ReturnValue::None,
        )
        .await?
        {
            Ok(_) => Ok(true),
            Err(None) => Err(meeting_not_found(id)),
            Err(Some(_)) => Ok(false),
        }
    }
}
