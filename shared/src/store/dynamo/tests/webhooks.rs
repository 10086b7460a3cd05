use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, TimeToLiveStatus};

use super::env;
use crate::domain::Platform;
use crate::store::WebhookEventStore;

const DAY: Duration = Duration::from_secs(86_400);

#[tokio::test]
async fn an_event_is_claimed_the_first_time_only_per_platform() {
    let env = env().await;
    let events = &env.stores.webhook_events;
    assert!(events.claim(Platform::Daily, "evt-1", DAY).await.unwrap());
    assert_eq!(env.ops(), ["PutItem"]);
    assert!(!events.claim(Platform::Daily, "evt-1", DAY).await.unwrap());
    assert_eq!(env.ops(), ["PutItem"]);
    // Same id from another platform is another event.
    assert!(events.claim(Platform::Whereby, "evt-1", DAY).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_claims_of_one_event_succeed_once() {
    let env = env().await;
    let events = Arc::new(env.stores.webhook_events.clone());
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let events = events.clone();
            tokio::spawn(async move { events.claim(Platform::Daily, "dup", DAY).await.unwrap() })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap());
    }
    assert_eq!(wins, 1);
}

#[tokio::test]
async fn claims_expire_by_ttl_attribute_even_before_dynamodb_deletes_them() {
    let env = env().await;
    let events = &env.stores.webhook_events;
    let before = chrono::Utc::now().timestamp();
    assert!(events.claim(Platform::Daily, "evt-1", DAY).await.unwrap());
    let item = env
        .raw
        .get_item()
        .table_name(&env.tables.webhook_events)
        .key("pk", AttributeValue::S("daily#evt-1".into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let AttributeValue::N(expires_at) = &item["expires_at"] else {
        panic!("expires_at is not a number: {item:?}");
    };
    let expires_at: i64 = expires_at.parse().unwrap();
    assert!((before + 86_400..=before + 86_402).contains(&expires_at));
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

    // A zero TTL expires at once: the next delivery may claim again.
    assert!(events
        .claim(Platform::Daily, "short", Duration::ZERO)
        .await
        .unwrap());
    assert!(events.claim(Platform::Daily, "short", DAY).await.unwrap());
    assert!(!events.claim(Platform::Daily, "short", DAY).await.unwrap());
}

#[tokio::test]
async fn a_released_event_can_be_claimed_again() {
    let env = env().await;
    let events = &env.stores.webhook_events;
    assert!(events.claim(Platform::Daily, "evt-1", DAY).await.unwrap());
    env.ops();
    events.release(Platform::Daily, "evt-1").await.unwrap();
    assert_eq!(env.ops(), ["DeleteItem"]);
    assert!(events.claim(Platform::Daily, "evt-1", DAY).await.unwrap());
    events
        .release(Platform::Daily, "never-claimed")
        .await
        .unwrap();
}
