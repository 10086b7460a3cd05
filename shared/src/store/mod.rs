//! Data layer (DESIGN.md section 5): one narrow trait per entity, implemented once over DynamoDB
//! (`dynamo` module) and tested against the real emulator.
//!
//! Every method documents how many DynamoDB requests it makes; a test checks each figure.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub mod dynamo;
pub mod sessions;

use crate::domain::{
    Consent, Meeting, ParticipantSession, Platform, Recording, RecordingKind, RecordingSource,
    RecordingStatus, RecordingTrigger, RecordingType, Room, RoomMode, S3Location, Transcript,
    TranscriptStatus,
};
use crate::retry::Transient;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{entity} {id} not found")]
    NotFound { entity: &'static str, id: String },
    /// A conditional write failed; `condition` names the condition in words.
    #[error("conflict on {entity} {id}: {condition}")]
    Conflict {
        entity: &'static str,
        id: String,
        condition: String,
    },
    /// DynamoDB throttled the request after the SDK's own retries; worth retrying later.
    #[error("throttled by DynamoDB: {0}")]
    Throttled(String),
    /// A stored item could not be read back into a domain type.
    #[error("corrupt {entity} item {id}: {reason}")]
    Corrupt {
        entity: &'static str,
        id: String,
        reason: String,
    },
    #[error("DynamoDB request failed: {0}")]
    Other(String),
}

impl Transient for StoreError {
    /// Throttling and failed requests may pass; a missing item, a conflict or a corrupt item
    /// will not change by asking again.
    fn is_transient(&self) -> bool {
        matches!(self, StoreError::Throttled(_) | StoreError::Other(_))
    }
}

/// The `condition` of [`StoreError::Conflict`] for the conflicts callers tell apart.
pub mod conflict {
    /// A room create or rename hit a name another room holds.
    pub const ROOM_NAME_TAKEN: &str = "room name is taken";
    /// The item changed between the read and the conditional write of a read-modify-write;
    /// retrying the call re-reads it.
    pub const CHANGED_CONCURRENTLY: &str = "item changed concurrently";
    /// An item with this id exists already.
    pub const ID_TAKEN: &str = "id already exists";
    /// A status change not allowed from the current status (the condition names both).
    pub const ILLEGAL_TRANSITION: &str = "illegal status transition";
}

impl StoreError {
    /// Whether this is a `Conflict` whose condition starts with `condition` (one of
    /// [`conflict`]'s constants).
    pub fn is_conflict(&self, condition: &str) -> bool {
        matches!(self, StoreError::Conflict { condition: c, .. } if c.starts_with(condition))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// One page of a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// How many there are in all, when the listing read them all (it started at the first
    /// and reached the last); `None` otherwise: counting would read every one.
    pub total: Option<u64>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<RoomCursor>,
}

/// A position in one newest-first stream of a room listing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum StreamPosition {
    /// Nothing read yet.
    #[serde(rename = "s")]
    Start,
    /// After this room (its creation time and id: the index key).
    #[serde(rename = "a")]
    After(DateTime<Utc>, String),
    /// Everything read.
    #[serde(rename = "e")]
    End,
}

/// Where a room listing goes on: its position in the caller's own rooms and in the shared
/// rooms (the two index partitions it merges). It holds no user: a cursor only ever moves
/// within the partitions of the caller who presents it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RoomCursor {
    #[serde(rename = "o")]
    pub own: StreamPosition,
    #[serde(rename = "s")]
    pub shared: StreamPosition,
}

impl RoomCursor {
    /// The first page.
    pub fn start() -> Self {
        Self {
            own: StreamPosition::Start,
            shared: StreamPosition::Start,
        }
    }

    /// The opaque text clients send back (`next_cursor`): URL-safe base64 of compact JSON.
    pub fn encode(&self) -> String {
        use base64::Engine;
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    /// A cursor from [`Self::encode`]'s text; `None` for anything else.
    pub fn decode(text: &str) -> Option<Self> {
        use base64::Engine;
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text.trim())
            .ok()?;
        serde_json::from_slice(&json).ok()
    }
}

/// A partial update of a room: `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoomPatch {
    pub name: Option<crate::domain::RoomName>,
    pub zulip_auto_post: Option<bool>,
    pub zulip_stream: Option<String>,
    pub zulip_topic: Option<String>,
    pub is_locked: Option<bool>,
    pub room_mode: Option<RoomMode>,
    pub recording_type: Option<RecordingType>,
    pub recording_trigger: Option<RecordingTrigger>,
    pub is_shared: Option<bool>,
    pub skip_consent: Option<bool>,
}

impl RoomPatch {
    /// `room` with the fields this patch sets replaced.
    pub fn applied_to(&self, room: &Room) -> Room {
        let mut next = room.clone();
        if let Some(v) = &self.name {
            next.name = v.clone();
        }
        if let Some(v) = self.zulip_auto_post {
            next.zulip_auto_post = v;
        }
        if let Some(v) = &self.zulip_stream {
            next.zulip_stream = v.clone();
        }
        if let Some(v) = &self.zulip_topic {
            next.zulip_topic = v.clone();
        }
        if let Some(v) = self.is_locked {
            next.is_locked = v;
        }
        if let Some(v) = self.room_mode {
            next.room_mode = v;
        }
        if let Some(v) = self.recording_type {
            next.recording_type = v;
        }
        if let Some(v) = self.recording_trigger {
            next.recording_trigger = v;
        }
        if let Some(v) = self.is_shared {
            next.is_shared = v;
        }
        if let Some(v) = self.skip_consent {
            next.skip_consent = v;
        }
        next
    }
}

#[async_trait]
pub trait RoomStore: Send + Sync {
    /// Creates the room; `Conflict` when the name is taken (also under concurrent creates).
    async fn create(&self, room: &Room) -> StoreResult<()>;
    async fn get(&self, id: &str) -> StoreResult<Option<Room>>;
    async fn get_by_name(&self, name: &str) -> StoreResult<Option<Room>>;
    /// The caller's rooms plus shared rooms, newest first (an anonymous caller owns none: the
    /// shared rooms only), each once: from `from`, `skip` rooms passed over, then up to `size`
    /// rooms. Reads `skip + size + 1` rooms of each stream at most, never the whole listing.
    async fn list_for_user(
        &self,
        user_id: Option<&str>,
        from: &RoomCursor,
        skip: u32,
        size: u32,
    ) -> StoreResult<Page<Room>>;
    /// Applies `patch` when `owner` owns the room (`None` owns anonymous rooms); `NotFound`
    /// otherwise; `Conflict` when a rename hits a taken name.
    async fn update(&self, id: &str, owner: Option<&str>, patch: &RoomPatch) -> StoreResult<Room>;
    /// Deletes the room and its name marker when `owner` owns it; `NotFound` otherwise.
    async fn delete(&self, id: &str, owner: Option<&str>) -> StoreResult<()>;
}

/// Result of claiming the active meeting of a room.
// Returned once per get-or-create and matched at once: boxing the meeting would only add an
// allocation and make callers' patterns clumsier.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// This meeting is now the room's active meeting.
    Won,
    /// Another meeting was already active; here it is.
    Lost(Meeting),
}

#[async_trait]
pub trait MeetingStore: Send + Sync {
    /// Stores `meeting` and makes it the active meeting of its room in one conditional write,
    /// unless the room already has an active meeting that has not ended at `now`.
    async fn claim_active(&self, meeting: &Meeting, now: DateTime<Utc>) -> StoreResult<Claim>;
    async fn get(&self, id: &str) -> StoreResult<Option<Meeting>>;
    /// The newest meeting with this platform room name (webhooks identify meetings by it).
    async fn get_by_room_name(&self, room_name: &str) -> StoreResult<Option<Meeting>>;
    /// The room's active meeting, if it is active and has not ended at `now`.
    async fn get_active_for_room(
        &self,
        room_id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Meeting>>;
    /// All meetings flagged active (for the sweeper), without a table scan.
    async fn list_active(&self) -> StoreResult<Vec<Meeting>>;
    /// Sets `num_clients` to `count` unless a newer value (by `observed_at`) was stored already;
    /// returns whether it was written.
    async fn set_clients_if_newer(
        &self,
        id: &str,
        count: i64,
        observed_at: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Marks the meeting inactive (and frees the room's active slot if it held it).
    async fn deactivate(&self, id: &str) -> StoreResult<()>;
    /// Records that the server started `kind`'s Daily recording of the meeting, in one
    /// conditional write: true when it is marked now, false when it was marked already;
    /// `NotFound` for an unknown meeting. Read back in [`Meeting::recordings_started`].
    ///
    /// The default answers an error, so that stores used only by functions that never start
    /// recordings need not implement it; the DynamoDB store and `fakes` do.
    async fn mark_recording_started(&self, id: &str, kind: RecordingKind) -> StoreResult<bool> {
        let _ = kind;
        Err(StoreError::Other(format!(
            "this meeting store cannot mark recordings started (meeting {id})"
        )))
    }

    /// Records when the platform says the meeting started (Daily's `meeting.started`): the
    /// first time is kept; true when it is recorded now. `NotFound` for an unknown meeting.
    /// Like [`Self::mark_recording_started`], the default answers an error.
    async fn record_platform_start(&self, id: &str, at: DateTime<Utc>) -> StoreResult<bool> {
        let _ = at;
        Err(StoreError::Other(format!(
            "this meeting store cannot record a meeting's start (meeting {id})"
        )))
    }
}

#[async_trait]
pub trait ParticipantSessionStore: Send + Sync {
    // Webhooks write sessions through `ParticipantEvents::apply`, together with the event's
    // claim and the meeting's count. The writes below are the sweeper's corrections from the
    // platform's presence.
    async fn list_by_meeting(&self, meeting_id: &str) -> StoreResult<Vec<ParticipantSession>>;

    /// Records a session the platform shows present but no webhook announced (as a join would:
    /// a join already recorded is kept).
    async fn open(&self, session: &ParticipantSession) -> StoreResult<()>;

    /// Closes a session still open at `left_at`; true when it was open (a session closed
    /// meanwhile keeps its own leave time).
    async fn close(
        &self,
        meeting_id: &str,
        session_id: &str,
        left_at: DateTime<Utc>,
    ) -> StoreResult<bool>;
}

#[async_trait]
pub trait RecordingStore: Send + Sync {
    /// Creates the recording unless one with the same source exists; returns the stored one and
    /// whether it was created now.
    async fn create_if_absent(&self, recording: &Recording) -> StoreResult<(Recording, bool)>;
    async fn get(&self, id: &str) -> StoreResult<Option<Recording>>;
    async fn get_by_source(&self, source: &RecordingSource) -> StoreResult<Option<Recording>>;
    /// Moves the recording to `status` if the transition is legal from its current status
    /// (`Conflict` otherwise); `error` is stored with `Failed`.
    async fn set_status(
        &self,
        id: &str,
        status: RecordingStatus,
        error: Option<&str>,
    ) -> StoreResult<Recording>;
    /// Recordings in `status`, oldest first, at most `limit` (for the sweeper), without a scan.
    async fn list_by_status(
        &self,
        status: RecordingStatus,
        limit: u32,
    ) -> StoreResult<Vec<Recording>>;
    /// Claims a requeue: true when the recording was not requeued within `cooldown` before
    /// `now` (a conditional write, so two sweepers never requeue it twice).
    async fn claim_requeue(
        &self,
        id: &str,
        now: DateTime<Utc>,
        cooldown: Duration,
    ) -> StoreResult<bool>;
}

#[async_trait]
pub trait TranscriptStore: Send + Sync {
    /// Creates the transcript unless the recording has one; returns the stored one and whether
    /// it was created now.
    async fn create_if_absent(&self, transcript: &Transcript) -> StoreResult<(Transcript, bool)>;
    async fn get_by_recording(&self, recording_id: &str) -> StoreResult<Option<Transcript>>;
    async fn set_status(
        &self,
        id: &str,
        status: TranscriptStatus,
        error: Option<(&str, bool)>,
        audio: Option<&S3Location>,
    ) -> StoreResult<Transcript>;
    /// Records that the pipeline message was sent; true the first time only.
    async fn mark_pipeline_sent(&self, id: &str, at: DateTime<Utc>) -> StoreResult<bool>;
    /// Undoes the `mark_pipeline_sent` made at `at` when the message could not be sent, so a
    /// redelivery sends it; a mark made by someone else (another `at`) is left alone.
    async fn release_pipeline_sent(&self, id: &str, at: DateTime<Utc>) -> StoreResult<()>;
}

#[async_trait]
pub trait ConsentStore: Send + Sync {
    /// Upserts per (meeting, user) for authenticated users; appends anonymous consents.
    async fn upsert(&self, consent: &Consent) -> StoreResult<Consent>;
}

/// What [`WebhookEventStore::claim`] found: the event claims are leases (DESIGN.md section 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventLease {
    /// This delivery holds the event's lease (`IN_PROGRESS` until `now + lease`), identified by
    /// `token`: it applies the event, then completes or releases the lease with that token.
    Taken { token: String },
    /// Another delivery holds a live lease: whether it will write the effects is not known yet,
    /// so this one must be retried later (not applied, not dropped).
    InProgress {
        /// When that lease runs out and a retry may take the event over.
        until: DateTime<Utc>,
    },
    /// The event's effects were written (`COMPLETED`) and are remembered: a duplicate.
    Completed,
}

#[async_trait]
pub trait WebhookEventStore: Send + Sync {
    /// Takes the event's lease: written `IN_PROGRESS` until `claim.now + claim.lease` when the
    /// event is unknown, its record expired, or an earlier lease ran out (a delivery that died
    /// between claim and effect); otherwise says who has it.
    async fn claim(&self, claim: EventClaim<'_>) -> StoreResult<EventLease>;
    /// Marks the event `COMPLETED` (remembered until `claim.now + claim.ttl`) once its effects
    /// are written, if the lease `token` is still this delivery's; false when it was lost (it
    /// expired and a retry took it over, which then completes it).
    async fn complete(&self, claim: EventClaim<'_>, token: &str) -> StoreResult<bool>;
    /// Gives the lease `token` back after a failed apply, so that the platform's retry is handled
    /// at once. A lease that is no longer this delivery's is left alone.
    async fn release(&self, claim: EventClaim<'_>, token: &str) -> StoreResult<()>;
}

/// The dedupe claim of the webhook event a change is applied under.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EventClaim<'a> {
    pub platform: Platform,
    pub event_id: &'a str,
    /// How long the event id is remembered once completed (from `now`).
    pub ttl: Duration,
    /// How long a lease (`IN_PROGRESS`) holds the event before a retry may take it over: longer
    /// than the function may run, so a live delivery is never overtaken.
    pub lease: Duration,
    /// When the event is handled: the claim is written at this time, and an earlier claim whose
    /// TTL or lease ran out by then does not count.
    pub now: DateTime<Utc>,
}

/// One participant's join or leave, as a webhook reports it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ParticipantChange<'a> {
    /// Records the session's join (the first join of a session wins; a placeholder left by a
    /// leave that arrived first is replaced) and adds one client.
    Joined {
        session_id: &'a str,
        user_id: Option<&'a str>,
        user_name: Option<&'a str>,
        joined_at: DateTime<Utc>,
    },
    /// Records the session's leave time (creating the session if its join is unknown) and
    /// removes one client, never going below zero.
    Left {
        session_id: &'a str,
        left_at: DateTime<Utc>,
    },
}

/// Whether [`ParticipantEvents::apply`] changed anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The event was claimed now and its change applied.
    Applied,
    /// The event was claimed before (and its claim has not expired): nothing changed.
    Duplicate,
}

/// A webhook participant event applied as one unit: the event's dedupe claim, the participant
/// session and the meeting's client count are written together or not at all, so a failure
/// leaves nothing to undo and the platform's retry applies the event once.
#[async_trait]
pub trait ParticipantEvents: Send + Sync {
    /// Claims the event and applies `change` to meeting `meeting_id`. `Duplicate` when the
    /// event was claimed already; `NotFound` (nothing written, event not claimed) when the
    /// meeting does not exist.
    async fn apply(
        &self,
        claim: EventClaim<'_>,
        meeting_id: &str,
        change: ParticipantChange<'_>,
    ) -> StoreResult<Applied>;
}

/// What [`ClientCountEvents::set_clients`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountWrite {
    /// The event was claimed now and the meeting's count set from it.
    Written,
    /// The event was claimed now, but a newer count (by observation time) was stored already:
    /// the count was kept.
    Older,
    /// The event was claimed before (completed, or under a live lease): nothing changed.
    Duplicate,
}

/// A webhook event that reports a meeting's whole client count (Whereby's
/// `room.client.joined/left`), applied with its dedupe claim: the claim is written whether or
/// not the count is newer, and nothing is written when the write fails, so the platform's retry
/// applies the event once.
#[async_trait]
pub trait ClientCountEvents: Send + Sync {
    /// Claims the event (written completed, remembered until `claim.now + claim.ttl`) and sets
    /// meeting `meeting_id`'s `num_clients` to `count` unless a count observed at or after
    /// `observed_at` is stored. `Duplicate` when the event was claimed already; `NotFound`
    /// (nothing written, event not claimed) when the meeting does not exist.
    async fn set_clients(
        &self,
        claim: EventClaim<'_>,
        meeting_id: &str,
        count: i64,
        observed_at: DateTime<Utc>,
    ) -> StoreResult<CountWrite>;
}

#[cfg(test)]
mod room_patch_tests {
    use super::RoomPatch;
    use crate::domain::{RecordingTrigger, RecordingType, RoomMode, RoomName};
    use crate::platform::test_support::room;

    #[test]
    fn an_empty_patch_changes_nothing() {
        assert_eq!(RoomPatch::default().applied_to(&room()), room());
    }

    #[test]
    fn every_set_field_is_replaced_and_only_those() {
        let patch = RoomPatch {
            name: Some(RoomName::parse("renamed").unwrap()),
            zulip_auto_post: Some(true),
            zulip_stream: Some("s".into()),
            zulip_topic: Some("t".into()),
            is_locked: Some(true),
            room_mode: Some(RoomMode::Group),
            recording_type: Some(RecordingType::Local),
            recording_trigger: Some(RecordingTrigger::Prompt),
            is_shared: Some(true),
            skip_consent: Some(true),
        };
        let before = room();
        let after = patch.applied_to(&before);
        let mut expected = before.clone();
        expected.name = RoomName::parse("renamed").unwrap();
        expected.zulip_auto_post = true;
        expected.zulip_stream = "s".into();
        expected.zulip_topic = "t".into();
        expected.is_locked = true;
        expected.room_mode = RoomMode::Group;
        expected.recording_type = RecordingType::Local;
        expected.recording_trigger = RecordingTrigger::Prompt;
        expected.is_shared = true;
        expected.skip_consent = true;
        assert_eq!(after, expected);

        let only_locked = RoomPatch {
            is_locked: Some(true),
            ..RoomPatch::default()
        };
        let mut locked = before.clone();
        locked.is_locked = true;
        assert_eq!(only_locked.applied_to(&before), locked);
    }
}
