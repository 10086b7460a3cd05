//! Participant sessions, keyed `meeting_id` + `session_id`. Webhooks may deliver a leave before
//! its join: a leave creates the item with `joined_at` = the leave time as a placeholder, and
//! `join_recorded` tells whether the real join arrived (then it overwrites the placeholder).
//! `first_joined_at` keeps the first real join time, so that the transactional join of
//! [`super::DynamoParticipantEvents`] (which cannot be conditional without cancelling the whole
//! transaction) keeps the first join.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;

use aws_sdk_dynamodb::types::ReturnValue;
use chrono::{DateTime, Utc};

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

    /// One request: the join's UpdateItem ([`join_update`]), so a join recorded meanwhile
    /// keeps its time and user.
    async fn open(&self, session: &ParticipantSession) -> StoreResult<()> {
        let mut placeholders = Expr::default()
            .value(":j", ts(session.joined_at))
            .value(":t", b(true));
        if let Some(u) = &session.user_id {
            placeholders = placeholders.value(":u", s(u));
        }
        if let Some(n) = &session.user_name {
            placeholders = placeholders.value(":n", s(n));
        }
        update_item(
            &self.client,
            &self.table,
            key(&session.meeting_id, &session.session_id),
            &join_update(session.user_id.is_some(), session.user_name.is_some()),
            None,
            &placeholders,
            ReturnValue::None,
        )
        .await?
        .map(|_| ())
        .map_err(|_| crate::store::StoreError::Other("unconditional session update refused".into()))
    }

    /// One request: an UpdateItem of `left_at`, conditional on the session existing and being
    /// open.
    async fn close(
        &self,
        meeting_id: &str,
        session_id: &str,
        left_at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let closed = update_item(
            &self.client,
            &self.table,
            key(meeting_id, session_id),
            "SET left_at = :l",
            Some("attribute_exists(session_id) AND attribute_not_exists(left_at)"),
            &Expr::default().value(":l", ts(left_at)),
            ReturnValue::None,
        )
        .await?;
        Ok(closed.is_ok())
    }
}
