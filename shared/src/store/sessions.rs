//! Daily room sessions built from the participant sessions our webhook stores
//! ([`RoomSessionSource`] for [`crate::platform::DailyClient`]).
//!
//! Daily's own meeting history is coarse (a join is recorded only after 10 s, times are accurate
//! to ~15 s), so the sweeper asks this adapter instead: the meeting is found by its platform room
//! name, and its participants' stays are merged into room sessions, each running from the first
//! join to the moment the room emptied.

use std::sync::Arc;

use async_trait::async_trait;

use super::{MeetingStore, ParticipantSessionStore, StoreError};
use crate::domain::{ParticipantSession, Platform};
use crate::platform::{PlatformError, RoomSessionSource, SessionData};

/// [`RoomSessionSource`] over the meeting and participant-session stores: two requests per call
/// (the meeting by room name, then its participant sessions), one when the room is unknown.
#[derive(Clone)]
pub struct StoredRoomSessions {
    meetings: Arc<dyn MeetingStore>,
    sessions: Arc<dyn ParticipantSessionStore>,
}

impl std::fmt::Debug for StoredRoomSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredRoomSessions").finish_non_exhaustive()
    }
}

impl StoredRoomSessions {
    pub fn new(
        meetings: Arc<dyn MeetingStore>,
        sessions: Arc<dyn ParticipantSessionStore>,
    ) -> Self {
        Self { meetings, sessions }
    }
}

fn store_failure(operation: &'static str, e: StoreError) -> PlatformError {
    // The trait speaks PlatformError; a store failure is the closest thing to "the platform
    // could not be reached", and it keeps the store's message.
    PlatformError::Transport {
        platform: Platform::Daily,
        operation,
        timed_out: false,
        message: e.to_string(),
    }
}

#[async_trait]
impl RoomSessionSource for StoredRoomSessions {
    async fn sessions_for_room(&self, room_name: &str) -> Result<Vec<SessionData>, PlatformError> {
        let Some(meeting) = self
            .meetings
            .get_by_room_name(room_name)
            .await
            .map_err(|e| store_failure("find the meeting of a room", e))?
        else {
            // Nobody ever joined a room we do not know: no session.
            return Ok(Vec::new());
        };
        let participants = self
            .sessions
            .list_by_meeting(&meeting.id)
            .await
            .map_err(|e| store_failure("list stored participant sessions", e))?;
        Ok(room_sessions(participants))
    }
}

/// Merges participants' stays into room sessions, oldest first: stays that overlap or touch
/// belong to one session, which is open (`ended_at: None`) while any of its participants has not
/// left. A session takes the id of its first participant session.
pub fn room_sessions(mut participants: Vec<ParticipantSession>) -> Vec<SessionData> {
    participants.sort_by(|a, b| {
        a.joined_at
            .cmp(&b.joined_at)
            .then_with(|| a.session_id.cmp(&b.session_id))
    });
    let mut sessions: Vec<SessionData> = Vec::new();
    for p in participants {
        match sessions.last_mut() {
            // Joined before the current session emptied (or it has not emptied): same session.
            Some(current) if current.ended_at.is_none_or(|end| p.joined_at <= end) => {
                current.ended_at = match (current.ended_at, p.left_at) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    _ => None,
                };
            }
            _ => sessions.push(SessionData {
                session_id: p.session_id,
                started_at: p.joined_at,
                ended_at: p.left_at,
            }),
        }
    }
    sessions
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Meeting, RecordingTrigger, RecordingType, RoomMode};
    use crate::fakes::{MemoryMeetings, MemorySessions};
    use chrono::{DateTime, Duration, TimeZone, Utc};

    fn t(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 2, 10, 0, 0).unwrap() + Duration::minutes(min)
    }

    fn stay(id: &str, joined: i64, left: Option<i64>) -> ParticipantSession {
        ParticipantSession {
            meeting_id: "m1".into(),
            session_id: id.into(),
            user_id: None,
            user_name: None,
            joined_at: t(joined),
            left_at: left.map(t),
        }
    }

    fn meeting(id: &str, room_name: &str) -> Meeting {
        Meeting {
            recordings_started: Default::default(),
            id: id.into(),
            room_id: "room-1".into(),
            room_name: room_name.into(),
            room_url: format!("https://x.daily.co/{room_name}"),
            host_room_url: String::new(),
            start_date: t(0),
            end_date: t(480),
            user_id: None,
            is_locked: false,
            room_mode: RoomMode::Normal,
            recording_type: RecordingType::Cloud,
            recording_trigger: RecordingTrigger::Automatic2ndParticipant,
            num_clients: 0,
            is_active: true,
            platform: Platform::Daily,
            extra_data: serde_json::Value::Null,
        }
    }

    #[test]
    fn overlapping_stays_form_one_session_that_ends_when_the_last_participant_leaves() {
        let sessions = room_sessions(vec![stay("b", 5, Some(30)), stay("a", 0, Some(10))]);
        assert_eq!(
            sessions,
            vec![SessionData {
                session_id: "a".into(),
                started_at: t(0),
                ended_at: Some(t(30)),
            }]
        );
    }

    #[test]
    fn a_participant_still_in_the_room_keeps_the_session_open() {
        let sessions = room_sessions(vec![stay("a", 0, Some(10)), stay("b", 5, None)]);
        assert_eq!(sessions.len(), 1);
        assert_eq!(sessions[0].ended_at, None);
        // Someone who joins and leaves later does not close a session another still holds open.
        let sessions = room_sessions(vec![stay("a", 0, None), stay("b", 5, Some(10))]);
        assert_eq!(sessions.len(), 1);
        assert_eq!(sessions[0].ended_at, None);
    }

    #[test]
    fn a_join_after_the_room_emptied_starts_a_new_session() {
        let sessions = room_sessions(vec![stay("a", 0, Some(10)), stay("b", 20, None)]);
        assert_eq!(
            sessions,
            vec![
                SessionData {
                    session_id: "a".into(),
                    started_at: t(0),
                    ended_at: Some(t(10)),
                },
                SessionData {
                    session_id: "b".into(),
                    started_at: t(20),
                    ended_at: None,
                },
            ]
        );
    }

    #[tokio::test]
    async fn sessions_for_a_room_come_from_its_meetings_stored_participants() {
        let meetings = Arc::new(MemoryMeetings::default());
        meetings.insert(meeting("m1", "daily-room-1"));
        meetings.insert(meeting("m2", "daily-room-2"));
        let stored = Arc::new(MemorySessions::default());
        stored.insert(stay("a", 0, Some(10)));
        let mut other = stay("z", 0, None);
        other.meeting_id = "m2".into();
        stored.insert(other);

        let source = StoredRoomSessions::new(meetings, stored);
        let sessions = source.sessions_for_room("daily-room-1").await.unwrap();
        assert_eq!(
            sessions,
            vec![SessionData {
                session_id: "a".into(),
                started_at: t(0),
                ended_at: Some(t(10)),
            }]
        );
        let other = source.sessions_for_room("daily-room-2").await.unwrap();
        assert_eq!(other.len(), 1);
        assert_eq!(other[0].ended_at, None);
    }

    #[tokio::test]
    async fn an_unknown_room_has_no_session() {
        let source = StoredRoomSessions::new(
            Arc::new(MemoryMeetings::default()),
            Arc::new(MemorySessions::default()),
        );
        assert!(source.sessions_for_room("nobody").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_store_failure_is_an_error_naming_daily_not_an_empty_list() {
        let meetings = Arc::new(MemoryMeetings::default());
        meetings.insert(meeting("m1", "daily-room-1"));
        let stored = Arc::new(MemorySessions::default());
        stored.failures.fail("list_by_meeting");
        let source = StoredRoomSessions::new(meetings, stored);
        let err = source.sessions_for_room("daily-room-1").await.unwrap_err();
        assert_eq!(err.platform(), Some(Platform::Daily));
        assert!(err.to_string().contains("injected failure"), "{err}");
    }
}
