use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use super::{at, env, event_claim, num_clients, stored_meeting, webhook_event_item, Env};
use crate::domain::Platform;
use crate::store::{
    ClientCountEvents, CountWrite, EventClaim, EventLease, StoreError, WebhookEventStore,
};

fn claim(event_id: &str, now: DateTime<Utc>) -> EventClaim<'_> {
    event_claim(Platform::Whereby, event_id, now)
}

async fn claim_item(env: &Env, event_id: &str) -> Option<HashMap<String, AttributeValue>> {
    webhook_event_item(env, &format!("whereby#{event_id}")).await
}

async fn is_completed(env: &Env, event_id: &str) -> bool {
    claim_item(env, event_id)
        .await
        .is_some_and(|i| i.get("claim_state") == Some(&AttributeValue::S("COMPLETED".into())))
}

#[tokio::test]
async fn a_newer_event_is_claimed_and_sets_the_count_in_one_request() {
    let env = env().await;
    let m = stored_meeting(&env, "whereby-room").await;
    let counts = &env.stores.client_count_events;

    let written = counts
        .set_clients(claim("e-1", at(10)), &m.id, 3, at(5))
        .await
        .unwrap();
    assert_eq!(written, CountWrite::Written);
    assert_eq!(env.ops(), ["TransactWriteItems"]);
    assert_eq!(num_clients(&env, &m.id).await, 3);
    let item = claim_item(&env, "e-1").await.unwrap();
    assert_eq!(item["claim_state"], AttributeValue::S("COMPLETED".into()));
    assert_eq!(
        item["expires_at"],
        AttributeValue::N((at(10).timestamp() + 86_400).to_string())
    );
}

#[tokio::test]
async fn the_same_event_again_is_a_duplicate_in_one_request_even_with_a_newer_time() {
    let env = env().await;
    let m = stored_meeting(&env, "whereby-room").await;
    let counts = &env.stores.client_count_events;
    counts
        .set_clients(claim("e-1", at(10)), &m.id, 3, at(5))
        .await
        .unwrap();
    env.ops();

    // Even with a later observation time (an event without createdAt, received again later),
    // a known event id changes nothing.
    let again = counts
        .set_clients(claim("e-1", at(20)), &m.id, 7, at(20))
        .await
        .unwrap();
    assert_eq!(again, CountWrite::Duplicate);
    assert_eq!(env.ops(), ["TransactWriteItems"]);
    assert_eq!(num_clients(&env, &m.id).await, 3);
}

#[tokio::test]
async fn an_older_event_keeps_the_count_is_claimed_and_its_replay_is_a_duplicate() {
    let env = env().await;
    let m = stored_meeting(&env, "whereby-room").await;
    let counts = &env.stores.client_count_events;
    counts
        .set_clients(claim("newer", at(10)), &m.id, 4, at(8))
        .await
        .unwrap();
    env.ops();

    let older = counts
        .set_clients(claim("older", at(11)), &m.id, 1, at(7))
        .await
        .unwrap();
    assert_eq!(older, CountWrite::Older);
    // The transaction refused by the count, then the claim alone.
    assert_eq!(env.ops(), ["TransactWriteItems", "PutItem"]);
    assert_eq!(num_clients(&env, &m.id).await, 4);
    assert!(is_completed(&env, "older").await);

    let replay = counts
        .set_clients(claim("older", at(12)), &m.id, 1, at(7))
        .await
        .unwrap();
    assert_eq!(replay, CountWrite::Duplicate);
    assert_eq!(env.ops(), ["TransactWriteItems"]);
    assert_eq!(num_clients(&env, &m.id).await, 4);
}

#[tokio::test]
async fn an_event_observed_at_the_stored_time_is_older() {
    let env = env().await;
    let m = stored_meeting(&env, "whereby-room").await;
    let counts = &env.stores.client_count_events;
    counts
        .set_clients(claim("a", at(10)), &m.id, 2, at(8))
        .await
        .unwrap();
    let same_time = counts
        .set_clients(claim("b", at(10)), &m.id, 5, at(8))
        .await
        .unwrap();
    assert_eq!(same_time, CountWrite::Older);
    assert_eq!(num_clients(&env, &m.id).await, 2);
}

#[tokio::test]
async fn an_event_for_a_missing_meeting_is_not_found_and_writes_nothing() {
    let env = env().await;
    let counts = &env.stores.client_count_events;
    let err = counts
        .set_clients(claim("e-1", at(1)), "no-such-meeting", 1, at(1))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::NotFound { entity: "meeting", id } if id == "no-such-meeting"),
        "{err:?}"
    );
    assert_eq!(env.ops(), ["TransactWriteItems"]);
    assert!(claim_item(&env, "e-1").await.is_none());
}

#[tokio::test]
async fn an_expired_claim_lets_the_event_apply_again() {
    let env = env().await;
    let m = stored_meeting(&env, "whereby-room").await;
    let counts = &env.stores.client_count_events;
    let short = EventClaim {
        ttl: Duration::from_secs(10),
        ..claim("e-1", at(1))
    };
    counts.set_clients(short, &m.id, 1, at(1)).await.unwrap();
    let later = counts
        .set_clients(claim("e-1", at(11)), &m.id, 2, at(11))
        .await
        .unwrap();
    assert_eq!(later, CountWrite::Written);
    assert_eq!(num_clients(&env, &m.id).await, 2);
}

#[tokio::test]
async fn claims_of_the_lease_pipeline_keep_working() {
    let env = env().await;
    let m = stored_meeting(&env, "whereby-room").await;
    let counts = &env.stores.client_count_events;
    let events = &env.stores.webhook_events;
    let taken = |lease: EventLease| match lease {
        EventLease::Taken { token } => token,
        other => panic!("lease not taken: {other:?}"),
    };

    // Completed by an earlier deployment: a duplicate.
    let token = taken(events.claim(claim("done", at(1))).await.unwrap());
    assert!(events.complete(claim("done", at(1)), &token).await.unwrap());
    // A live lease of a delivery still running in an earlier deployment: a duplicate too, as
    // for Daily's participant events (that delivery writes the count).
    taken(events.claim(claim("running", at(1))).await.unwrap());
    // A lease whose delivery died: taken over and applied.
    taken(events.claim(claim("died", at(1))).await.unwrap());
    env.ops();

    for id in ["done", "running"] {
        let dup = counts
            .set_clients(claim(id, at(30)), &m.id, 9, at(30))
            .await
            .unwrap();
        assert_eq!(dup, CountWrite::Duplicate, "{id}");
        assert_eq!(env.ops(), ["TransactWriteItems"]);
    }
    assert_eq!(num_clients(&env, &m.id).await, 0);

    let after_lease = at(1) + chrono::Duration::seconds(61);
    let applied = counts
        .set_clients(claim("died", after_lease), &m.id, 2, at(2))
        .await
        .unwrap();
    assert_eq!(applied, CountWrite::Written);
    assert_eq!(num_clients(&env, &m.id).await, 2);
    let item = claim_item(&env, "died").await.unwrap();
    assert_eq!(item["claim_state"], AttributeValue::S("COMPLETED".into()));
    assert!(!item.contains_key("lease_token"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_deliveries_of_one_event_apply_it_once() {
    let env = env().await;
    let m = stored_meeting(&env, "whereby-room").await;
    let counts = Arc::new(env.stores.client_count_events.clone());
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let counts = counts.clone();
            let meeting_id = m.id.clone();
            tokio::spawn(async move {
                counts
                    .set_clients(claim("once", at(5)), &meeting_id, 3, at(5))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let written = results
        .iter()
        .filter(|r| **r == CountWrite::Written)
        .count();
    let duplicates = results
        .iter()
        .filter(|r| **r == CountWrite::Duplicate)
        .count();
    assert_eq!((written, duplicates), (1, 9), "{results:?}");
    assert_eq!(num_clients(&env, &m.id).await, 3);
}
