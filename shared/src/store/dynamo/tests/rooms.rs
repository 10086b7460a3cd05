use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;

use super::{at, env, room};
use crate::domain::{RecordingType, RoomName};
use crate::store::{conflict, RoomCursor, RoomPatch, RoomStore, StoreError};

#[tokio::test]
async fn created_room_is_found_by_id_and_by_name_in_one_request_each() {
    let env = env().await;
    let rooms = &env.stores.rooms;
    let r = room("standup", Some("alice"), at(0));

    rooms.create(&r).await.unwrap();
    assert_eq!(env.ops(), ["TransactWriteItems"]);

    assert_eq!(rooms.get(&r.id).await.unwrap(), Some(r.clone()));
    assert_eq!(env.ops(), ["GetItem"]);
    assert_eq!(rooms.get_by_name("standup").await.unwrap(), Some(r.clone()));
    assert_eq!(env.ops(), ["GetItem"]);
    assert_eq!(rooms.get_by_name("nobody").await.unwrap(), None);
    assert_eq!(rooms.get("missing").await.unwrap(), None);
}

#[tokio::test]
async fn creating_a_taken_name_is_a_name_conflict_and_stores_nothing() {
    let env = env().await;
    let rooms = &env.stores.rooms;
    rooms
        .create(&room("standup", Some("alice"), at(0)))
        .await
        .unwrap();
    let second = room("standup", Some("bob"), at(1));
    env.ops();

    let err = rooms.create(&second).await.unwrap_err();
    assert!(err.is_conflict(conflict::ROOM_NAME_TAKEN), "{err:?}");
    assert_eq!(env.ops(), ["TransactWriteItems"]);
    assert_eq!(rooms.get(&second.id).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_creates_of_one_name_have_exactly_one_winner() {
    let env = env().await;
    let rooms = Arc::new(env.stores.rooms.clone());
    let candidates: Vec<_> = (0..50)
        .map(|i| room("contested", Some(&format!("user{i}")), at(i)))
        .collect();
    let tasks: Vec<_> = candidates
        .iter()
        .cloned()
        .map(|r| {
            let rooms = rooms.clone();
            tokio::spawn(async move { rooms.create(&r).await.map(|_| r.id) })
        })
        .collect();
    let mut winners = Vec::new();
    let mut conflicts = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(id) => winners.push(id),
            Err(e) if e.is_conflict(conflict::ROOM_NAME_TAKEN) => conflicts += 1,
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    assert_eq!(winners.len(), 1);
    assert_eq!(conflicts, 49);
    let stored = rooms.get_by_name("contested").await.unwrap().unwrap();
    assert_eq!(stored.id, winners[0]);
    for r in &candidates {
        let found = rooms.get(&r.id).await.unwrap();
        assert_eq!(found.is_some(), r.id == winners[0], "room {}", r.id);
    }
}

#[tokio::test]
async fn listing_shows_own_and_shared_rooms_newest_first_in_pages_without_markers() {
    let env = env().await;
    let rooms = &env.stores.rooms;
    let a1 = room("a-one", Some("alice"), at(10));
    let a2 = room("a-two", Some("alice"), at(20));
    let mut a3 = room("a-three", Some("alice"), at(30));
    a3.is_shared = true;
    let mut b_shared = room("b-shared", Some("bob"), at(25));
    b_shared.is_shared = true;
    let b_private = room("b-private", Some("bob"), at(40));
    let anon = room("anon-room", None, at(5));
    for r in [&a1, &a2, &a3, &b_shared, &b_private, &anon] {
        rooms.create(r).await.unwrap();
    }
    env.ops();

    let page1 = rooms
        .list_for_user(Some("alice"), &RoomCursor::start(), 0, 3)
        .await
        .unwrap();
    assert_eq!(env.ops(), ["Query", "Query"]);
    assert_eq!(page1.total, None, "unknown until the last page");
    let ids: Vec<_> = page1.items.iter().map(|r| r.id.clone()).collect();
    assert_eq!(ids, [a3.id.clone(), b_shared.id.clone(), a2.id.clone()]);
    let page2 = rooms
        .list_for_user(Some("alice"), &RoomCursor::start(), 3, 3)
        .await
        .unwrap();
    assert_eq!(page2.items, vec![a1.clone()]);
    assert_eq!(page2.total, Some(4));
    assert_eq!(page2.next, None);
    assert!(rooms
        .list_for_user(Some("alice"), &RoomCursor::start(), 6, 3)
        .await
        .unwrap()
        .items
        .is_empty());

    let bob = rooms
        .list_for_user(Some("bob"), &RoomCursor::start(), 0, 10)
        .await
        .unwrap();
    let ids: Vec<_> = bob.items.iter().map(|r| r.id.clone()).collect();
    assert_eq!(
        ids,
        [b_private.id.clone(), a3.id.clone(), b_shared.id.clone()]
    );

    // Anonymous callers own nothing (not even the anonymous rooms): the shared rooms, in one
    // request.
    env.ops();
    let anonymous = rooms
        .list_for_user(None, &RoomCursor::start(), 0, 10)
        .await
        .unwrap();
    assert_eq!(env.ops(), ["Query"]);
    let ids: Vec<_> = anonymous.items.iter().map(|r| r.id.clone()).collect();
    assert_eq!(ids, [a3.id.clone(), b_shared.id.clone()]);
    assert!(!ids.contains(&anon.id));
}

#[tokio::test]
async fn paging_by_cursor_reads_one_limited_page_per_stream_and_returns_every_room_once() {
    let env = env().await;
    let rooms = &env.stores.rooms;
    // 12 of alice's (every third shared), 5 of bob's shared, 6 of bob's private, interleaved
    // in time; some at the same second on both sides.
    let mut visible = Vec::new();
    for i in 0..12 {
        let mut r = room(&format!("alice-{i}"), Some("alice"), at(i * 10));
        r.is_shared = i % 3 == 0;
        visible.push(r);
    }
    for i in 0..5 {
        let mut r = room(&format!("bob-shared-{i}"), Some("bob"), at(i * 20 + 5));
        if i == 2 {
            r.created_at = at(40);
        }
        r.is_shared = true;
        visible.push(r);
    }
    let hidden: Vec<_> = (0..6)
        .map(|i| room(&format!("bob-private-{i}"), Some("bob"), at(i * 7)))
        .collect();
    for r in visible.iter().chain(&hidden) {
        rooms.create(r).await.unwrap();
    }
    env.ops();
    env.counter.take_queries();

    let size = 4;
    let mut seen = Vec::new();
    let mut cursor = RoomCursor::start();
    let mut pages = 0;
    loop {
        let page = rooms
            .list_for_user(Some("alice"), &cursor, 0, size)
            .await
            .unwrap();
        pages += 1;
        let queries = env.counter.take_queries();
        assert!(queries.len() <= 2, "page {pages}: {queries:?}");
        assert_eq!(env.ops().len(), queries.len(), "only Queries");
        for q in &queries {
            assert_eq!(q.limit, Some(size as i32 + 1), "page {pages}: {q:?}");
            if pages == 1 {
                assert!(!q.continued, "{q:?}");
            }
        }
        assert!(page.items.len() <= size as usize);
        seen.extend(page.items.iter().map(|r| r.id.clone()));
        match page.next {
            Some(next) => cursor = RoomCursor::decode(&next.encode()).unwrap(),
            None => break,
        }
        assert!(pages < 20, "the listing never ends");
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "a room came twice: {seen:?}");
    assert_eq!(seen.len(), visible.len());
    let times: Vec<_> = seen
        .iter()
        .map(|id| visible.iter().find(|r| &r.id == id).unwrap().created_at)
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
    assert_eq!(pages, visible.len().div_ceil(size as usize));
}

#[tokio::test]
async fn owner_update_patches_fields_and_name_lookup_sees_the_change() {
    let env = env().await;
    let rooms = &env.stores.rooms;
    let r = room("standup", Some("alice"), at(0));
    rooms.create(&r).await.unwrap();
    env.ops();

    let patch = RoomPatch {
        zulip_stream: Some("eng".into()),
        is_locked: Some(true),
        recording_type: Some(RecordingType::Local),
        is_shared: Some(true),
        ..RoomPatch::default()
    };
    let updated = rooms.update(&r.id, Some("alice"), &patch).await.unwrap();
    assert_eq!(env.ops(), ["GetItem", "TransactWriteItems"]);
    assert_eq!(updated.zulip_stream, "eng");
    assert!(updated.is_locked && updated.is_shared);
    assert_eq!(updated.recording_type, RecordingType::Local);
    assert_eq!(rooms.get(&r.id).await.unwrap(), Some(updated.clone()));
    assert_eq!(
        rooms.get_by_name("standup").await.unwrap(),
        Some(updated.clone())
    );
    // Now shared, so bob lists it.
    let bob = rooms
        .list_for_user(Some("bob"), &RoomCursor::start(), 0, 10)
        .await
        .unwrap();
    assert_eq!(bob.items, vec![updated]);
}

#[tokio::test]
async fn empty_patch_changes_nothing_in_one_request() {
    let env = env().await;
    let rooms = &env.stores.rooms;
    let r = room("standup", None, at(0));
    rooms.create(&r).await.unwrap();
    env.ops();
    let same = rooms
        .update(&r.id, None, &RoomPatch::default())
        .await
        .unwrap();
    assert_eq!(same, r);
    assert_eq!(env.ops(), ["GetItem"]);
}

#[tokio::test]
async fn rename_moves_the_name_and_frees_the_old_one() {
    let env = env().await;
    let rooms = &env.stores.rooms;
    let r = room("old-name", Some("alice"), at(0));
    rooms.create(&r).await.unwrap();
    env.ops();

    let patch = RoomPatch {
        name: Some(RoomName::parse("new-name").unwrap()),
        ..RoomPatch::default()
    };
    let renamed = rooms.update(&r.id, Some("alice"), &patch).await.unwrap();
    assert_eq!(env.ops(), ["GetItem", "TransactWriteItems"]);
    assert_eq!(renamed.name.as_str(), "new-name");
    assert_eq!(rooms.get_by_name("new-name").await.unwrap(), Some(renamed));
    assert_eq!(rooms.get_by_name("old-name").await.unwrap(), None);
    rooms
        .create(&room("old-name", Some("bob"), at(1)))
        .await
        .unwrap();
}

#[tokio::test]
async fn rename_to_a_taken_name_is_a_name_conflict_and_changes_nothing() {
    let env = env().await;
    let rooms = &env.stores.rooms;
    let a = room("alpha", Some("alice"), at(0));
    let b = room("beta", Some("alice"), at(1));
    rooms.create(&a).await.unwrap();
    rooms.create(&b).await.unwrap();
    let patch = RoomPatch {
        name: Some(RoomName::parse("beta").unwrap()),
        is_locked: Some(true),
        ..RoomPatch::default()
    };
    let err = rooms
        .update(&a.id, Some("alice"), &patch)
        .await
        .unwrap_err();
    assert!(err.is_conflict(conflict::ROOM_NAME_TAKEN), "{err:?}");
    assert_eq!(rooms.get(&a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(rooms.get_by_name("alpha").await.unwrap(), Some(a));
    assert_eq!(rooms.get_by_name("beta").await.unwrap(), Some(b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_renames_to_one_name_have_exactly_one_winner() {
    let env = env().await;
    let rooms = Arc::new(env.stores.rooms.clone());
    let mut ids = Vec::new();
    for i in 0..10 {
        let r = room(&format!("room-{i}"), Some("alice"), at(i));
        rooms.create(&r).await.unwrap();
        ids.push(r.id);
    }
    let patch = RoomPatch {
        name: Some(RoomName::parse("the-one").unwrap()),
        ..RoomPatch::default()
    };
    let tasks: Vec<_> = ids
        .iter()
        .cloned()
        .map(|id| {
            let (rooms, patch) = (rooms.clone(), patch.clone());
            tokio::spawn(async move { rooms.update(&id, Some("alice"), &patch).await })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(room) => winners.push(room),
            Err(e) => assert!(e.is_conflict(conflict::ROOM_NAME_TAKEN), "{e:?}"),
        }
    }
    assert_eq!(winners.len(), 1);
    let holder = rooms.get_by_name("the-one").await.unwrap().unwrap();
    assert_eq!(holder.id, winners[0].id);
    let page = rooms
        .list_for_user(Some("alice"), &RoomCursor::start(), 0, 20)
        .await
        .unwrap();
    assert_eq!(page.total, Some(10));
    assert_eq!(
        page.items
            .iter()
            .filter(|r| r.name.as_str() == "the-one")
            .count(),
        1
    );
}

#[tokio::test]
async fn only_the_owner_may_update_or_delete() {
    let env = env().await;
    let rooms = &env.stores.rooms;
    let r = room("private", Some("alice"), at(0));
    let anon = room("anonymous", None, at(1));
    rooms.create(&r).await.unwrap();
    rooms.create(&anon).await.unwrap();
    env.ops();
    let patch = RoomPatch {
        is_locked: Some(true),
        ..RoomPatch::default()
    };

    for owner in [Some("bob"), None] {
        let err = rooms.update(&r.id, owner, &patch).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
        assert_eq!(env.ops(), ["GetItem"]);
        let err = rooms.delete(&r.id, owner).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
        assert_eq!(env.ops(), ["GetItem"]);
    }
    // A signed-in user does not own anonymous rooms.
    let err = rooms
        .update(&anon.id, Some("alice"), &patch)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    assert_eq!(rooms.get(&r.id).await.unwrap(), Some(r));
    assert_eq!(rooms.get(&anon.id).await.unwrap(), Some(anon.clone()));
    assert!(
        rooms
            .update(&anon.id, None, &patch)
            .await
            .unwrap()
            .is_locked
    );
    let err = rooms
        .update("missing", Some("alice"), &patch)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn delete_removes_the_room_and_frees_its_name() {
    let env = env().await;
    let rooms = &env.stores.rooms;
    let r = room("doomed", Some("alice"), at(0));
    rooms.create(&r).await.unwrap();
    env.ops();

    rooms.delete(&r.id, Some("alice")).await.unwrap();
    assert_eq!(env.ops(), ["GetItem", "TransactWriteItems"]);
    assert_eq!(rooms.get(&r.id).await.unwrap(), None);
    assert_eq!(rooms.get_by_name("doomed").await.unwrap(), None);
    assert_eq!(
        rooms
            .list_for_user(Some("alice"), &RoomCursor::start(), 0, 10)
            .await
            .unwrap()
            .total,
        Some(0)
    );
    rooms
        .create(&room("doomed", Some("bob"), at(1)))
        .await
        .unwrap();
    let err = rooms.delete(&r.id, Some("alice")).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn a_malformed_stored_room_is_corrupt_not_a_panic() {
    let env = env().await;
    env.raw
        .put_item()
        .table_name(&env.tables.rooms)
        .item("pk", AttributeValue::S("room#bad".into()))
        .item("id", AttributeValue::S("bad".into()))
        .item("name", AttributeValue::S("Not A Valid Name".into()))
        .send()
        .await
        .unwrap();
    let err = env.stores.rooms.get("bad").await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt { entity: "room", id, .. } if id == "bad"),
        "{err:?}"
    );
}

#[tokio::test]
async fn skip_consent_round_trips_through_create_patch_and_name_lookup() {
    let env = env().await;
    let rooms = &env.stores.rooms;
    let mut r = room("consentless", Some("alice"), at(0));
    r.skip_consent = true;
    rooms.create(&r).await.unwrap();
    assert_eq!(rooms.get(&r.id).await.unwrap(), Some(r.clone()));
    assert!(
        rooms
            .get_by_name("consentless")
            .await
            .unwrap()
            .unwrap()
            .skip_consent
    );

    let patch = RoomPatch {
        skip_consent: Some(false),
        ..RoomPatch::default()
    };
    let updated = rooms.update(&r.id, Some("alice"), &patch).await.unwrap();
    assert!(!updated.skip_consent);
    assert!(!rooms.get(&r.id).await.unwrap().unwrap().skip_consent);
    assert!(
        !rooms
            .get_by_name("consentless")
            .await
            .unwrap()
            .unwrap()
            .skip_consent
    );
}

#[tokio::test]
async fn a_room_stored_before_skip_consent_existed_reads_as_false() {
    let env = env().await;
    let rooms = &env.stores.rooms;
    let mut r = room("older", Some("alice"), at(0));
    r.skip_consent = true;
    rooms.create(&r).await.unwrap();
    // Strip the attribute, as on items written by the previous version.
    for pk in [format!("room#{}", r.id), "name#older".to_owned()] {
        env.raw
            .update_item()
            .table_name(&env.tables.rooms)
            .key("pk", AttributeValue::S(pk))
            .update_expression("REMOVE skip_consent")
            .send()
            .await
            .unwrap();
    }
    assert!(!rooms.get(&r.id).await.unwrap().unwrap().skip_consent);
    assert!(
        !rooms
            .get_by_name("older")
            .await
            .unwrap()
            .unwrap()
            .skip_consent
    );
}

#[tokio::test]
async fn list_all_returns_every_room_of_every_owner_newest_first_without_name_markers() {
    let env = env().await;
    let rooms = &env.stores.rooms;
    let a = room("alpha", Some("alice"), at(0));
    let b = room("beta", None, at(1));
    let c = room("gamma", Some("bob"), at(2));
    for r in [&a, &b, &c] {
        rooms.create(r).await.unwrap();
    }
    env.ops();
    let all = rooms.list_all().await.unwrap();
    assert_eq!(all, vec![c, b, a]);
    assert_eq!(env.ops(), ["Scan"]);
}
