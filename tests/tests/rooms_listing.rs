//! The room listing reads one page, not every room (issue 15): through the HTTP API, with the
//! stack's own DynamoDB client counted, each page is at most two Queries (the caller's rooms,
//! the shared rooms), each with `Limit` = page size + 1, whatever the number of rooms; and
//! following `next_cursor` returns every visible room exactly once, newest first.

use std::collections::BTreeSet;

use reflector_tests::platforms::{user_token, TEST_PUBLIC_KEY};
use reflector_tests::{clients_for, config_with, emulator_endpoint, room, unique_prefix};
use serde_json::Value;
use shared::aws::AwsClients;
use shared::config::TableNames;
use shared::domain::Room;
use shared::store::dynamo::{DynamoStores, RequestCounter};
use shared::store::RoomStore;

/// `owner`'s room, created `minutes` after a fixed instant so the newest-first order is known.
fn room_of(name: &str, owner: &str, shared: bool, minutes: i64) -> Room {
    Room {
        user_id: Some(owner.to_owned()),
        created_at: chrono::DateTime::UNIX_EPOCH + chrono::Duration::minutes(1_000_000 + minutes),
        is_shared: shared,
        ..room(name)
    }
}

#[tokio::test]
async fn each_page_is_two_limited_queries_and_the_cursor_visits_every_room_once() {
    let endpoint = emulator_endpoint();
    let prefix = unique_prefix("rooms_listing");
    let aws = clients_for(&endpoint).await;
    let (counted, counter) = RequestCounter::instrument(&aws.dynamodb);
    let running = local::start(
        config_with(
            &prefix,
            &endpoint,
            &[
                ("AUTH_BACKEND", "jwt"),
                ("AUTH_JWT_PUBLIC_KEY", TEST_PUBLIC_KEY),
                ("FLAGS_CACHE_SECONDS", "3600"),
            ],
        ),
        AwsClients {
            dynamodb: counted,
            ..aws.clone()
        },
        local::Options {
            resource_prefix: prefix.clone(),
            background: false,
            ..Default::default()
        },
    )
    .await
    .expect("local stack starts");
    // Written with an uncounted client: alice's 30 rooms (a third shared), bob's 10 shared and
    // 15 private, interleaved in time.
    let stores = DynamoStores::new(aws.dynamodb.clone(), &TableNames::with_prefix(&prefix));
    let mut visible = BTreeSet::new();
    let mut all = Vec::new();
    for i in 0..30 {
        all.push(room_of(&format!("alice-{i}"), "alice", i % 3 == 0, i * 3));
    }
    for i in 0..10 {
        all.push(room_of(&format!("bob-shared-{i}"), "bob", true, i * 7 + 1));
    }
    for i in 0..15 {
        all.push(room_of(
            &format!("bob-private-{i}"),
            "bob",
            false,
            i * 5 + 2,
        ));
    }
    for r in &all {
        stores.rooms.create(r).await.unwrap();
        if r.is_shared || r.user_id.as_deref() == Some("alice") {
            visible.insert(r.id.clone());
        }
    }
    let http = reqwest::Client::new();
    let token = user_token("alice", 600);
    let get = |query: String| {
        let request = http
            .get(format!("http://{}/v1/rooms?{query}", running.addr))
            .bearer_auth(&token);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    // Warm the flags cache, so only the listing's own requests are counted below.
    assert_eq!(get("size=1".into()).await.0, 200);
    counter.take();
    counter.take_queries();

    let size = 7;
    let mut seen = Vec::new();
    let mut last_created = None;
    let mut query = format!("size={size}");
    let mut pages = 0;
    loop {
        let (status, page) = get(query.clone()).await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        let queries = counter.take_queries();
        let ops = counter.take();
        assert!(
            ops.iter().all(|op| op == "Query") && ops.len() <= 2,
            "page {pages}: {ops:?}"
        );
        assert_eq!(queries.len(), ops.len());
        for q in &queries {
            assert_eq!(q.limit, Some(size + 1), "page {pages}: {q:?}");
        }
        for item in page["items"].as_array().unwrap() {
            let created = item["created_at"].as_str().unwrap().to_owned();
            if let Some(prev) = &last_created {
                assert!(&created <= prev, "newest first: {created} after {prev}");
            }
            last_created = Some(created);
            seen.push(item["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("size={size}&cursor={cursor}"),
            None => break,
        }
        assert!(pages <= visible.len(), "the listing never ends");
    }
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no room twice");
    assert_eq!(unique, visible, "every visible room, and only those");
    assert_eq!(pages, visible.len().div_ceil(size as usize));

    // The page numbers of the original API see the same order; the last page knows the total.
    let (_, first) = get(format!("page=1&size={size}")).await;
    let first_ids: Vec<&str> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(first_ids, seen[..size as usize].to_vec());
    assert_eq!(first["total"], Value::Null);
    let (_, last) = get(format!("page={pages}&size={size}")).await;
    assert_eq!(last["total"], visible.len());
    assert_eq!(last["next_cursor"], Value::Null);
    eprintln!(
        "{} visible rooms of {}, pages of {size}: {pages} pages, at most 2 Queries each",
        visible.len(),
        all.len()
    );
    running.stop().await;
}
