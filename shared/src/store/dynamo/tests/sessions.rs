//! Sessions are written by `ParticipantEvents::apply` (its tests cover joins, leaves and their
//! order); these cover reading them back.

use std::time::Duration;

use super::{at, env, meeting, Env};
use crate::domain::{Meeting, Platform};
use crate::store::ParticipantSessionStore;
use crate::store::{EventClaim, MeetingStore, ParticipantChange, ParticipantEvents};

async fn stored_meeting(env: &Env, room_name: &str) -> Meeting {
    let m = meeting(&super::id(), room_name, at(0), 8);
    env.stores.meetings.claim_active(&m, at(0)).await.unwrap();
    m
}

async fn apply(env: &Env, meeting_id: &str, event_id: &str, change: ParticipantChange<'_>) {
    let claim = EventClaim {
        platform: Platform::Daily,
        event_id,
        ttl: Duration::from_secs(86_400),
        lease: Duration::from_secs(60),
        now: at(0),
    };
    env.stores
        .participant_events
        .apply(claim, meeting_id, change)
        .await
        .unwrap();
}

fn anonymous_join(session_id: &str) -> ParticipantChange<'_> {
    ParticipantChange::Joined {
        session_id,
        user_id: None,
        user_name: None,
        joined_at: at(0),
    }
}

#[tokio::test]
async fn listing_returns_only_that_meetings_sessions_in_one_query() {
    let env = env().await;
    let (m1, m2) = (
        stored_meeting(&env, "room-1").await,
        stored_meeting(&env, "room-2").await,
    );
    apply(&env, &m1.id, "e1", anonymous_join("a")).await;
    apply(&env, &m1.id, "e2", anonymous_join("b")).await;
    apply(&env, &m2.id, "e3", anonymous_join("c")).await;
    let leave = ParticipantChange::Left {
        session_id: "a",
        left_at: at(60),
    };
    apply(&env, &m1.id, "e4", leave).await;
    env.ops();

    let sessions = &env.stores.participant_sessions;
    let mut listed = sessions.list_by_meeting(&m1.id).await.unwrap();
    assert_eq!(env.ops(), ["Query"]);
    listed.sort_by(|x, y| x.session_id.cmp(&y.session_id));
    let found: Vec<_> = listed
        .iter()
        .map(|s| (s.session_id.as_str(), s.joined_at, s.left_at))
        .collect();
    assert_eq!(found, [("a", at(0), Some(at(60))), ("b", at(0), None)]);
    assert!(listed
        .iter()
        .all(|s| s.user_id.is_none() && s.user_name.is_none()));
    assert!(sessions.list_by_meeting("m3").await.unwrap().is_empty());
}
