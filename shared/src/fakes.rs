//! Small in-memory implementations of the ports (stores, queues, blob store, downloads), for
//! handler unit tests (feature `fakes`, or this crate's own tests); the one in-memory
//! implementation of each in the workspace. They keep the documented semantics of each trait
//! method (conditional writes, never-below-zero counters, legal status transitions, objects
//! visible only once complete, the download allow-list) so a handler test asserts on the state a
//! user would see. Adapter behaviour against DynamoDB and S3 is tested against the emulator
//! elsewhere; these are not a substitute for that. The fake video platform is
//! [`crate::platform::mock::MockClient`].
//!
//! Each store fake can be told to fail a named method (`fail("set_clients_if_newer")`) to test
//! error paths.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use futures::StreamExt;

use crate::blob::{
    check_media_by_ranges, BlobSettings, BlobStore, Inspect, ObjectInfo, S3Error, SourceBody,
    SourceUploadError, UploadError, UploadTarget, Uploaded,
};
use crate::config::AllowedHost;
use crate::domain::{
    Consent, Meeting, ParticipantSession, Platform, Recording, RecordingKind, RecordingSource,
    RecordingStatus, Room, S3Location, Transcript, TranscriptStatus,
};
use crate::download::{check_allowed, redact, Download, DownloadError, Downloader};
use crate::media::{MediaError, MediaInfo};
use crate::messages::{PipelineMessage, RecordingJob, StartRecording};
use crate::platform::daily::RecordingStart;
use crate::platform::PlatformError;
use crate::queue::{PipelineQueue, QueueError, RecordingQueue};
use crate::recording_start::RecordingStarter;
use crate::store::{
    Applied, Claim, ClientCountEvents, ConsentStore, CountWrite, EventClaim, EventLease,
    MeetingStore, Page, ParticipantChange, ParticipantEvents, ParticipantSessionStore,
    RecordingStore, RoomCursor, RoomPatch, RoomStore, StoreError, StoreResult, StreamPosition,
    TranscriptStore, WebhookEventStore,
};

/// Names of methods that should fail, shared by every fake.
#[derive(Debug, Default)]
pub struct Failures(Mutex<HashSet<&'static str>>);

impl Failures {
    pub fn fail(&self, method: &'static str) {
        lock(&self.0).insert(method);
    }
    pub fn heal(&self, method: &'static str) {
        lock(&self.0).remove(method);
    }
    fn check(&self, method: &'static str) -> StoreResult<()> {
        if lock(&self.0).contains(method) {
            Err(StoreError::Other(format!("injected failure in {method}")))
        } else {
            Ok(())
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panicking test thread poisons the lock; the data is still fine for other assertions.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A meeting and the `observed_at` of the last count written by `set_clients_if_newer`.
type MeetingEntry = (Meeting, Option<DateTime<Utc>>);

#[derive(Debug, Default)]
pub struct MemoryMeetings {
    meetings: Mutex<HashMap<String, MeetingEntry>>,
    /// `record_platform_start` times by meeting id.
    platform_starts: Mutex<HashMap<String, DateTime<Utc>>>,
    pub failures: Failures,
}

impl MemoryMeetings {
    /// The stored meeting (panics when absent: for tests).
    pub fn get_sync(&self, id: &str) -> Meeting {
        lock(&self.meetings)
            .get(id)
            .map(|(m, _)| m.clone())
            .unwrap_or_else(|| panic!("no meeting {id}"))
    }
    pub fn platform_start(&self, id: &str) -> Option<DateTime<Utc>> {
        lock(&self.platform_starts).get(id).copied()
    }
    pub fn insert(&self, meeting: Meeting) {
        lock(&self.meetings).insert(meeting.id.clone(), (meeting, None));
    }
    pub fn all(&self) -> Vec<Meeting> {
        lock(&self.meetings)
            .values()
            .map(|(m, _)| m.clone())
            .collect()
    }
    pub fn num_clients(&self, id: &str) -> Option<i64> {
        lock(&self.meetings).get(id).map(|(m, _)| m.num_clients)
    }
}

#[async_trait]
impl MeetingStore for MemoryMeetings {
    async fn claim_active(&self, meeting: &Meeting, now: DateTime<Utc>) -> StoreResult<Claim> {
        self.failures.check("claim_active")?;
        if let Some(active) = self.get_active_for_room(&meeting.room_id, now).await? {
            return Ok(Claim::Lost(active));
        }
        self.insert(meeting.clone());
        Ok(Claim::Won)
    }
    async fn get(&self, id: &str) -> StoreResult<Option<Meeting>> {
        self.failures.check("get")?;
        Ok(lock(&self.meetings).get(id).map(|(m, _)| m.clone()))
    }
    async fn get_by_room_name(&self, room_name: &str) -> StoreResult<Option<Meeting>> {
        self.failures.check("get_by_room_name")?;
        Ok(lock(&self.meetings)
            .values()
            .map(|(m, _)| m)
            .filter(|m| m.room_name == room_name)
            .max_by_key(|m| m.start_date)
            .cloned())
    }
    async fn get_active_for_room(
        &self,
        room_id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Meeting>> {
        self.failures.check("get_active_for_room")?;
        Ok(lock(&self.meetings)
            .values()
            .map(|(m, _)| m)
            .find(|m| m.room_id == room_id && m.is_active && m.end_date > now)
            .cloned())
    }
    async fn list_active(&self) -> StoreResult<Vec<Meeting>> {
        self.failures.check("list_active")?;
        Ok(lock(&self.meetings)
            .values()
            .map(|(m, _)| m)
            .filter(|m| m.is_active)
            .cloned()
            .collect())
    }
    async fn set_clients_if_newer(
        &self,
        id: &str,
        count: i64,
        observed_at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        self.failures.check("set_clients_if_newer")?;
        let mut meetings = lock(&self.meetings);
        let (m, seen) = meetings.get_mut(id).ok_or_else(|| StoreError::NotFound {
            entity: "meeting",
            id: id.to_owned(),
        })?;
        if seen.is_some_and(|s| s >= observed_at) {
            return Ok(false);
        }
        m.num_clients = count;
        *seen = Some(observed_at);
        Ok(true)
    }
    async fn deactivate(&self, id: &str) -> StoreResult<()> {
        self.failures.check("deactivate")?;
        if let Some((m, _)) = lock(&self.meetings).get_mut(id) {
            m.is_active = false;
        }
        Ok(())
    }
    async fn mark_recording_started(
        &self,
        id: &str,
        kind: crate::domain::RecordingKind,
    ) -> StoreResult<bool> {
        self.failures.check("mark_recording_started")?;
        let mut meetings = lock(&self.meetings);
        let (m, _) = meetings.get_mut(id).ok_or_else(|| StoreError::NotFound {
            entity: "meeting",
            id: id.to_owned(),
        })?;
        Ok(m.recordings_started.insert(kind))
    }
    async fn record_platform_start(&self, id: &str, at: DateTime<Utc>) -> StoreResult<bool> {
        self.failures.check("record_platform_start")?;
        let meetings = lock(&self.meetings);
        if !meetings.contains_key(id) {
            return Err(StoreError::NotFound {
                entity: "meeting",
                id: id.to_owned(),
            });
        }
        Ok(lock(&self.platform_starts)
            .entry(id.to_owned())
            .or_insert(at)
            == &at)
    }
}

#[derive(Debug, Default)]
pub struct MemorySessions {
    sessions: Mutex<HashMap<(String, String), ParticipantSession>>,
    pub failures: Failures,
}

impl MemorySessions {
    /// Stores a session as `ParticipantEvents::apply` would have.
    pub fn insert(&self, session: ParticipantSession) {
        let key = (session.meeting_id.clone(), session.session_id.clone());
        lock(&self.sessions).insert(key, session);
    }
    pub fn get(&self, meeting_id: &str, session_id: &str) -> Option<ParticipantSession> {
        lock(&self.sessions)
            .get(&(meeting_id.to_owned(), session_id.to_owned()))
            .cloned()
    }
}

#[async_trait]
impl ParticipantSessionStore for MemorySessions {
    async fn list_by_meeting(&self, meeting_id: &str) -> StoreResult<Vec<ParticipantSession>> {
        self.failures.check("list_by_meeting")?;
        Ok(lock(&self.sessions)
            .values()
            .filter(|s| s.meeting_id == meeting_id)
            .cloned()
            .collect())
    }
    async fn open(&self, session: &ParticipantSession) -> StoreResult<()> {
        self.failures.check("open")?;
        let key = (session.meeting_id.clone(), session.session_id.clone());
        lock(&self.sessions)
            .entry(key)
            .or_insert_with(|| session.clone());
        Ok(())
    }
    async fn close(
        &self,
        meeting_id: &str,
        session_id: &str,
        left_at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        self.failures.check("close")?;
        let mut sessions = lock(&self.sessions);
        match sessions.get_mut(&(meeting_id.to_owned(), session_id.to_owned())) {
            Some(s) if s.left_at.is_none() => {
                s.left_at = Some(left_at);
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

#[derive(Debug, Default)]
pub struct MemoryRecordings {
    recordings: Mutex<Vec<Recording>>,
    /// `claim_requeue` times by recording id.
    requeued_at: Mutex<HashMap<String, DateTime<Utc>>>,
    pub failures: Failures,
}

impl MemoryRecordings {
    pub fn all(&self) -> Vec<Recording> {
        lock(&self.recordings).clone()
    }
    pub fn insert(&self, recording: Recording) {
        lock(&self.recordings).push(recording);
    }
    pub fn get(&self, id: &str) -> Option<Recording> {
        lock(&self.recordings).iter().find(|r| r.id == id).cloned()
    }
}

#[async_trait]
impl RecordingStore for MemoryRecordings {
    async fn create_if_absent(&self, recording: &Recording) -> StoreResult<(Recording, bool)> {
        self.failures.check("create_if_absent")?;
        let mut all = lock(&self.recordings);
        let key = recording.source.source_key();
        if let Some(existing) = all.iter().find(|r| r.source.source_key() == key) {
            return Ok((existing.clone(), false));
        }
        all.push(recording.clone());
        Ok((recording.clone(), true))
    }
    async fn get(&self, id: &str) -> StoreResult<Option<Recording>> {
        self.failures.check("get")?;
        Ok(lock(&self.recordings).iter().find(|r| r.id == id).cloned())
    }
    async fn get_by_source(&self, source: &RecordingSource) -> StoreResult<Option<Recording>> {
        self.failures.check("get_by_source")?;
        let key = source.source_key();
        Ok(lock(&self.recordings)
            .iter()
            .find(|r| r.source.source_key() == key)
            .cloned())
    }
    async fn set_status(
        &self,
        id: &str,
        status: RecordingStatus,
        error: Option<&str>,
    ) -> StoreResult<Recording> {
        self.failures.check("set_status")?;
        let mut all = lock(&self.recordings);
        let r = all
            .iter_mut()
            .find(|r| r.id == id)
            .ok_or_else(|| StoreError::NotFound {
                entity: "recording",
                id: id.to_owned(),
            })?;
        if !r.status.can_become(status) {
            return Err(StoreError::Conflict {
                entity: "recording",
                id: id.to_owned(),
                condition: format!("{:?} cannot become {:?}", r.status, status),
            });
        }
        r.status = status;
        r.error = if status == RecordingStatus::Failed {
            error.map(str::to_owned)
        } else {
            None
        };
        r.updated_at = Utc::now();
        Ok(r.clone())
    }
    async fn list_by_status(
        &self,
        status: RecordingStatus,
        limit: u32,
    ) -> StoreResult<Vec<Recording>> {
        self.failures.check("list_by_status")?;
        let mut found: Vec<_> = lock(&self.recordings)
            .iter()
            .filter(|r| r.status == status)
            .cloned()
            .collect();
        found.sort_by_key(|r| r.created_at);
        found.truncate(limit as usize);
        Ok(found)
    }
    async fn claim_requeue(
        &self,
        id: &str,
        now: DateTime<Utc>,
        cooldown: Duration,
    ) -> StoreResult<bool> {
        self.failures.check("claim_requeue")?;
        if !lock(&self.recordings).iter().any(|r| r.id == id) {
            return Err(StoreError::NotFound {
                entity: "recording",
                id: id.to_owned(),
            });
        }
        let cooldown = chrono::Duration::from_std(cooldown).unwrap_or(chrono::Duration::MAX);
        let mut requeued = lock(&self.requeued_at);
        match requeued.get(id) {
            Some(last) if now.signed_duration_since(*last) < cooldown => Ok(false),
            _ => {
                requeued.insert(id.to_owned(), now);
                Ok(true)
            }
        }
    }
}

/// One event's claim in [`MemoryWebhookEvents`], as the DynamoDB item holds it.
#[derive(Debug, Clone)]
struct HeldClaim {
    /// The lease's token while in progress; `None` once completed.
    lease_token: Option<String>,
    expires_at: DateTime<Utc>,
}

impl HeldClaim {
    fn live_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at > now
    }
}

type Claims = HashMap<(Platform, String), HeldClaim>;

/// The claim an apply step writes with its effect (`Claiming::InApply`), as the DynamoDB
/// transactions' claim Put does: `false` when a live claim already holds the event (a
/// duplicate; nothing is written), else `write` runs and, when it succeeds, the claim is
/// stored `COMPLETED` with the event's TTL. A failing `write` stores no claim.
fn claim_with<T>(
    claims: &mut Claims,
    claim: &EventClaim<'_>,
    write: impl FnOnce() -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    let event = (claim.platform, claim.event_id.to_owned());
    if claims.get(&event).is_some_and(|c| c.live_at(claim.now)) {
        return Ok(None);
    }
    let written = write()?;
    claims.insert(
        event,
        HeldClaim {
            lease_token: None,
            expires_at: later(claim.now, claim.ttl),
        },
    );
    Ok(Some(written))
}

fn later(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// Event claims as leases, like the DynamoDB store: time is the claim's `now`, so a test moves
/// past a lease by handling a retry later.
#[derive(Debug, Default)]
pub struct MemoryWebhookEvents {
    claimed: Mutex<Claims>,
    pub failures: Failures,
}

impl MemoryWebhookEvents {
    /// Whether the event has a claim (in progress or completed, expired or not).
    pub fn is_claimed(&self, platform: Platform, event_id: &str) -> bool {
        lock(&self.claimed).contains_key(&(platform, event_id.to_owned()))
    }

    /// Whether the event's claim is completed.
    pub fn is_completed(&self, platform: Platform, event_id: &str) -> bool {
        lock(&self.claimed)
            .get(&(platform, event_id.to_owned()))
            .is_some_and(|c| c.lease_token.is_none())
    }
}

#[async_trait]
impl WebhookEventStore for MemoryWebhookEvents {
    async fn claim(&self, claim: EventClaim<'_>) -> StoreResult<EventLease> {
        self.failures.check("claim")?;
        let mut claimed = lock(&self.claimed);
        let key = (claim.platform, claim.event_id.to_owned());
        match claimed.get(&key) {
            Some(held) if held.live_at(claim.now) => {
                return Ok(match held.lease_token {
                    Some(_) => EventLease::InProgress {
                        until: held.expires_at,
                    },
                    None => EventLease::Completed,
                });
            }
            _ => {}
        }
        let token = uuid::Uuid::new_v4().to_string();
        claimed.insert(
            key,
            HeldClaim {
                lease_token: Some(token.clone()),
                expires_at: later(claim.now, claim.lease),
            },
        );
        Ok(EventLease::Taken { token })
    }

    async fn complete(&self, claim: EventClaim<'_>, token: &str) -> StoreResult<bool> {
        self.failures.check("complete")?;
        let mut claimed = lock(&self.claimed);
        match claimed.get_mut(&(claim.platform, claim.event_id.to_owned())) {
            Some(held) if held.lease_token.as_deref() == Some(token) => {
                held.lease_token = None;
                held.expires_at = later(claim.now, claim.ttl);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn release(&self, claim: EventClaim<'_>, token: &str) -> StoreResult<()> {
        self.failures.check("release")?;
        let mut claimed = lock(&self.claimed);
        let key = (claim.platform, claim.event_id.to_owned());
        if claimed
            .get(&key)
            .is_some_and(|held| held.lease_token.as_deref() == Some(token))
        {
            claimed.remove(&key);
        }
        Ok(())
    }
}

/// [`ParticipantEvents`] over the meeting, session and webhook-event fakes, so a test observes
/// its writes through them. All-or-nothing like the DynamoDB transaction: the three stores are
/// locked together, and a missing meeting or an injected failure (`fail("apply")`) writes
/// nothing. A claim expires at the claim's `now + ttl`.
#[derive(Debug)]
pub struct MemoryParticipantEvents {
    meetings: Arc<MemoryMeetings>,
    sessions: Arc<MemorySessions>,
    events: Arc<MemoryWebhookEvents>,
    /// Sessions whose real join was recorded (others are a leave's placeholder).
    joined: Mutex<HashSet<(String, String)>>,
    pub failures: Failures,
}

impl MemoryParticipantEvents {
    pub fn new(
        meetings: Arc<MemoryMeetings>,
        sessions: Arc<MemorySessions>,
        events: Arc<MemoryWebhookEvents>,
    ) -> Self {
        Self {
            meetings,
            sessions,
            events,
            joined: Mutex::default(),
            failures: Failures::default(),
        }
    }
}

#[async_trait]
impl ParticipantEvents for MemoryParticipantEvents {
    async fn apply(
        &self,
        claim: EventClaim<'_>,
        meeting_id: &str,
        change: ParticipantChange<'_>,
    ) -> StoreResult<Applied> {
        self.failures.check("apply")?;
        // Always in this order (nothing else holds two of these locks), so no deadlock.
        let mut meetings = lock(&self.meetings.meetings);
        let mut claimed = lock(&self.events.claimed);
        let mut sessions = lock(&self.sessions.sessions);
        let mut joined = lock(&self.joined);
        let applied = claim_with(&mut claimed, &claim, || {
            let (meeting, _) =
                meetings
                    .get_mut(meeting_id)
                    .ok_or_else(|| StoreError::NotFound {
                        entity: "meeting",
                        id: meeting_id.to_owned(),
                    })?;
            match change {
                ParticipantChange::Joined {
                    session_id,
                    user_id,
                    user_name,
                    joined_at,
                } => {
                    let key = (meeting_id.to_owned(), session_id.to_owned());
                    let first_join = joined.insert(key.clone());
                    let session = sessions.entry(key).or_insert_with(|| ParticipantSession {
                        meeting_id: meeting_id.to_owned(),
                        session_id: session_id.to_owned(),
                        user_id: None,
                        user_name: None,
                        joined_at,
                        left_at: None,
                    });
                    // The first join wins; it replaces a leave's placeholder join time.
                    if first_join {
                        session.joined_at = joined_at;
                    }
                    session.user_id = session.user_id.take().or(user_id.map(str::to_owned));
                    session.user_name = session.user_name.take().or(user_name.map(str::to_owned));
                    meeting.num_clients += 1;
                }
                ParticipantChange::Left {
                    session_id,
                    left_at,
                } => {
                    let key = (meeting_id.to_owned(), session_id.to_owned());
                    let session = sessions.entry(key).or_insert_with(|| ParticipantSession {
                        meeting_id: meeting_id.to_owned(),
                        session_id: session_id.to_owned(),
                        user_id: None,
                        user_name: None,
                        joined_at: left_at,
                        left_at: None,
                    });
                    session.left_at = Some(left_at);
                    meeting.num_clients = (meeting.num_clients - 1).max(0);
                }
            }
            Ok(Applied::Applied)
        })?;
        Ok(applied.unwrap_or(Applied::Duplicate))
    }
}

/// [`ClientCountEvents`] over the meeting and webhook-event fakes, so a test observes its writes
/// through them. All-or-nothing like the DynamoDB transaction: both stores are locked together,
/// and a missing meeting or an injected failure (`fail("set_clients")`) writes nothing. An event
/// older than the stored count is claimed without changing it, as the DynamoDB store does.
#[derive(Debug)]
pub struct MemoryClientCountEvents {
    meetings: Arc<MemoryMeetings>,
    events: Arc<MemoryWebhookEvents>,
    pub failures: Failures,
}

impl MemoryClientCountEvents {
    pub fn new(meetings: Arc<MemoryMeetings>, events: Arc<MemoryWebhookEvents>) -> Self {
        Self {
            meetings,
            events,
            failures: Failures::default(),
        }
    }
}

#[async_trait]
impl ClientCountEvents for MemoryClientCountEvents {
    async fn set_clients(
        &self,
        claim: EventClaim<'_>,
        meeting_id: &str,
        count: i64,
        observed_at: DateTime<Utc>,
    ) -> StoreResult<CountWrite> {
        self.failures.check("set_clients")?;
        // The same lock order as `MemoryParticipantEvents`, so no deadlock.
        let mut meetings = lock(&self.meetings.meetings);
        let mut claimed = lock(&self.events.claimed);
        let written = claim_with(&mut claimed, &claim, || {
            let (meeting, seen) =
                meetings
                    .get_mut(meeting_id)
                    .ok_or_else(|| StoreError::NotFound {
                        entity: "meeting",
                        id: meeting_id.to_owned(),
                    })?;
            if seen.is_some_and(|s| s >= observed_at) {
                return Ok(CountWrite::Older);
            }
            meeting.num_clients = count.max(0);
            *seen = Some(observed_at);
            Ok(CountWrite::Written)
        })?;
        Ok(written.unwrap_or(CountWrite::Duplicate))
    }
}

#[derive(Debug, Default)]
pub struct MemoryRecordingQueue {
    sent: Mutex<Vec<RecordingJob>>,
    starts: Mutex<Vec<(StartRecording, Duration)>>,
    fail: Mutex<bool>,
}

impl MemoryRecordingQueue {
    pub fn sent(&self) -> Vec<RecordingJob> {
        lock(&self.sent).clone()
    }
    /// The recording starts sent, each with its delay, in order.
    pub fn starts(&self) -> Vec<(StartRecording, Duration)> {
        lock(&self.starts).clone()
    }
    pub fn set_failing(&self, failing: bool) {
        *lock(&self.fail) = failing;
    }
}

#[async_trait]
impl RecordingQueue for MemoryRecordingQueue {
    async fn send(&self, job: &RecordingJob) -> Result<(), QueueError> {
        if *lock(&self.fail) {
            return Err(QueueError {
                queue: "memory".into(),
                message: "injected failure".into(),
            });
        }
        lock(&self.sent).push(job.clone());
        Ok(())
    }
    async fn send_start(&self, start: &StartRecording, delay: Duration) -> Result<(), QueueError> {
        if *lock(&self.fail) {
            return Err(QueueError {
                queue: "memory".into(),
                message: "injected failure".into(),
            });
        }
        lock(&self.starts).push((start.clone(), delay));
        Ok(())
    }
}

/// Daily's recording start, scripted: each call takes the next queued answer (Started when none
/// is queued) and is recorded with its room, kind and instance id.
#[derive(Debug, Default)]
pub struct MemoryRecordingStarter {
    answers: Mutex<VecDeque<Result<RecordingStart, PlatformError>>>,
    calls: Mutex<Vec<(String, RecordingKind, uuid::Uuid)>>,
}

impl MemoryRecordingStarter {
    /// Queues the answer of a later call.
    pub fn then(&self, answer: Result<RecordingStart, PlatformError>) {
        lock(&self.answers).push_back(answer);
    }
    /// Every call so far: (room name, kind, instance id).
    pub fn calls(&self) -> Vec<(String, RecordingKind, uuid::Uuid)> {
        lock(&self.calls).clone()
    }
}

#[async_trait]
impl RecordingStarter for MemoryRecordingStarter {
    async fn start_recording(
        &self,
        room_name: &str,
        kind: RecordingKind,
        instance_id: uuid::Uuid,
    ) -> Result<RecordingStart, PlatformError> {
        lock(&self.calls).push((room_name.to_owned(), kind, instance_id));
        lock(&self.answers)
            .pop_front()
            .unwrap_or(Ok(RecordingStart::Started))
    }
}

#[derive(Debug, Default)]
pub struct MemoryTranscripts {
    transcripts: Mutex<Vec<Transcript>>,
    pub failures: Failures,
}

impl MemoryTranscripts {
    pub fn insert(&self, transcript: Transcript) {
        lock(&self.transcripts).push(transcript);
    }
    pub fn all(&self) -> Vec<Transcript> {
        lock(&self.transcripts).clone()
    }
    pub fn for_recording(&self, recording_id: &str) -> Option<Transcript> {
        lock(&self.transcripts)
            .iter()
            .find(|t| t.recording_id == recording_id)
            .cloned()
    }
}

#[async_trait]
impl TranscriptStore for MemoryTranscripts {
    async fn create_if_absent(&self, transcript: &Transcript) -> StoreResult<(Transcript, bool)> {
        self.failures.check("create_if_absent")?;
        let mut all = lock(&self.transcripts);
        if let Some(existing) = all
            .iter()
            .find(|t| t.recording_id == transcript.recording_id)
        {
            return Ok((existing.clone(), false));
        }
        all.push(transcript.clone());
        Ok((transcript.clone(), true))
    }
    async fn get_by_recording(&self, recording_id: &str) -> StoreResult<Option<Transcript>> {
        self.failures.check("get_by_recording")?;
        Ok(lock(&self.transcripts)
            .iter()
            .find(|t| t.recording_id == recording_id)
            .cloned())
    }
    async fn set_status(
        &self,
        id: &str,
        status: TranscriptStatus,
        error: Option<(&str, bool)>,
        audio: Option<&S3Location>,
    ) -> StoreResult<Transcript> {
        self.failures.check("set_status")?;
        let mut all = lock(&self.transcripts);
        let t = all
            .iter_mut()
            .find(|t| t.id == id)
            .ok_or_else(|| StoreError::NotFound {
                entity: "transcript",
                id: id.to_owned(),
            })?;
        t.status = status;
        t.error = error.map(|(e, _)| e.to_owned());
        t.error_permanent = error.is_some_and(|(_, p)| p);
        if let Some(a) = audio {
            t.audio = Some(a.clone());
        }
        t.updated_at = Utc::now();
        Ok(t.clone())
    }
    async fn mark_pipeline_sent(&self, id: &str, at: DateTime<Utc>) -> StoreResult<bool> {
        self.failures.check("mark_pipeline_sent")?;
        let mut all = lock(&self.transcripts);
        let t = all
            .iter_mut()
            .find(|t| t.id == id)
            .ok_or_else(|| StoreError::NotFound {
                entity: "transcript",
                id: id.to_owned(),
            })?;
        if t.pipeline_sent_at.is_some() {
            return Ok(false);
        }
        t.pipeline_sent_at = Some(at);
        Ok(true)
    }

    async fn release_pipeline_sent(&self, id: &str, at: DateTime<Utc>) -> StoreResult<()> {
        self.failures.check("release_pipeline_sent")?;
        let mut all = lock(&self.transcripts);
        if let Some(t) = all.iter_mut().find(|t| t.id == id) {
            if t.pipeline_sent_at == Some(at) {
                t.pipeline_sent_at = None;
            }
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
pub struct MemoryPipelineQueue {
    sent: Mutex<Vec<PipelineMessage>>,
    /// Sends that fail before the next one succeeds.
    failing_sends: Mutex<u32>,
}

impl MemoryPipelineQueue {
    pub fn sent(&self) -> Vec<PipelineMessage> {
        lock(&self.sent).clone()
    }
    /// The next `n` sends fail (a throttled or unavailable queue).
    pub fn fail_next(&self, n: u32) {
        *lock(&self.failing_sends) = n;
    }
}

#[async_trait]
impl PipelineQueue for MemoryPipelineQueue {
    async fn send(&self, message: &PipelineMessage) -> Result<(), QueueError> {
        {
            let mut failing = lock(&self.failing_sends);
            if *failing > 0 {
                *failing -= 1;
                return Err(QueueError {
                    queue: "memory-pipeline".into(),
                    message: "injected failure".into(),
                });
            }
        }
        lock(&self.sent).push(message.clone());
        Ok(())
    }
}

fn room_not_found(id: &str) -> StoreError {
    StoreError::NotFound {
        entity: "room",
        id: id.to_owned(),
    }
}

fn room_name_taken(name: &str) -> StoreError {
    StoreError::Conflict {
        entity: "room",
        id: name.to_owned(),
        condition: crate::store::conflict::ROOM_NAME_TAKEN.into(),
    }
}

/// Rooms with unique names, owner-only updates and deletes, and newest-first pages of the
/// caller's and shared rooms, as the DynamoDB store has them.
#[derive(Debug, Default)]
pub struct MemoryRooms {
    pub rooms: Mutex<Vec<Room>>,
    pub failures: Failures,
}

#[async_trait]
impl RoomStore for MemoryRooms {
    async fn create(&self, room: &Room) -> StoreResult<()> {
        self.failures.check("create")?;
        let mut rooms = lock(&self.rooms);
        if rooms.iter().any(|r| r.name == room.name) {
            return Err(room_name_taken(room.name.as_str()));
        }
        rooms.push(room.clone());
        Ok(())
    }

    async fn get(&self, id: &str) -> StoreResult<Option<Room>> {
        self.failures.check("get")?;
        Ok(lock(&self.rooms).iter().find(|r| r.id == id).cloned())
    }

    async fn get_by_name(&self, name: &str) -> StoreResult<Option<Room>> {
        self.failures.check("get_by_name")?;
        Ok(lock(&self.rooms)
            .iter()
            .find(|r| r.name.as_str() == name)
            .cloned())
    }

    /// The whole listing, sorted, then cut as the store's cursor says (the DynamoDB store reads
    /// only the page; this fake has nothing to save).
    async fn list_for_user(
        &self,
        user_id: Option<&str>,
        from: &RoomCursor,
        skip: u32,
        size: u32,
    ) -> StoreResult<Page<Room>> {
        self.failures.check("list_for_user")?;
        let owned = |r: &Room| user_id.is_some() && r.user_id.as_deref() == user_id;
        let mut visible: Vec<Room> = lock(&self.rooms)
            .iter()
            .filter(|r| r.is_shared || owned(r))
            .cloned()
            .collect();
        visible.sort_by_key(|r| std::cmp::Reverse(r.created_at));
        let after = |position: &StreamPosition, r: &Room| match position {
            StreamPosition::Start => true,
            StreamPosition::After(at, id) => (r.created_at, &r.id) < (*at, id),
            StreamPosition::End => false,
        };
        let remaining: Vec<Room> = visible
            .into_iter()
            .filter(|r| {
                if owned(r) {
                    after(&from.own, r)
                } else {
                    after(&from.shared, r)
                }
            })
            .collect();
        let count = remaining.len() as u64;
        let rest: Vec<Room> = remaining.into_iter().skip(skip as usize).collect();
        let more = rest.len() > size as usize;
        let items: Vec<Room> = rest.into_iter().take(size as usize).collect();
        let total = (!more && *from == RoomCursor::start()).then_some(count);
        let next = more.then(|| {
            let last = |mine: bool| {
                items
                    .iter()
                    .rev()
                    .find(|r| owned(r) == mine)
                    .map(|r| StreamPosition::After(r.created_at, r.id.clone()))
            };
            RoomCursor {
                own: last(true).unwrap_or_else(|| from.own.clone()),
                shared: last(false).unwrap_or_else(|| from.shared.clone()),
            }
        });
        Ok(Page { items, total, next })
    }

    async fn update(&self, id: &str, owner: Option<&str>, patch: &RoomPatch) -> StoreResult<Room> {
        self.failures.check("update")?;
        let mut rooms = lock(&self.rooms);
        if let Some(name) = &patch.name {
            if rooms.iter().any(|r| r.name == *name && r.id != id) {
                return Err(room_name_taken(name.as_str()));
            }
        }
        let room = rooms
            .iter_mut()
            .find(|r| r.id == id && r.user_id.as_deref() == owner)
            .ok_or_else(|| room_not_found(id))?;
        *room = patch.applied_to(room);
        Ok(room.clone())
    }

    async fn delete(&self, id: &str, owner: Option<&str>) -> StoreResult<()> {
        self.failures.check("delete")?;
        let mut rooms = lock(&self.rooms);
        let before = rooms.len();
        rooms.retain(|r| !(r.id == id && r.user_id.as_deref() == owner));
        if rooms.len() == before {
            return Err(room_not_found(id));
        }
        Ok(())
    }
}

/// Consents upserted per (meeting, user) for authenticated users, appended for anonymous ones.
#[derive(Debug, Default)]
pub struct MemoryConsents {
    pub consents: Mutex<Vec<Consent>>,
    pub failures: Failures,
}

#[async_trait]
impl ConsentStore for MemoryConsents {
    async fn upsert(&self, consent: &Consent) -> StoreResult<Consent> {
        self.failures.check("upsert")?;
        let mut all = lock(&self.consents);
        if consent.user_id.is_some() {
            if let Some(existing) = all
                .iter_mut()
                .find(|c| c.meeting_id == consent.meeting_id && c.user_id == consent.user_id)
            {
                existing.consent_given = consent.consent_given;
                existing.consent_timestamp = consent.consent_timestamp;
                return Ok(existing.clone());
            }
        }
        all.push(consent.clone());
        Ok(consent.clone())
    }
}

/// An object held by [`MemoryBlobs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryObject {
    pub bytes: Bytes,
    pub content_type: Option<String>,
    pub metadata: HashMap<String, String>,
}

/// Every bucket of an object store in memory, with S3's contract as [`BlobStore`] states it: an
/// upload larger than one part is a multipart upload, listed in `uploads_in_progress` until it
/// completes (then the object appears) or is aborted (then nothing remains); a refused, short or
/// failing upload stores nothing. Buckets need no creating.
///
/// `fail(op)` makes an operation (`"HeadObject"`, `"ListObjectsV2"`, `"PutObject"`,
/// `"UploadPart"`, `"CopyObject"`, `"GetObject"`) fail as S3 would when unavailable (503,
/// transient).
#[derive(Debug)]
pub struct MemoryBlobs {
    objects: Mutex<BTreeMap<(String, String), MemoryObject>>,
    uploads: Mutex<Vec<(String, String)>>,
    settings: BlobSettings,
    failing: Mutex<HashSet<&'static str>>,
}

impl Default for MemoryBlobs {
    fn default() -> Self {
        Self::new(BlobSettings::default())
    }
}

impl MemoryBlobs {
    /// `settings.part_size` decides when an upload is multipart and how many parts it has;
    /// the range sizes are those of the media check.
    pub fn new(settings: BlobSettings) -> Self {
        Self {
            objects: Mutex::default(),
            uploads: Mutex::default(),
            settings,
            failing: Mutex::default(),
        }
    }

    pub fn put(&self, bucket: &str, key: &str, bytes: impl Into<Bytes>) {
        let object = MemoryObject {
            bytes: bytes.into(),
            content_type: None,
            metadata: HashMap::new(),
        };
        lock(&self.objects).insert((bucket.to_owned(), key.to_owned()), object);
    }

    pub fn object(&self, bucket: &str, key: &str) -> Option<MemoryObject> {
        lock(&self.objects)
            .get(&(bucket.to_owned(), key.to_owned()))
            .cloned()
    }

    /// The bucket's keys, in order.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        lock(&self.objects)
            .keys()
            .filter(|(b, _)| b == bucket)
            .map(|(_, k)| k.clone())
            .collect()
    }

    /// Multipart uploads started and neither completed nor aborted, as (bucket, key).
    pub fn uploads_in_progress(&self) -> Vec<(String, String)> {
        lock(&self.uploads).clone()
    }

    pub fn fail(&self, op: &'static str) {
        lock(&self.failing).insert(op);
    }

    pub fn heal(&self, op: &'static str) {
        lock(&self.failing).remove(op);
    }

    fn check(&self, op: &'static str, bucket: &str, key: &str) -> Result<(), S3Error> {
        if lock(&self.failing).contains(op) {
            return Err(s3_error(op, bucket, key, 503, "injected failure"));
        }
        Ok(())
    }

    fn read(&self, loc: &S3Location, op: &'static str) -> Result<MemoryObject, S3Error> {
        self.check(op, &loc.bucket, &loc.key)?;
        self.object(&loc.bucket, &loc.key)
            .ok_or_else(|| s3_error(op, &loc.bucket, &loc.key, 404, "NoSuchKey"))
    }

    fn store(&self, target: &UploadTarget, bytes: Bytes) {
        let object = MemoryObject {
            bytes,
            content_type: target.content_type.clone(),
            metadata: target.metadata.clone(),
        };
        lock(&self.objects).insert((target.bucket.clone(), target.key.clone()), object);
    }

    fn end_upload(&self, target: &UploadTarget) {
        let mut uploads = lock(&self.uploads);
        if let Some(i) = uploads
            .iter()
            .position(|(b, k)| *b == target.bucket && *k == target.key)
        {
            uploads.remove(i);
        }
    }

    async fn upload_inner(
        &self,
        target: &UploadTarget,
        mut body: SourceBody<'_>,
        expected_len: Option<u64>,
        inspector: &mut (dyn Inspect<Error = MediaError> + Send),
        multipart: &mut bool,
    ) -> Result<Uploaded, SourceUploadError> {
        let part_size = self.settings.part_size.max(1);
        let mut data = BytesMut::new();
        while let Some(next) = body.next().await {
            let chunk = next.map_err(|error| UploadError::Source {
                error,
                bytes: data.len() as u64,
            })?;
            inspector.inspect(&chunk).map_err(UploadError::Rejected)?;
            data.extend_from_slice(&chunk);
            if data.len() >= part_size && !*multipart {
                self.check("UploadPart", &target.bucket, &target.key)?;
                lock(&self.uploads).push((target.bucket.clone(), target.key.clone()));
                *multipart = true;
            }
        }
        let total = data.len() as u64;
        if let Some(expected) = expected_len {
            if total != expected {
                return Err(UploadError::Incomplete {
                    got: total,
                    expected,
                });
            }
        }
        inspector.finish().map_err(UploadError::Rejected)?;
        let parts = if *multipart {
            total.div_ceil(part_size as u64) as u32
        } else {
            self.check("PutObject", &target.bucket, &target.key)?;
            0
        };
        self.store(target, data.freeze());
        Ok(Uploaded {
            location: S3Location {
                bucket: target.bucket.clone(),
                key: target.key.clone(),
            },
            bytes: total,
            parts,
        })
    }
}

fn s3_error(op: &'static str, bucket: &str, key: &str, status: u16, message: &str) -> S3Error {
    S3Error {
        op,
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        message: message.to_owned(),
        status: Some(status),
        transient: crate::retry::is_transient_status(status),
    }
}

#[async_trait]
impl BlobStore for MemoryBlobs {
    async fn head(&self, loc: &S3Location) -> Result<Option<ObjectInfo>, S3Error> {
        self.check("HeadObject", &loc.bucket, &loc.key)?;
        Ok(self.object(&loc.bucket, &loc.key).map(|o| ObjectInfo {
            location: loc.clone(),
            size: o.bytes.len() as u64,
            metadata: o.metadata,
        }))
    }

    async fn find_by_prefix(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> Result<Option<ObjectInfo>, S3Error> {
        self.check("ListObjectsV2", bucket, prefix)?;
        Ok(lock(&self.objects)
            .iter()
            .find(|((b, k), o)| b == bucket && k.starts_with(prefix) && !o.bytes.is_empty())
            .map(|((b, k), o)| ObjectInfo {
                location: S3Location {
                    bucket: b.clone(),
                    key: k.clone(),
                },
                size: o.bytes.len() as u64,
                // S3's listing carries no metadata either.
                metadata: HashMap::new(),
            }))
    }

    async fn upload(
        &self,
        target: &UploadTarget,
        body: SourceBody<'_>,
        expected_len: Option<u64>,
        inspector: &mut (dyn Inspect<Error = MediaError> + Send),
    ) -> Result<Uploaded, SourceUploadError> {
        let mut multipart = false;
        let result = self
            .upload_inner(target, body, expected_len, inspector, &mut multipart)
            .await;
        if multipart {
            // Completed or aborted: either way no longer in progress.
            self.end_upload(target);
        }
        result
    }

    async fn copy(
        &self,
        from: &S3Location,
        size: u64,
        target: &UploadTarget,
    ) -> Result<Uploaded, S3Error> {
        let source = self.read(from, "CopyObject")?;
        self.check("CopyObject", &target.bucket, &target.key)?;
        self.store(target, source.bytes);
        let parts = if size <= self.settings.single_copy_limit {
            0
        } else {
            size.div_ceil(self.settings.copy_part_size.max(1)) as u32
        };
        Ok(Uploaded {
            location: S3Location {
                bucket: target.bucket.clone(),
                key: target.key.clone(),
            },
            bytes: size,
            parts,
        })
    }

    async fn check_media(
        &self,
        loc: &S3Location,
        size: u64,
    ) -> Result<Result<MediaInfo, MediaError>, S3Error> {
        let reads = (self.settings.range_read_size, self.settings.part_size);
        check_media_by_ranges(loc, size, reads, |start, len| {
            let read = self.read(loc, "GetObject").map(|o| {
                let start = (start as usize).min(o.bytes.len());
                let end = (start + len.max(1) as usize).min(o.bytes.len());
                o.bytes.slice(start..end)
            });
            std::future::ready(read)
        })
        .await
    }
}

/// What [`MemoryDownloads`] answers to one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// 200 with this body (streamed in chunks, its length announced).
    Body(Bytes),
    /// This HTTP status, no body.
    Status(u16),
    /// No answer at all (connection refused, timeout).
    Unreachable,
    /// 200 announcing `announced` bytes, then the transfer breaks after `sent`.
    BreaksAfter { sent: Bytes, announced: u64 },
    /// 200 announcing `announced` bytes, then the transfer stalls after `sent`: no more bytes
    /// and no error, until the reader gives up.
    StallsAfter { sent: Bytes, announced: u64 },
}

/// Downloads served from memory by URL (the query string ignored, as a file server would),
/// honouring the allow-list exactly as `HttpDownloader` does: a URL off the list is refused
/// without being requested. Each URL's replies are taken in order, the last one repeating;
/// an unknown URL answers 404. `requests()` lists every URL requested.
#[derive(Debug, Default)]
pub struct MemoryDownloads {
    allowed: Vec<AllowedHost>,
    replies: Mutex<HashMap<String, VecDeque<Reply>>>,
    requests: Mutex<Vec<String>>,
}

/// Chunk size of a served body, small enough that a body spans several chunks.
const SERVED_CHUNK: usize = 64 * 1024;

impl MemoryDownloads {
    pub fn new(allowed: Vec<AllowedHost>) -> Self {
        Self {
            allowed,
            ..Self::default()
        }
    }

    /// Serves `body` at `url` from now on.
    pub fn serve(&self, url: &str, body: impl Into<Bytes>) {
        lock(&self.replies).insert(served_key(url), VecDeque::from([Reply::Body(body.into())]));
    }

    /// Adds `reply` after the replies already queued for `url`.
    pub fn then(&self, url: &str, reply: Reply) {
        lock(&self.replies)
            .entry(served_key(url))
            .or_default()
            .push_back(reply);
    }

    pub fn requests(&self) -> Vec<String> {
        lock(&self.requests).clone()
    }

    fn next_reply(&self, url: &str) -> Reply {
        let mut replies = lock(&self.replies);
        match replies.get_mut(&served_key(url)) {
            Some(queue) if queue.len() > 1 => queue.pop_front().unwrap_or(Reply::Status(404)),
            Some(queue) => queue.front().cloned().unwrap_or(Reply::Status(404)),
            None => Reply::Status(404),
        }
    }
}

fn served_key(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or(url).to_owned()
}

fn chunks(bytes: Bytes) -> Vec<Result<Bytes, DownloadError>> {
    (0..bytes.len())
        .step_by(SERVED_CHUNK)
        .map(|i| Ok(bytes.slice(i..(i + SERVED_CHUNK).min(bytes.len()))))
        .collect()
}

#[async_trait]
impl Downloader for MemoryDownloads {
    async fn open(&self, url: &str) -> Result<Download, DownloadError> {
        let parsed = check_allowed(&self.allowed, url)?;
        lock(&self.requests).push(url.to_owned());
        let shown = redact(&parsed);
        let (body, content_length) = match self.next_reply(url) {
            Reply::Body(bytes) => {
                let len = bytes.len() as u64;
                (chunks(bytes), len)
            }
            Reply::Status(status) => return Err(DownloadError::Status { url: shown, status }),
            Reply::Unreachable => {
                return Err(DownloadError::Network {
                    url: shown,
                    reason: "connection refused".into(),
                })
            }
            Reply::BreaksAfter { sent, announced } => {
                let mut body = chunks(sent);
                body.push(Err(DownloadError::Network {
                    url: shown.clone(),
                    reason: "connection reset".into(),
                }));
                (body, announced)
            }
            Reply::StallsAfter { sent, announced } => {
                return Ok(Download {
                    url: parsed,
                    content_length: Some(announced),
                    content_type: None,
                    body: futures::stream::iter(chunks(sent))
                        .chain(futures::stream::pending())
                        .boxed(),
                });
            }
        };
        Ok(Download {
            url: parsed,
            content_length: Some(content_length),
            content_type: None,
            body: futures::stream::iter(body).boxed(),
        })
    }
}
