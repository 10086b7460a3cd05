//! Small in-memory implementations of the store and queue ports, for handler unit tests (feature
//! `fakes`, or this crate's own tests). They keep the documented semantics of each trait method
//! (conditional writes, never-below-zero counters, legal status transitions) so a handler test
//! asserts on the state a user would see. Adapter behaviour against DynamoDB is tested against the
//! emulator elsewhere; these are not a substitute for that.
//!
//! Each fake can be told to fail a named method (`fail("add_clients")`) to test error paths.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::{
    Meeting, ParticipantSession, Platform, Recording, RecordingSource, RecordingStatus, S3Location,
    Transcript, TranscriptStatus,
};
use crate::messages::RecordingJob;
use crate::queue::{QueueError, RecordingQueue};
use crate::store::{
    Applied, Claim, EventClaim, MeetingStore, ParticipantChange, ParticipantEvents,
    ParticipantSessionStore, RecordingStore, StoreError, StoreResult, TranscriptStore,
    WebhookEventStore,
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
    pub failures: Failures,
}

impl MemoryMeetings {
    pub fn insert(&self, meeting: Meeting) {
        lock(&self.meetings).insert(meeting.id.clone(), (meeting, None));
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
    async fn add_clients(&self, id: &str, delta: i64) -> StoreResult<i64> {
        self.failures.check("add_clients")?;
        let mut meetings = lock(&self.meetings);
        let (m, _) = meetings.get_mut(id).ok_or_else(|| StoreError::NotFound {
            entity: "meeting",
            id: id.to_owned(),
        })?;
        m.num_clients = (m.num_clients + delta).max(0);
        Ok(m.num_clients)
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
}

#[derive(Debug, Default)]
pub struct MemorySessions {
    sessions: Mutex<HashMap<(String, String), ParticipantSession>>,
    pub failures: Failures,
}

impl MemorySessions {
    pub fn get(&self, meeting_id: &str, session_id: &str) -> Option<ParticipantSession> {
        lock(&self.sessions)
            .get(&(meeting_id.to_owned(), session_id.to_owned()))
            .cloned()
    }
}

#[async_trait]
impl ParticipantSessionStore for MemorySessions {
    async fn record_join(&self, session: &ParticipantSession) -> StoreResult<bool> {
        self.failures.check("record_join")?;
        let key = (session.meeting_id.clone(), session.session_id.clone());
        let mut sessions = lock(&self.sessions);
        if sessions.contains_key(&key) {
            return Ok(false);
        }
        sessions.insert(key, session.clone());
        Ok(true)
    }
    async fn record_leave(
        &self,
        meeting_id: &str,
        session_id: &str,
        left_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.failures.check("record_leave")?;
        let key = (meeting_id.to_owned(), session_id.to_owned());
        let mut sessions = lock(&self.sessions);
        let entry = sessions.entry(key).or_insert_with(|| ParticipantSession {
            meeting_id: meeting_id.to_owned(),
            session_id: session_id.to_owned(),
            user_id: None,
            user_name: None,
            joined_at: left_at,
            left_at: None,
        });
        entry.left_at = Some(left_at);
        Ok(())
    }
    async fn list_by_meeting(&self, meeting_id: &str) -> StoreResult<Vec<ParticipantSession>> {
        self.failures.check("list_by_meeting")?;
        Ok(lock(&self.sessions)
            .values()
            .filter(|s| s.meeting_id == meeting_id)
            .cloned()
            .collect())
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

#[derive(Debug, Default)]
pub struct MemoryWebhookEvents {
    claimed: Mutex<HashSet<(Platform, String)>>,
    pub failures: Failures,
}

impl MemoryWebhookEvents {
    pub fn is_claimed(&self, platform: Platform, event_id: &str) -> bool {
        lock(&self.claimed).contains(&(platform, event_id.to_owned()))
    }
}

#[async_trait]
impl WebhookEventStore for MemoryWebhookEvents {
    async fn claim(&self, platform: Platform, event_id: &str, _ttl: Duration) -> StoreResult<bool> {
        self.failures.check("claim")?;
        Ok(lock(&self.claimed).insert((platform, event_id.to_owned())))
    }
    async fn release(&self, platform: Platform, event_id: &str) -> StoreResult<()> {
        self.failures.check("release")?;
        lock(&self.claimed).remove(&(platform, event_id.to_owned()));
        Ok(())
    }
}

/// [`ParticipantEvents`] over the meeting, session and webhook-event fakes, so a test observes
/// its writes through them. All-or-nothing like the DynamoDB transaction: the three stores are
/// locked together, and a missing meeting or an injected failure (`fail("apply")`) writes
/// nothing. Claims do not expire here (tests never wait for a TTL).
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
        let event = (claim.platform, claim.event_id.to_owned());
        if claimed.contains(&event) {
            return Ok(Applied::Duplicate);
        }
        let (meeting, _) = meetings
            .get_mut(meeting_id)
            .ok_or_else(|| StoreError::NotFound {
                entity: "meeting",
                id: meeting_id.to_owned(),
            })?;
        claimed.insert(event);
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
    }
}

#[derive(Debug, Default)]
pub struct MemoryRecordingQueue {
    sent: Mutex<Vec<RecordingJob>>,
    fail: Mutex<bool>,
}

impl MemoryRecordingQueue {
    pub fn sent(&self) -> Vec<RecordingJob> {
        lock(&self.sent).clone()
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
    async fn get(&self, id: &str) -> StoreResult<Option<Transcript>> {
        self.failures.check("get")?;
        Ok(lock(&self.transcripts).iter().find(|t| t.id == id).cloned())
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
