use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, TimeToLiveStatus};
use chrono::{DateTime, Utc};

use super::{at, env, event_claim, webhook_event_item, Env};
use crate::domain::Platform;
use crate::store::{EventClaim, EventLease, WebhookEventStore};

fn claim(platform: Platform, event_id: &str, now: DateTime<Utc>) -> EventClaim<'_> {
    event_claim(platform, event_id, now)
}

fn daily(event_id: &str, now: DateTime<Utc>) -> EventClaim<'_> {
    claim(Platform::Daily, event_id, now)
}

async fn take(env: &Env, c: EventClaim<'_>) -> String {
    match env.stores.webhook_events.claim(c).await.unwrap() {
        EventLease::Taken { token } => token,
        other => panic!("lease not taken: {other:?}"),
    }
}

fn number(item: &std::collections::HashMap<String, AttributeValue>, name: &str) -> i64 {
    match &item[name] {
        AttributeValue::N(v) => v.parse().unwrap(),
        other => panic!("{name} is not a number: {other:?}"),
    }
}

#[tokio::test]
async fn a_lease_is_in_progress_until_completed_then_the_event_is_a_duplicate() {
    let env = env().await;
    let events = &env.stores.webhook_events;
    let token = take(&env, daily("evt-1", at(0))).await;
    assert_eq!(env.ops(), ["PutItem"]);
    let item = webhook_event_item(&env, "daily#evt-1").await.unwrap();
    assert_eq!(item["claim_state"], AttributeValue::S("IN_PROGRESS".into()));
    assert_eq!(number(&item, "expires_at"), at(60).timestamp());

    // Another delivery during the lease: told when it runs out, in one request.
    env.ops();
    assert_eq!(
        events.claim(daily("evt-1", at(5))).await.unwrap(),
        EventLease::InProgress { until: at(60) }
    );
    assert_eq!(env.ops(), ["PutItem"]);

    assert!(events
        .complete(daily("evt-1", at(1)), &token)
        .await
        .unwrap());
    assert_eq!(env.ops(), ["UpdateItem"]);
    let item = webhook_event_item(&env, "daily#evt-1").await.unwrap();
    assert_eq!(item["claim_state"], AttributeValue::S("COMPLETED".into()));
    assert_eq!(number(&item, "expires_at"), at(1).timestamp() + 86_400);
    assert!(!item.contains_key("lease_token"));

    // Long after the lease, within the dedupe window: a duplicate.
    assert_eq!(
        events.claim(daily("evt-1", at(3600))).await.unwrap(),
        EventLease::Completed
    );
    // Same id from another platform is another event.
    take(&env, claim(Platform::Whereby, "evt-1", at(0))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_claims_of_one_event_take_one_lease() {
    let env = env().await;
    let events = Arc::new(env.stores.webhook_events.clone());
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let events = events.clone();
            tokio::spawn(async move { events.claim(daily("dup", at(0))).await.unwrap() })
        })
        .collect();
    let mut taken = 0;
    for t in tasks {
        match t.await.unwrap() {
            EventLease::Taken { .. } => taken += 1,
            EventLease::InProgress { until } => assert_eq!(until, at(60)),
            EventLease::Completed => panic!("nothing completed the event"),
        }
    }
    assert_eq!(taken, 1);
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_and_the_late_delivery_cannot_complete_or_release_it() {
    let env = env().await;
    let events = &env.stores.webhook_events;
    // A delivery that died after its claim.
    let dead = take(&env, daily("evt-1", at(0))).await;
    // Its lease ran out: the platform's retry takes the event over.
    let retry = take(&env, daily("evt-1", at(61))).await;
    assert_ne!(dead, retry);
    // The first delivery, had it only been slow, neither completes nor gives back the retry's
    // lease (conditional on its own token).
    assert!(!events
        .complete(daily("evt-1", at(62)), &dead)
        .await
        .unwrap());
    events.release(daily("evt-1", at(62)), &dead).await.unwrap();
    assert_eq!(
        events.claim(daily("evt-1", at(62))).await.unwrap(),
        EventLease::InProgress { until: at(121) }
    );
    assert!(events
        .complete(daily("evt-1", at(63)), &retry)
        .await
        .unwrap());
    assert_eq!(
        events.claim(daily("evt-1", at(200))).await.unwrap(),
        EventLease::Completed
    );
}

#[tokio::test]
async fn a_released_lease_lets_the_retry_claim_at_once_and_a_completed_event_is_never_released() {
    let env = env().await;
    let events = &env.stores.webhook_events;
    let failed = take(&env, daily("evt-1", at(0))).await;
    events
        .release(daily("evt-1", at(1)), &failed)
        .await
        .unwrap();
    assert_eq!(env.ops().last().map(String::as_str), Some("DeleteItem"));
    assert!(webhook_event_item(&env, "daily#evt-1").await.is_none());
    let retry = take(&env, daily("evt-1", at(2))).await;
    assert!(events
        .complete(daily("evt-1", at(3)), &retry)
        .await
        .unwrap());
    // Releasing with the completed lease's own token changes nothing: completion removed it.
    events.release(daily("evt-1", at(4)), &retry).await.unwrap();
    assert_eq!(
        events.claim(daily("evt-1", at(5))).await.unwrap(),
        EventLease::Completed
    );
}

#[tokio::test]
async fn a_claim_written_before_leases_counts_as_completed() {
    let env = env().await;
    let expires = (Utc::now().timestamp() + 86_400).to_string();
    env.raw
        .put_item()
        .table_name(&env.tables.webhook_events)
        .item("pk", AttributeValue::S("daily#old".into()))
        .item("kind", AttributeValue::S("webhook_event".into()))
        .item("expires_at", AttributeValue::N(expires))
        .send()
        .await
        .unwrap();
    assert_eq!(
        env.stores
            .webhook_events
            .claim(daily("old", Utc::now()))
            .await
            .unwrap(),
        EventLease::Completed
    );
}

#[tokio::test]
async fn completed_claims_expire_by_ttl_attribute_even_before_dynamodb_deletes_them() {
    let env = env().await;
    let events = &env.stores.webhook_events;
    let ttl = env
        .raw
        .describe_time_to_live()
        .table_name(&env.tables.webhook_events)
        .send()
        .await
        .unwrap();
    let desc = ttl.time_to_live_description().unwrap();
    assert_eq!(desc.attribute_name(), Some("expires_at"));
    assert_eq!(desc.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));

    let short = EventClaim {
        ttl: Duration::from_secs(10),
        ..daily("short", at(0))
    };
    let token = take(&env, short).await;
    assert!(events.complete(short, &token).await.unwrap());
    assert_eq!(
        events.claim(daily("short", at(9))).await.unwrap(),
        EventLease::Completed
    );
    // Ten seconds later the event may be claimed again.
    take(&env, daily("short", at(10))).await;
}
