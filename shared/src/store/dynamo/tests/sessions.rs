use super::{at, env};
use crate::domain::ParticipantSession;
use crate::store::ParticipantSessionStore;

fn session(meeting_id: &str, session_id: &str, secs: i64) -> ParticipantSession {
    ParticipantSession {
        meeting_id: meeting_id.into(),
        session_id: session_id.into(),
        user_id: Some(format!("user-{session_id}")),
        user_name: Some(format!("User {session_id}")),
        joined_at: at(secs),
        left_at: None,
    }
}

#[tokio::test]
async fn join_then_leave_is_listed_with_both_times() {
    let env = env().await;
    let sessions = &env.stores.participant_sessions;
    let s = session("m1", "s1", 0);

    assert!(sessions.record_join(&s).await.unwrap());
    assert_eq!(env.ops(), ["UpdateItem"]);
    sessions.record_leave("m1", "s1", at(60)).await.unwrap();
    assert_eq!(env.ops(), ["UpdateItem"]);

    let listed = sessions.list_by_meeting("m1").await.unwrap();
    assert_eq!(env.ops(), ["Query"]);
    assert_eq!(
        listed,
        vec![ParticipantSession {
            left_at: Some(at(60)),
            ..s
        }]
    );
}

#[tokio::test]
async fn a_repeated_join_is_reported_and_changes_nothing() {
    let env = env().await;
    let sessions = &env.stores.participant_sessions;
    let s = session("m1", "s1", 0);
    assert!(sessions.record_join(&s).await.unwrap());
    let replay = ParticipantSession {
        joined_at: at(30),
        ..s.clone()
    };
    assert!(!sessions.record_join(&replay).await.unwrap());
    assert_eq!(sessions.list_by_meeting("m1").await.unwrap(), vec![s]);
}

#[tokio::test]
async fn a_leave_that_arrives_before_its_join_is_kept() {
    let env = env().await;
    let sessions = &env.stores.participant_sessions;
    sessions.record_leave("m1", "s1", at(90)).await.unwrap();
    let early = sessions.list_by_meeting("m1").await.unwrap();
    assert_eq!(early.len(), 1);
    assert_eq!(early[0].left_at, Some(at(90)));

    let s = session("m1", "s1", 10);
    assert!(sessions.record_join(&s).await.unwrap());
    assert_eq!(
        sessions.list_by_meeting("m1").await.unwrap(),
        vec![ParticipantSession {
            left_at: Some(at(90)),
            ..s
        }]
    );
}

#[tokio::test]
async fn listing_returns_only_that_meetings_sessions() {
    let env = env().await;
    let sessions = &env.stores.participant_sessions;
    for (m, s) in [("m1", "a"), ("m1", "b"), ("m2", "c")] {
        let mut anon = session(m, s, 0);
        anon.user_id = None;
        anon.user_name = None;
        sessions.record_join(&anon).await.unwrap();
    }
    let listed = sessions.list_by_meeting("m1").await.unwrap();
    let ids: Vec<_> = listed.iter().map(|s| s.session_id.as_str()).collect();
    assert_eq!(ids, ["a", "b"]);
    assert!(listed
        .iter()
        .all(|s| s.user_id.is_none() && s.user_name.is_none()));
    assert!(sessions.list_by_meeting("m3").await.unwrap().is_empty());
}
