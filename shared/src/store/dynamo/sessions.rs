//! Participant sessions, keyed `meeting_id` + `session_id`. Webhooks may deliver a leave before
//! its join: a leave creates the item with `joined_at` = the leave time as a placeholder, and
//! `join_recorded` tells whether the real join arrived (then it overwrites the placeholder).
//! `first_joined_at` keeps the first real join time, so that the transactional join of
//! [`super::DynamoParticipantEvents`] (which cannot be conditional without cancelling the whole
//! transaction) keeps the first join as `record_join` does.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use tracing::instrument;

use super::item::{b, s, ts, Item, Reader};
use super::{sdk_error, update_item, Expr};
use crate::domain::ParticipantSession;
use crate::store::{ParticipantSessionStore, StoreResult};

#[derive(Debug, Clone)]
pub struct DynamoParticipantSessionStore {
    client: Client,
    table: String,
}

pub(super) fn key(meeting_id: &str, session_id: &str) -> Item {
    [
        ("meeting_id".to_owned(), s(meeting_id)),
        ("session_id".to_owned(), s(session_id)),
    ]
    .into()
}

/// The unconditional join update: the first real join wins, a leave's placeholder is replaced,
/// user fields are kept once known. Placeholders `:j` (join time), `:t` (true), and `:u`/`:n`
/// when `with_user_id`/`with_user_name`.
pub(super) fn join_update(with_user_id: bool, with_user_name: bool) -> String {
    let mut sets = vec![
        "joined_at = if_not_exists(first_joined_at, :j)",
        "first_joined_at = if_not_exists(first_joined_at, :j)",
        "join_recorded = :t",
    ];
    if with_user_id {
        sets.push("user_id = if_not_exists(user_id, :u)");
    }
    if with_user_name {
        sets.push("user_name = if_not_exists(user_name, :n)");
    }
    format!("SET {}", sets.join(", "))
}

/// The leave update (unconditional: a repeated leave writes the time again; a leave before the
/// join writes a placeholder join time). Placeholder `:l`.
pub(super) const LEAVE_UPDATE: &str = "SET left_at = :l, joined_at = if_not_exists(joined_at, :l)";

fn read_session(item: &Item) -> StoreResult<ParticipantSession> {
    let r = Reader::new(item, "participant session", "session_id");
    Ok(ParticipantSession {
        meeting_id: r.s("meeting_id")?,
        session_id: r.s("session_id")?,
        user_id: r.opt_s("user_id")?,
        user_name: r.opt_s("user_name")?,
        joined_at: r.ts("joined_at")?,
        left_at: r.opt_ts("left_at")?,
    })
}

impl DynamoParticipantSessionStore {
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }
}

#[async_trait]
impl ParticipantSessionStore for DynamoParticipantSessionStore {
    /// One request: an UpdateItem conditional on no join recorded yet (a leave that arrived
    /// first is kept).
    #[instrument(skip(self, session), fields(meeting_id = %session.meeting_id, session_id = %session.session_id))]
    async fn record_join(&self, session: &ParticipantSession) -> StoreResult<bool> {
        let mut sets = vec![
            "joined_at = :j",
            "first_joined_at = :j",
            "join_recorded = :t",
        ];
        let mut placeholders = Expr::default()
            .value(":j", ts(session.joined_at))
            .value(":t", b(true));
        if let Some(user_id) = &session.user_id {
            sets.push("user_id = :u");
            placeholders = placeholders.value(":u", s(user_id));
        }
        if let Some(user_name) = &session.user_name {
            sets.push("user_name = :n");
            placeholders = placeholders.value(":n", s(user_name));
        }
        if let Some(left_at) = session.left_at {
            sets.push("left_at = :l");
            placeholders = placeholders.value(":l", ts(left_at));
        }
        let update = format!("SET {}", sets.join(", "));
        Ok(update_item(
            &self.client,
            &self.table,
            key(&session.meeting_id, &session.session_id),
            &update,
            Some("attribute_not_exists(join_recorded)"),
            &placeholders,
            ReturnValue::None,
        )
        .await?
        .is_ok())
    }

    /// One request: an unconditional UpdateItem (a repeated leave just writes the time again).
    #[instrument(skip(self))]
    async fn record_leave(
        &self,
        meeting_id: &str,
        session_id: &str,
        left_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let placeholders = Expr::default().value(":l", ts(left_at));
        update_item(
            &self.client,
            &self.table,
            key(meeting_id, session_id),
            LEAVE_UPDATE,
            None,
            &placeholders,
            ReturnValue::None,
        )
        .await?
        .map(|_| ())
        .map_err(|_| {
            crate::store::StoreError::Other("unconditional update failed a condition".into())
        })
    }

    /// One request per 1 MB of sessions: a strongly consistent Query of the meeting's partition.
    async fn list_by_meeting(&self, meeting_id: &str) -> StoreResult<Vec<ParticipantSession>> {
        let mut sessions = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("meeting_id = :m")
                .expression_attribute_values(":m", s(meeting_id))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error("Query", e))?;
            for item in out.items() {
                sessions.push(read_session(item)?);
            }
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(sessions),
            }
        }
    }
}
