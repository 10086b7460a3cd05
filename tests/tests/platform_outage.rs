//! Fault: the video platform answers 500 to every call for a while, then recovers. Black-box,
//! through the local stack, the emulator and the fake Daily API.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};
use shared::store::MeetingStore;
use wiremock::ResponseTemplate;

use reflector_tests::platforms::{Outage, PlatformFakes};
use support::{fixture, ok, Stack};

/// What the platform says while it is down; it must never reach a caller.
const OUTAGE_TEXT: &str = "upstream shard 7 on fire";

/// Names of the Daily rooms asked for (`POST /rooms`) among `requests`.
fn rooms_asked(requests: &[wiremock::Request]) -> Vec<String> {
    requests
        .iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path() == "/v1/rooms")
        .map(|r| {
            let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
            body["name"].as_str().unwrap_or_default().to_owned()
        })
        .collect()
}

#[tokio::test]
async fn during_a_platform_outage_creation_is_502_stores_and_leaks_nothing_and_webhooks_answer() {
    let fakes = PlatformFakes::start().await;
    let vars: Vec<(String, String)> = fakes
        .vars()
        .into_iter()
        .chain([
            ("DAILY_MIGRATION_ENABLED".to_owned(), "true".to_owned()),
            ("DEFAULT_VIDEO_PLATFORM".to_owned(), "daily".to_owned()),
        ])
        .collect();
    let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let s = Stack::start("platform_outage", &pairs, false, Duration::from_secs(1)).await;

    // A meeting made before the outage, whose webhooks keep coming during it.
    let steady = s.meeting("steady").await;
    let (status, room) = s
        .post(
            "/v1/rooms",
            &[],
            json!({"name": "outage"}).to_string().as_bytes(),
        )
        .await;
    assert_eq!(status, 200, "{room}");
    let room_id = room["id"].as_str().unwrap().to_owned();
    let before = fakes.daily.received_requests().await.unwrap().len();

    // The outage: every Daily API call answers 500, ahead of the fake's own answers.
    let outage = Outage::mount(
        &fakes.daily,
        ResponseTemplate::new(500)
            .set_body_json(json!({"error": "server-error", "info": OUTAGE_TEXT})),
    )
    .await;
    outage.begin();
    for attempt in 0..2 {
        let (status, body) = s.meeting_json("outage").await;
        assert_eq!(
            (status, &body),
            (
                502,
                &json!({"detail": "Daily could not create the room; try again"})
            ),
            "attempt {attempt}"
        );
        assert!(!body.to_string().contains(OUTAGE_TEXT));
    }
    // The webhooks do not depend on the platform's API: they answer as always.
    let join = fixture(
        "daily/real/participant.joined.json",
        &steady.room_name,
        None,
    );
    assert_eq!(s.daily(&join).await, ok());
    assert_eq!(s.num_clients(&steady).await, 1);
    let leave = fixture("daily/real/participant.left.json", &steady.room_name, None);
    assert_eq!(s.daily(&leave).await, ok());
    assert_eq!(s.num_clients(&steady).await, 0);
    let during = fakes.daily.received_requests().await.unwrap()[before..].to_vec();
    outage.end();

    // Nothing stored: no active meeting, and no meeting for any room asked for.
    let asked = rooms_asked(&during);
    assert!(!asked.is_empty(), "the creations reached Daily");
    assert_eq!(
        s.stores
            .meetings
            .get_active_for_room(&room_id, chrono::Utc::now())
            .await
            .unwrap(),
        None
    );
    for name in &asked {
        assert_eq!(
            s.stores.meetings.get_by_room_name(name).await.unwrap(),
            None,
            "{name}"
        );
    }
    // Nothing leaked: Daily made nothing (it answered 500), and every room asked for was
    // deleted all the same, since a 500 may hide a room that was made.
    let deleted: BTreeSet<String> = during
        .iter()
        .filter(|r| r.method.as_str() == "DELETE")
        .map(|r| r.url.path().trim_start_matches("/v1/rooms/").to_owned())
        .collect();
    assert_eq!(
        deleted,
        asked.iter().cloned().collect::<BTreeSet<_>>(),
        "each room asked for during the outage was deleted"
    );

    // Recovery: the next creation succeeds, and Daily holds exactly the two meetings' rooms.
    let (status, recovered) = s.meeting_json("outage").await;
    assert_eq!(status, 200, "{recovered}");
    assert_eq!(recovered["platform"], "daily");
    let stored = s
        .stores
        .meetings
        .get_active_for_room(&room_id, chrono::Utc::now())
        .await
        .unwrap()
        .expect("the recovered meeting is stored");
    assert_eq!(json!(stored.id), recovered["id"]);
    assert_eq!(
        fakes.live_daily_rooms().await,
        BTreeSet::from([
            steady.room_name.clone(),
            recovered["room_name"].as_str().unwrap().to_owned()
        ])
    );
    s.stop().await;
}
