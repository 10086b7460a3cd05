use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{at, env, event_claim, num_clients, stored_meeting, webhook_event_item, Env};
use crate::domain::{ParticipantSession, Platform};
use crate::store::{
    Applied, EventClaim, ParticipantChange, ParticipantEvents, ParticipantSessionStore, StoreError,
};

fn claim(event_id: &str, now: DateTime<Utc>) -> EventClaim<'_> {
    event_claim(Platform::Daily, event_id, now)
}

fn join(session_id: &str, secs: i64) -> ParticipantChange<'_> {
    ParticipantChange::Joined {
        session_id,
        user_id: Some("user-1"),
        user_name: Some("Ada"),
        joined_at: at(secs),
    }
}

fn leave(session_id: &str, secs: i64) -> ParticipantChange<'_> {
    ParticipantChange::Left {
        session_id,
        left_at: at(secs),
    }
}

async fn sessions(env: &Env, meeting_id: &str) -> Vec<ParticipantSession> {
    let s = env
        .stores
        .participant_sessions
        .list_by_meeting(meeting_id)
        .await
        .unwrap();
    env.ops();
    s
}

async fn was_claimed(env: &Env, event_id: &str) -> bool {
    webhook_event_item(env, &format!("daily#{event_id}"))
        .await
        .is_some()
}

#[tokio::test]
async fn a_join_records_the_session_and_adds_a_client_in_one_request() {
    let env = env().await;
    let m = stored_meeting(&env, "standup").await;
    let events = &env.stores.participant_events;

    let applied = events
        .apply(claim("evt-1", at(1)), &m.id, join("s1", 1))
        .await
        .unwrap();
    assert_eq!(applied, Applied::Applied);
    assert_eq!(env.ops(), ["TransactWriteItems"]);
    assert_eq!(num_clients(&env, &m.id).await, 1);
    assert_eq!(
        sessions(&env, &m.id).await,
        vec![ParticipantSession {
            meeting_id: m.id.clone(),
            session_id: "s1".into(),
            user_id: Some("user-1".into()),
            user_name: Some("Ada".into()),
            joined_at: at(1),
            left_at: None,
        }]
    );
    assert!(was_claimed(&env, "evt-1").await);
}

#[tokio::test]
async fn the_same_event_twice_is_a_duplicate_and_changes_nothing() {
    let env = env().await;
    let m = stored_meeting(&env, "standup").await;
    let events = &env.stores.participant_events;
    events
        .apply(claim("evt-1", at(1)), &m.id, join("s1", 1))
        .await
        .unwrap();
    env.ops();

    // Even with another session in it, a known event id changes nothing.
    for change in [join("s1", 1), join("s2", 2)] {
        let again = events
            .apply(claim("evt-1", at(5)), &m.id, change)
            .await
            .unwrap();
        assert_eq!(again, Applied::Duplicate);
        assert_eq!(env.ops(), ["TransactWriteItems"]);
    }
    assert_eq!(num_clients(&env, &m.id).await, 1);
    let listed = sessions(&env, &m.id).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_distinct_joins_count_fifty() {
    let env = env().await;
    let m = stored_meeting(&env, "standup").await;
    let events = Arc::new(env.stores.participant_events.clone());
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let events = events.clone();
            let meeting_id = m.id.clone();
            tokio::spawn(async move {
                let event_id = format!("evt-{i}");
                let session_id = format!("s-{i}");
                events
                    .apply(claim(&event_id, at(1)), &meeting_id, join(&session_id, 1))
                    .await
                    .unwrap()
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), Applied::Applied);
    }
    assert_eq!(num_clients(&env, &m.id).await, 50);
    assert_eq!(sessions(&env, &m.id).await.len(), 50);
}

#[tokio::test]
async fn a_leave_after_a_join_records_the_leave_and_removes_the_client() {
    let env = env().await;
    let m = stored_meeting(&env, "standup").await;
    let events = &env.stores.participant_events;
    events
        .apply(claim("join", at(1)), &m.id, join("s1", 1))
        .await
        .unwrap();
    env.ops();

    let applied = events
        .apply(claim("leave", at(60)), &m.id, leave("s1", 60))
        .await
        .unwrap();
    assert_eq!(applied, Applied::Applied);
    assert_eq!(env.ops(), ["TransactWriteItems"]);
    assert_eq!(num_clients(&env, &m.id).await, 0);
    let listed = sessions(&env, &m.id).await;
    assert_eq!(listed[0].joined_at, at(1));
    assert_eq!(listed[0].left_at, Some(at(60)));
}

#[tokio::test]
async fn a_leave_at_zero_clients_records_the_leave_claims_the_event_and_keeps_zero() {
    let env = env().await;
    let m = stored_meeting(&env, "standup").await;
    let events = &env.stores.participant_events;

    let applied = events
        .apply(claim("leave", at(60)), &m.id, leave("s1", 60))
        .await
        .unwrap();
    assert_eq!(applied, Applied::Applied);
    // The second request is the claim and session again, without the count.
    assert_eq!(env.ops(), ["TransactWriteItems", "TransactWriteItems"]);
    assert_eq!(num_clients(&env, &m.id).await, 0);
    let listed = sessions(&env, &m.id).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].left_at, Some(at(60)));

    let again = events
        .apply(claim("leave", at(61)), &m.id, leave("s1", 60))
        .await
        .unwrap();
    assert_eq!(again, Applied::Duplicate);
    assert_eq!(env.ops(), ["TransactWriteItems"]);
    assert!(was_claimed(&env, "leave").await);
}

#[tokio::test]
async fn an_event_for_a_missing_meeting_is_not_found_and_writes_nothing() {
    let env = env().await;
    let events = &env.stores.participant_events;
    for (event_id, change) in [("join", join("s1", 1)), ("leave", leave("s1", 2))] {
        let err = events
            .apply(claim(event_id, at(1)), "no-such-meeting", change)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::NotFound { entity: "meeting", id } if id == "no-such-meeting"),
            "{err:?}"
        );
        assert_eq!(env.ops(), ["TransactWriteItems"]);
        assert!(!was_claimed(&env, event_id).await);
    }
    assert!(sessions(&env, "no-such-meeting").await.is_empty());
}

#[tokio::test]
async fn a_join_after_its_leave_replaces_the_placeholder_and_the_first_join_wins() {
    let env = env().await;
    let m = stored_meeting(&env, "standup").await;
    let events = &env.stores.participant_events;
    events
        .apply(claim("leave", at(60)), &m.id, leave("s1", 60))
        .await
        .unwrap();
    events
        .apply(claim("join", at(61)), &m.id, join("s1", 1))
        .await
        .unwrap();
    let late = ParticipantChange::Joined {
        session_id: "s1",
        user_id: Some("someone-else"),
        user_name: None,
        joined_at: at(30),
    };
    events
        .apply(claim("join-again", at(62)), &m.id, late)
        .await
        .unwrap();

    let listed = sessions(&env, &m.id).await;
    assert_eq!(
        listed,
        vec![ParticipantSession {
            meeting_id: m.id.clone(),
            session_id: "s1".into(),
            user_id: Some("user-1".into()),
            user_name: Some("Ada".into()),
            joined_at: at(1),
            left_at: Some(at(60)),
        }]
    );
}

#[tokio::test]
async fn an_expired_claim_lets_the_event_apply_again() {
    let env = env().await;
    let m = stored_meeting(&env, "standup").await;
    let events = &env.stores.participant_events;
    let short = EventClaim {
        ttl: Duration::from_secs(10),
        ..claim("evt-1", at(1))
    };
    events.apply(short, &m.id, join("s1", 1)).await.unwrap();
    let later = events
        .apply(claim("evt-1", at(11)), &m.id, join("s2", 11))
        .await
        .unwrap();
    assert_eq!(later, Applied::Applied);
    assert_eq!(num_clients(&env, &m.id).await, 2);
}
