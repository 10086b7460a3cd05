//! A video platform without network, for the local stack and tests.
//!
//! Rooms are named like Daily's (`<prefix>-<YYYYMMDDHHMMSS>`) and live at
//! `https://mock.video/<room>`; every call is recorded so tests can see what the handlers did.
//! It verifies no webhooks: the webhook functions verify with their own secret
//! (`shared::webhook::signature`), whatever platform serves the meeting.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::json;

use super::daily::DailyClient;
use super::{MeetingData, PlatformError, SessionData, VideoPlatform};
use crate::domain::{Platform, Room};

pub const MOCK_BASE_URL: &str = "https://mock.video";

/// One call made to the mock, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MockCall {
    CreateMeeting {
        room_name_prefix: String,
        room_name: String,
        end_date: DateTime<Utc>,
    },
    GetRoomSessions {
        room_name: String,
    },
    DeleteRoom {
        room_name: String,
        platform_meeting_id: Option<String>,
    },
}

#[derive(Default)]
struct State {
    calls: Vec<MockCall>,
    sessions: HashMap<String, Vec<SessionData>>,
    fail_next: Option<PlatformError>,
}

pub struct MockClient {
    clock: fn() -> DateTime<Utc>,
    state: Mutex<State>,
}

impl std::fmt::Debug for MockClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockClient").finish_non_exhaustive()
    }
}

impl Default for MockClient {
    fn default() -> Self {
        Self::new()
    }
}

impl MockClient {
    pub fn new() -> Self {
        Self {
            clock: Utc::now,
            state: Mutex::new(State::default()),
        }
    }

    /// The clock used for room names (tests pin it).
    pub fn with_clock(mut self, clock: fn() -> DateTime<Utc>) -> Self {
        self.clock = clock;
        self
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep using it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<MockCall> {
        self.state().calls.clone()
    }

    /// What `get_room_sessions(room_name)` answers from now on (default: no session).
    pub fn set_sessions(&self, room_name: &str, sessions: Vec<SessionData>) {
        self.state().sessions.insert(room_name.to_owned(), sessions);
    }

    /// The next call (of any kind) fails with `error`, as a platform outage would.
    pub fn fail_next(&self, error: PlatformError) {
        self.state().fail_next = Some(error);
    }

    fn record(&self, call: MockCall) -> Result<(), PlatformError> {
        let mut state = self.state();
        state.calls.push(call);
        match state.fail_next.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl VideoPlatform for MockClient {
    fn platform(&self) -> Platform {
        Platform::Mock
    }

    async fn create_meeting(
        &self,
        room_name_prefix: &str,
        end_date: DateTime<Utc>,
        room: &Room,
    ) -> Result<MeetingData, PlatformError> {
        let room_name = DailyClient::room_name(room_name_prefix, (self.clock)());
        self.record(MockCall::CreateMeeting {
            room_name_prefix: room_name_prefix.to_owned(),
            room_name: room_name.clone(),
            end_date,
        })?;
        let room_url = format!("{MOCK_BASE_URL}/{room_name}");
        Ok(MeetingData {
            meeting_id: format!("mock-{room_name}"),
            host_room_url: format!("{room_url}?host=1"),
            extra_data: json!({
                "mock": true,
                "room_id": room.id,
                "end_date": end_date,
            }),
            room_name,
            room_url,
            platform: Platform::Mock,
        })
    }

    async fn get_room_sessions(&self, room_name: &str) -> Result<Vec<SessionData>, PlatformError> {
        self.record(MockCall::GetRoomSessions {
            room_name: room_name.to_owned(),
        })?;
        Ok(self
            .state()
            .sessions
            .get(room_name)
            .cloned()
            .unwrap_or_default())
    }

    async fn delete_room(
        &self,
        room_name: &str,
        platform_meeting_id: Option<&str>,
    ) -> Result<(), PlatformError> {
        self.record(MockCall::DeleteRoom {
            room_name: room_name.to_owned(),
            platform_meeting_id: platform_meeting_id.map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::test_support::{fixed_now, room};

    #[tokio::test]
    async fn mock_meeting_urls_are_deterministic_and_calls_are_recorded() {
        let mock = MockClient::new().with_clock(fixed_now);
        let end = fixed_now() + chrono::Duration::hours(8);
        let m = mock.create_meeting("team", end, &room()).await.unwrap();
        assert_eq!(m.room_name, "team-20260102030405");
        assert_eq!(m.room_url, "https://mock.video/team-20260102030405");
        assert_eq!(
            m.host_room_url,
            "https://mock.video/team-20260102030405?host=1"
        );
        assert_eq!(m.platform, Platform::Mock);
        mock.delete_room(&m.room_name, Some(&m.meeting_id))
            .await
            .unwrap();
        assert_eq!(
            mock.calls(),
            vec![
                MockCall::CreateMeeting {
                    room_name_prefix: "team".into(),
                    room_name: "team-20260102030405".into(),
                    end_date: end,
                },
                MockCall::DeleteRoom {
                    room_name: "team-20260102030405".into(),
                    platform_meeting_id: Some("mock-team-20260102030405".into()),
                },
            ]
        );
    }

    #[tokio::test]
    async fn mock_sessions_are_what_the_test_set() {
        let mock = MockClient::new();
        assert!(mock.get_room_sessions("r").await.unwrap().is_empty());
        let s = SessionData {
            session_id: "s1".into(),
            started_at: fixed_now(),
            ended_at: None,
        };
        mock.set_sessions("r", vec![s.clone()]);
        assert_eq!(mock.get_room_sessions("r").await.unwrap(), vec![s]);
    }

    #[tokio::test]
    async fn mock_can_fail_the_next_call_like_an_outage() {
        let mock = MockClient::new();
        let outage = PlatformError::Api {
            platform: Platform::Mock,
            status: 503,
            error: "unavailable".into(),
            info: None,
        };
        mock.fail_next(outage.clone());
        let end = fixed_now();
        assert_eq!(mock.create_meeting("x", end, &room()).await, Err(outage));
        assert!(mock.create_meeting("x", end, &room()).await.is_ok());
    }
}
