use std::collections::BTreeSet;
use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Duration;

use super::{at, env, meeting};
use crate::store::{conflict, Claim, MeetingStore, StoreError};

#[tokio::test]
async fn first_claim_wins_and_the_meeting_is_the_rooms_active_one() {
    let env = env().await;
    let meetings = &env.stores.meetings;
    let mut m = meeting("room-1", "standup-20260301", at(0), 8);
    m.is_active = false; // claiming makes it active whatever the caller passed

    assert_eq!(meetings.claim_active(&m, at(1)).await.unwrap(), Claim::Won);
    assert_eq!(env.ops(), ["TransactWriteItems"]);
    m.is_active = true;
    assert_eq!(meetings.get(&m.id).await.unwrap(), Some(m.clone()));
    assert_eq!(env.ops(), ["GetItem"]);
    assert_eq!(
        meetings.get_active_for_room("room-1", at(2)).await.unwrap(),
        Some(m.clone())
    );
    assert_eq!(env.ops(), ["GetItem", "GetItem"]);
    assert_eq!(
        meetings.get_active_for_room("room-2", at(2)).await.unwrap(),
        None
    );
    assert_eq!(env.ops(), ["GetItem"]);
    assert_eq!(meetings.get("missing").await.unwrap(), None);
}

#[tokio::test]
async fn a_second_claim_loses_to_the_active_meeting_and_learns_it() {
    let env = env().await;
    let meetings = &env.stores.meetings;
    let first = meeting("room-1", "standup-a", at(0), 8);
    let second = meeting("room-1", "standup-b", at(60), 8);
    meetings.claim_active(&first, at(0)).await.unwrap();
    env.ops();

    let claim = meetings.claim_active(&second, at(60)).await.unwrap();
    assert_eq!(claim, Claim::Lost(first.clone()));
    assert_eq!(env.ops(), ["TransactWriteItems", "GetItem"]);
    assert_eq!(meetings.get(&second.id).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_claims_have_one_winner_and_every_loser_sees_it() {
    let env = env().await;
    let meetings = Arc::new(env.stores.meetings.clone());
    let candidates: Vec<_> = (0..50)
        .map(|i| meeting("busy-room", &format!("busy-{i}"), at(0), 8))
        .collect();
    let tasks: Vec<_> = candidates
        .iter()
        .cloned()
        .map(|m| {
            let meetings = meetings.clone();
            tokio::spawn(async move { (m.id.clone(), meetings.claim_active(&m, at(1)).await) })
        })
        .collect();
    let mut winners = Vec::new();
    let mut seen_by_losers = BTreeSet::new();
    for task in tasks {
        let (id, claim) = task.await.unwrap();
        match claim.unwrap() {
            Claim::Won => winners.push(id),
            Claim::Lost(winner) => {
                seen_by_losers.insert(winner.id);
            }
        }
    }
    assert_eq!(winners.len(), 1);
    assert_eq!(seen_by_losers, BTreeSet::from([winners[0].clone()]));
    let active = meetings
        .get_active_for_room("busy-room", at(2))
        .await
        .unwrap();
    assert_eq!(active.map(|m| m.id), Some(winners[0].clone()));
    assert_eq!(meetings.list_active().await.unwrap().len(), 1);
}

#[tokio::test]
async fn an_ended_meeting_is_not_active_and_a_new_claim_replaces_it() {
    let env = env().await;
    let meetings = &env.stores.meetings;
    let old = meeting("room-1", "standup-a", at(0), 1);
    meetings.claim_active(&old, at(0)).await.unwrap();
    let after_end = at(3600);
    env.ops();

    assert_eq!(
        meetings
            .get_active_for_room("room-1", after_end)
            .await
            .unwrap(),
        None
    );
    assert_eq!(env.ops(), ["GetItem"]);
    let new = meeting("room-1", "standup-b", after_end, 8);
    assert_eq!(
        meetings.claim_active(&new, after_end).await.unwrap(),
        Claim::Won
    );
    assert_eq!(env.ops(), ["TransactWriteItems"]);
    assert_eq!(
        meetings
            .get_active_for_room("room-1", after_end)
            .await
            .unwrap(),
        Some(new)
    );
}

#[tokio::test]
async fn deactivate_frees_the_room_and_drops_the_meeting_from_the_active_list() {
    let env = env().await;
    let meetings = &env.stores.meetings;
    let m = meeting("room-1", "standup-a", at(0), 8);
    let other = meeting("room-2", "other-a", at(0), 8);
    meetings.claim_active(&m, at(0)).await.unwrap();
    meetings.claim_active(&other, at(0)).await.unwrap();
    env.ops();

    meetings.deactivate(&m.id).await.unwrap();
    assert_eq!(env.ops(), ["UpdateItem", "DeleteItem"]);
    let stored = meetings.get(&m.id).await.unwrap().unwrap();
    assert!(!stored.is_active);
    assert_eq!(
        meetings
            .get_active_for_room("room-1", at(10))
            .await
            .unwrap(),
        None
    );
    let active: Vec<_> = meetings
        .list_active()
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(active, vec![other.id.clone()]);

    let next = meeting("room-1", "standup-b", at(10), 8);
    assert_eq!(
        meetings.claim_active(&next, at(10)).await.unwrap(),
        Claim::Won
    );
    // Deactivating the old meeting again leaves the new one's slot alone.
    meetings.deactivate(&m.id).await.unwrap();
    assert_eq!(
        meetings
            .get_active_for_room("room-1", at(11))
            .await
            .unwrap()
            .map(|m| m.id),
        Some(next.id)
    );
    let err = meetings.deactivate("missing").await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn a_claim_takes_over_a_marker_left_by_an_interrupted_deactivate() {
    let env = env().await;
    let meetings = &env.stores.meetings;
    let stale = meeting("room-1", "standup-a", at(0), 8);
    meetings.claim_active(&stale, at(0)).await.unwrap();
    // The first half of deactivate only: the marker still names the meeting.
    env.raw
        .update_item()
        .table_name(&env.tables.meetings)
        .key("pk", AttributeValue::S(format!("meeting#{}", stale.id)))
        .update_expression("SET is_active = :f REMOVE active_key")
        .expression_attribute_values(":f", AttributeValue::Bool(false))
        .send()
        .await
        .unwrap();
    assert_eq!(
        meetings.get_active_for_room("room-1", at(5)).await.unwrap(),
        None
    );
    env.ops();

    let next = meeting("room-1", "standup-b", at(5), 8);
    assert_eq!(
        meetings.claim_active(&next, at(5)).await.unwrap(),
        Claim::Won
    );
    assert_eq!(
        env.ops(),
        ["TransactWriteItems", "GetItem", "TransactWriteItems"]
    );
    assert_eq!(
        meetings
            .get_active_for_room("room-1", at(6))
            .await
            .unwrap()
            .map(|m| m.id),
        Some(next.id)
    );
}

#[tokio::test]
async fn claiming_with_an_existing_meeting_id_is_an_id_conflict() {
    let env = env().await;
    let meetings = &env.stores.meetings;
    let m = meeting("room-1", "standup-a", at(0), 1);
    meetings.claim_active(&m, at(0)).await.unwrap();
    let mut again = m.clone();
    again.room_id = "room-2".into();
    let err = meetings.claim_active(&again, at(0)).await.unwrap_err();
    assert!(err.is_conflict(conflict::ID_TAKEN), "{err:?}");
    assert_eq!(
        meetings.get_active_for_room("room-2", at(1)).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn room_name_lookup_finds_the_newest_meeting_with_that_name() {
    let env = env().await;
    let meetings = &env.stores.meetings;
    let older = meeting("room-1", "shared-name", at(0), 1);
    let newer = meeting("room-1", "shared-name", at(7200), 1);
    let unrelated = meeting("room-2", "other-name", at(9000), 1);
    meetings.claim_active(&older, at(0)).await.unwrap();
    meetings.claim_active(&newer, at(7200)).await.unwrap();
    meetings.claim_active(&unrelated, at(9000)).await.unwrap();
    env.ops();

    let found = meetings.get_by_room_name("shared-name").await.unwrap();
    assert_eq!(found.map(|m| m.id), Some(newer.id));
    assert_eq!(env.ops(), ["Query"]);
    assert_eq!(meetings.get_by_room_name("nope").await.unwrap(), None);
}

#[tokio::test]
async fn active_list_is_one_query_and_holds_only_active_meetings() {
    let env = env().await;
    let meetings = &env.stores.meetings;
    let mut ids = BTreeSet::new();
    for i in 0..5 {
        let m = meeting(&format!("room-{i}"), &format!("name-{i}"), at(0), 8);
        meetings.claim_active(&m, at(0)).await.unwrap();
        ids.insert(m.id);
    }
    let gone = meeting("room-x", "name-x", at(0), 8);
    meetings.claim_active(&gone, at(0)).await.unwrap();
    meetings.deactivate(&gone.id).await.unwrap();
    env.ops();

    let active = meetings.list_active().await.unwrap();
    assert_eq!(env.ops(), ["Query"]);
    assert!(active.iter().all(|m| m.is_active));
    assert_eq!(
        active.into_iter().map(|m| m.id).collect::<BTreeSet<_>>(),
        ids
    );
}

#[tokio::test]
async fn client_count_snapshots_apply_only_when_newer() {
    let env = env().await;
    let meetings = &env.stores.meetings;
    let m = meeting("room-1", "whereby-room", at(0), 8);
    meetings.claim_active(&m, at(0)).await.unwrap();
    env.ops();
    let t = at(100);

    assert!(meetings.set_clients_if_newer(&m.id, 3, t).await.unwrap());
    assert_eq!(env.ops(), ["UpdateItem"]);
    // Out of order: an older snapshot arrives late.
    assert!(!meetings
        .set_clients_if_newer(&m.id, 1, t - Duration::seconds(5))
        .await
        .unwrap());
    assert_eq!(env.ops(), ["UpdateItem"]);
    // A duplicate delivery.
    assert!(!meetings.set_clients_if_newer(&m.id, 1, t).await.unwrap());
    assert_eq!(meetings.get(&m.id).await.unwrap().unwrap().num_clients, 3);
    assert!(meetings
        .set_clients_if_newer(&m.id, 0, t + Duration::seconds(1))
        .await
        .unwrap());
    assert_eq!(meetings.get(&m.id).await.unwrap().unwrap().num_clients, 0);
    let err = meetings
        .set_clients_if_newer("missing", 1, t)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn a_recording_kind_is_marked_started_once_in_one_request_each() {
    use crate::domain::RecordingKind::{Cloud, RawTracks};
    let env = env().await;
    let meetings = &env.stores.meetings;
    let m = meeting("room-1", "standup-1", at(0), 8);
    meetings.claim_active(&m, at(1)).await.unwrap();
    env.ops();

    assert!(meetings.mark_recording_started(&m.id, Cloud).await.unwrap());
    assert_eq!(env.ops(), ["UpdateItem"]);
    assert!(!meetings.mark_recording_started(&m.id, Cloud).await.unwrap());
    assert_eq!(env.ops(), ["UpdateItem"]);
    assert!(meetings
        .mark_recording_started(&m.id, RawTracks)
        .await
        .unwrap());

    let stored = meetings.get(&m.id).await.unwrap().unwrap();
    assert_eq!(
        stored.recordings_started,
        BTreeSet::from([Cloud, RawTracks])
    );
    // The rest of the meeting is untouched.
    let mut expected = m.clone();
    expected.recordings_started = BTreeSet::from([Cloud, RawTracks]);
    assert_eq!(stored, expected);
    assert_eq!(
        meetings.get_by_room_name("standup-1").await.unwrap(),
        Some(expected)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_marks_of_one_kind_have_exactly_one_first() {
    let env = env().await;
    let meetings = Arc::new(env.stores.meetings.clone());
    let m = meeting("room-1", "standup-1", at(0), 8);
    meetings.claim_active(&m, at(1)).await.unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let meetings = meetings.clone();
            let id = m.id.clone();
            tokio::spawn(async move {
                meetings
                    .mark_recording_started(&id, crate::domain::RecordingKind::Cloud)
                    .await
            })
        })
        .collect();
    let mut firsts = 0;
    for t in tasks {
        if t.await.unwrap().unwrap() {
            firsts += 1;
        }
    }
    assert_eq!(firsts, 1);
}

#[tokio::test]
async fn marking_an_unknown_meeting_is_not_found_and_creates_nothing() {
    let env = env().await;
    let meetings = &env.stores.meetings;
    let err = meetings
        .mark_recording_started("missing", crate::domain::RecordingKind::Cloud)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::NotFound {
                entity: "meeting",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(meetings.get("missing").await.unwrap(), None);
}

#[tokio::test]
async fn a_meeting_stored_with_started_kinds_reads_them_back() {
    let env = env().await;
    let meetings = &env.stores.meetings;
    let mut m = meeting("room-2", "standup-2", at(0), 8);
    m.recordings_started = BTreeSet::from([crate::domain::RecordingKind::RawTracks]);
    meetings.claim_active(&m, at(1)).await.unwrap();
    let mut expected = m.clone();
    expected.is_active = true;
    assert_eq!(meetings.get(&m.id).await.unwrap(), Some(expected));
}
