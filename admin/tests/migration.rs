//! The migration as an operator runs it: `reflector-admin` beside a running local stack (the
//! emulator, fake Daily and Whereby). Nothing is restarted between steps; the stack caches the
//! flags for one second.

mod support;

use reqwest::Method;
use serde_json::Value;

use support::Stack;

#[tokio::test]
async fn moving_one_room_to_daily_then_rolling_back_needs_no_restart() {
    let s = Stack::start("admin_migrate").await;
    let r1 = s.create_room("r1").await;
    s.create_room("r2").await;

    let on = s
        .admin(&["--by", "ops", "flags", "set", "--migration", "on"])
        .await;
    assert_eq!(on.code, 0, "{on:?}");
    let moved = s
        .admin(&[
            "--json", "--by", "ops", "rooms", "migrate", "r1", "--to", "daily",
        ])
        .await
        .json();
    assert_eq!(moved["changed"], true);
    assert_eq!(moved["rooms"][0]["id"], r1["id"]);
    assert_eq!(moved["rooms"][0]["platform"], "daily");

    // Within the cache time, r1's next meeting is on Daily; r2 stays on the default.
    s.wait_for_platform("r1", "daily").await;
    let daily_meeting = s.meeting("r1").await;
    assert_eq!(daily_meeting["platform"], "daily", "{daily_meeting}");
    assert!(daily_meeting["room_url"]
        .as_str()
        .unwrap()
        .starts_with("https://fake.daily.co/"));
    let r2_meeting = s.meeting("r2").await;
    assert_eq!(r2_meeting["platform"], "whereby", "{r2_meeting}");

    let listed = s.admin(&["--json", "rooms", "list"]).await.json();
    let by_name = |name: &str| -> Value {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} missing from {listed}"))
    };
    assert_eq!(by_name("r1")["platform"], "daily");
    assert_eq!(by_name("r1")["active_meeting"]["id"], daily_meeting["id"]);
    assert_eq!(by_name("r2")["platform"], "whereby");

    // Rollback: r1 is named as moving back; r2 never left Whereby.
    let rollback = s.admin(&["--json", "--by", "ops", "rollback"]).await.json();
    assert_eq!(rollback["changed"], true);
    let moving: Vec<&str> = rollback["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(moving, ["r1"]);
    assert_eq!(rollback["rooms"][0]["from"], "daily");
    assert_eq!(
        rollback["rooms"][0]["active_meeting"]["id"],
        daily_meeting["id"]
    );

    // The room shows Whereby for its next meeting, while its active Daily meeting keeps
    // working: the same meeting is answered, and joining it gets a Daily meeting token.
    s.wait_for_platform("r1", "whereby").await;
    let again = s.meeting("r1").await;
    assert_eq!(again["id"], daily_meeting["id"]);
    assert_eq!(again["platform"], "daily");
    let url = s.join("r1", daily_meeting["id"].as_str().unwrap()).await;
    assert!(url.contains("?t="), "{url}");

    // Once it ends, the next meeting is on Whereby.
    let id = daily_meeting["id"].as_str().unwrap();
    let ended = s.admin(&["meeting", "end", id]).await;
    assert_eq!(ended.code, 0, "{ended:?}");
    let daily_room = daily_meeting["room_name"].as_str().unwrap();
    assert!(
        !s.fakes.live_daily_rooms().await.contains(daily_room),
        "the Daily room of the ended meeting was not deleted"
    );
    let (status, _) = s
        .call(
            Method::POST,
            &format!("/v1/rooms/r1/meetings/{id}/join"),
            None,
        )
        .await;
    assert_eq!(status, 400, "an ended meeting cannot be joined");
    let next = s.meeting("r1").await;
    assert_ne!(next["id"], daily_meeting["id"]);
    assert_eq!(next["platform"], "whereby", "{next}");

    // Every change is in the history, by whom.
    let shown = s.admin(&["--json", "flags", "show"]).await.json();
    assert_eq!(shown["source"], "stored");
    assert_eq!(shown["flags"]["daily_migration_enabled"], false);
    assert_eq!(
        shown["flags"]["daily_migration_room_ids"],
        serde_json::json!([r1["id"]])
    );
    let whats: Vec<&str> = shown["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["what"].as_str().unwrap())
        .collect();
    assert_eq!(whats.len(), 3, "{whats:?}");
    assert!(whats[0].starts_with("daily_migration_enabled: false -> true"));
    assert!(whats[1].contains(&format!("+{}", r1["id"].as_str().unwrap())));
    assert!(whats[2].starts_with("daily_migration_enabled: true -> false"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_sets_of_different_flags_are_both_in_the_history() {
    let s = Stack::start("admin_two_sets").await;
    // Two processes at once, each a read and a conditional write: whichever writes second
    // finds the version changed, reads again and applies its own change on top.
    let (a, b) = tokio::join!(
        s.admin(&["--by", "alice", "flags", "set", "--migration", "on"]),
        s.admin(&["--by", "bob", "flags", "set", "--default", "daily"]),
    );
    for r in [&a, &b] {
        assert_eq!(r.code, 0, "{r:?}");
    }
    let shown = s.admin(&["--json", "flags", "show"]).await.json();
    let mut by: Vec<&str> = shown["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["by"].as_str().unwrap())
        .collect();
    by.sort();
    assert_eq!(by, ["alice", "bob"]);
    assert_eq!(shown["version"], 2);
    assert_eq!(shown["flags"]["daily_migration_enabled"], true);
    assert_eq!(shown["flags"]["default_video_platform"], "daily");
    s.stop().await;
}

#[tokio::test]
async fn an_unknown_room_is_named_and_nothing_is_changed() {
    let s = Stack::start("admin_unknown").await;
    s.create_room("r1").await;
    let run = s
        .admin(&["rooms", "migrate", "r1", "no-such-room", "--to", "daily"])
        .await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("no-such-room"), "{}", run.stderr);
    let shown = s.admin(&["--json", "flags", "show"]).await.json();
    assert_eq!(shown["source"], "environment");
    assert_eq!(shown["history"], serde_json::json!([]));

    let run = s
        .admin(&["meeting", "create", "no-such-room", "--platform", "mock"])
        .await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("no-such-room"), "{}", run.stderr);
    let run = s.admin(&["meeting", "end", "no-such-meeting"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("no-such-meeting"), "{}", run.stderr);
    let run = s.admin(&["rooms", "migrate", "r1", "--to", "zoom"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    s.stop().await;
}

#[tokio::test]
async fn meeting_create_opens_a_meeting_on_the_chosen_platform_whatever_the_flags() {
    let s = Stack::start("admin_meeting").await;
    s.create_room("r1").await;
    let created = s
        .admin(&["--json", "meeting", "create", "r1", "--platform", "daily"])
        .await
        .json();
    assert_eq!(created["platform"], "daily");
    // The API answers it as the room's meeting (the flags say Whereby).
    let m = s.meeting("r1").await;
    assert_eq!(m["id"], created["id"]);
    assert_eq!(m["platform"], "daily");
    let again = s
        .admin(&["meeting", "create", "r1", "--platform", "whereby"])
        .await;
    assert_eq!(again.code, 1, "{again:?}");
    assert!(
        again.stderr.contains("already has an active meeting"),
        "{}",
        again.stderr
    );
    s.stop().await;
}
