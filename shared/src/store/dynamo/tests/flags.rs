use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use super::{at, env};
use crate::config::Flags;
use crate::domain::Platform;
use crate::flags::{
    change_flags, CachedFlags, ChangeOutcome, FlagChange, FlagSource, FlagStore, StoredFlags,
};
use crate::store::conflict;

fn stored(version: u64, ids: &[&str]) -> StoredFlags {
    StoredFlags {
        flags: Flags {
            daily_migration_enabled: true,
            daily_migration_room_ids: ids.iter().map(|s| (*s).to_owned()).collect(),
            default_video_platform: Platform::Daily,
        },
        version,
        history: vec![FlagChange {
            version,
            at: at(0),
            by: "ops".into(),
            what: "daily_migration_enabled: false -> true".into(),
        }],
    }
}

#[tokio::test]
async fn stored_flags_round_trip_in_one_request_each_way() {
    let env = env().await;
    let store = &env.stores.flags;
    assert_eq!(store.load(true).await.unwrap(), None);
    assert_eq!(env.ops(), ["GetItem"]);
    for ids in [&["r1", "r2"][..], &[][..]] {
        let item = stored(1, ids);
        let expected = store.load(true).await.unwrap().map(|s| s.version);
        let item = StoredFlags {
            version: expected.map_or(1, |v| v + 1),
            ..item
        };
        env.ops();
        store.save(&item, expected).await.unwrap();
        assert_eq!(env.ops(), ["PutItem"]);
        // An empty room list (no string set stored) reads back empty.
        assert_eq!(store.load(false).await.unwrap(), Some(item));
        assert_eq!(env.ops(), ["GetItem"]);
    }
}

#[tokio::test]
async fn a_save_on_a_stale_version_is_a_conflict_and_writes_nothing() {
    let env = env().await;
    let store = &env.stores.flags;
    store.save(&stored(1, &["r1"]), None).await.unwrap();
    // Nothing stored was expected, but something is.
    let err = store.save(&stored(1, &["x"]), None).await.unwrap_err();
    assert!(err.is_conflict(conflict::CHANGED_CONCURRENTLY), "{err:?}");
    // Version 1 is stored; a writer that read nothing or version 0 loses.
    let err = store.save(&stored(2, &["y"]), Some(0)).await.unwrap_err();
    assert!(err.is_conflict(conflict::CHANGED_CONCURRENTLY), "{err:?}");
    assert_eq!(
        store
            .load(true)
            .await
            .unwrap()
            .unwrap()
            .flags
            .daily_migration_room_ids,
        BTreeSet::from(["r1".to_owned()])
    );
    store.save(&stored(2, &["z"]), Some(1)).await.unwrap();
    assert_eq!(store.load(true).await.unwrap().unwrap().version, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_changes_all_land_and_all_are_in_the_history() {
    let env = env().await;
    let store = Arc::new(env.stores.flags.clone());
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                change_flags(
                    store.as_ref(),
                    &Flags::default(),
                    &format!("op{i}"),
                    chrono::Utc::now,
                    |f| {
                        let mut next = f.clone();
                        next.daily_migration_room_ids.insert(format!("room-{i}"));
                        next
                    },
                )
                .await
                .unwrap()
            })
        })
        .collect();
    for t in tasks {
        assert!(matches!(t.await.unwrap(), ChangeOutcome::Changed { .. }));
    }
    let item = store.load(true).await.unwrap().unwrap();
    assert_eq!(item.version, 8);
    assert_eq!(
        item.flags.daily_migration_room_ids,
        (0..8).map(|i| format!("room-{i}")).collect::<BTreeSet<_>>()
    );
    let versions: Vec<u64> = item.history.iter().map(|c| c.version).collect();
    assert_eq!(versions, (1..=8).collect::<Vec<_>>());
    let by: BTreeSet<&str> = item.history.iter().map(|c| c.by.as_str()).collect();
    assert_eq!(by.len(), 8, "{by:?}");
}

#[tokio::test]
async fn the_cached_source_reads_once_per_ttl_and_nothing_while_warm() {
    let env = env().await;
    env.stores
        .flags
        .save(&stored(1, &["r1"]), None)
        .await
        .unwrap();
    env.ops();
    let warm = CachedFlags::new(
        Arc::new(env.stores.flags.clone()),
        Flags::default(),
        Duration::from_secs(3600),
    );
    // Cold: one GetItem.
    assert!(warm.current().await.unwrap().daily_migration_enabled);
    assert_eq!(env.ops(), ["GetItem"]);
    // Warm: none.
    for _ in 0..5 {
        assert!(warm.current().await.unwrap().daily_migration_enabled);
    }
    assert_eq!(env.ops(), Vec::<String>::new());
}
