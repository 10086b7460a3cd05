//! Sessions are written by `ParticipantEvents::apply` (its tests cover joins, leaves and their
//! order); these cover reading them back.

use super::{at, env, event_claim, stored_meeting, Env};
use crate::domain::Platform;
use crate::store::ParticipantSessionStore;
use crate::store::{ParticipantChange, ParticipantEvents};

async fn apply(env: &Env, meeting_id: &str, event_id: &str, change: ParticipantChange<'_>) {
    let claim = event_claim(Platform::Daily, event_id, at(0));
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
