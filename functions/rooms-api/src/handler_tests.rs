//! Handler tests over in-memory stores and the mock platform, driven by the `events/` fixtures
//! through the function's router, as `lambda_http` drives it in Lambda.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lambda_http::Request;
use serde_json::{json, Value};

use shared::config::{AuthConfig, Config};
use shared::domain::{
    Meeting, Platform, RecordingKind, RecordingTrigger, RecordingType, Room, RoomMode, RoomName,
};
use shared::fakes::{MemoryConsents, MemoryMeetings, MemoryRooms};
use shared::metrics::{Function, Metric, Metrics, Registry};
use shared::platform::daily::token::TokenRequest;
use shared::platform::daily::{recording_instance_id, RecordingStart};
use shared::platform::{MockCall, MockClient, PlatformError, PlatformRegistry, VideoPlatform};
use shared::recording_start::RecordingStarter;
use shared::store::{Claim, MeetingStore, StoreResult};

use crate::auth::test_keys;
use crate::daily::DailyApi;
use crate::handler::{router, Deps};
use tower::ServiceExt;

const FIXTURE_ROOM_ID: &str = "0b9e6a9c-3f4e-4d7a-9c1e-6f1f0f8a2b11";

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../../events/rooms-api/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn request(event: &Value) -> Request {
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

fn with_body(mut event: Value, body: &str) -> Value {
    event["body"] = json!(body);
    event
}

/// The event with path parameter `name` set to `value`, in the raw path as a client would
/// send it (percent-encoded) and in `pathParameters` as API Gateway would decode it.
fn with_path_param(mut event: Value, name: &str, value: &str) -> Value {
    let old = event["pathParameters"][name]
        .as_str()
        .unwrap_or_else(|| panic!("the fixture has no path parameter {name}"))
        .to_owned();
    let encoded: String = value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    let raw_path = event["rawPath"]
        .as_str()
        .unwrap()
        .replace(&format!("/{old}"), &format!("/{encoded}"));
    event["rawPath"] = json!(raw_path);
    event["requestContext"]["http"]["path"] = json!(raw_path);
    event["pathParameters"][name] = json!(value);
    event
}

fn with_header(mut event: Value, name: &str, value: &str) -> Value {
    event["headers"][name] = json!(value);
    event
}

fn config(pairs: &[(&str, &str)]) -> Config {
    let vars: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Config::from_vars(&vars).unwrap()
}

struct World {
    deps: Arc<Deps>,
    rooms: Arc<MemoryRooms>,
    meetings: Arc<MemoryMeetings>,
    consents: Arc<MemoryConsents>,
    mock: Arc<MockClient>,
}

fn world_with(config: Config, meetings: Option<Arc<dyn MeetingStore>>) -> World {
    let rooms = Arc::new(MemoryRooms::default());
    let mem_meetings = Arc::new(MemoryMeetings::default());
    let consents = Arc::new(MemoryConsents::default());
    let mock = Arc::new(MockClient::new());
    let registry = PlatformRegistry::empty()
        .with(Platform::Whereby, mock.clone() as Arc<dyn VideoPlatform>)
        .with(Platform::Daily, mock.clone() as Arc<dyn VideoPlatform>);
    let deps = Deps::new(
        Arc::new(config),
        rooms.clone(),
        meetings.unwrap_or_else(|| mem_meetings.clone()),
        consents.clone(),
        Arc::new(registry),
    )
    .unwrap();
    World {
        deps: Arc::new(deps),
        rooms,
        meetings: mem_meetings,
        consents,
        mock,
    }
}

fn world() -> World {
    world_with(config(&[]), None)
}

fn jwt_world() -> World {
    let mut c = config(&[]);
    c.auth = AuthConfig::Jwt {
        public_key_pem: test_keys::PUBLIC.into(),
        audience: None,
    };
    world_with(c, None)
}

fn as_user(event: Value, sub: &str) -> Value {
    let t = test_keys::token(test_keys::PRIVATE, sub, 300, None);
    with_header(event, "authorization", &format!("Bearer {t}"))
}

async fn call(w: &World, event: &Value) -> (u16, Value) {
    send(&w.deps, event).await
}

/// The status and JSON body (`Null` when not JSON) of the function's answer to `event`.
async fn send(deps: &Arc<Deps>, event: &Value) -> (u16, Value) {
    let app = shared::http::standalone(router(deps.clone()));
    let response = match app.oneshot(request(event)).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, body)
}

fn room(id: &str, name: &str, owner: Option<&str>, shared: bool, created: i64) -> Room {
    Room {
        skip_consent: false,
        id: id.into(),
        name: RoomName::parse(name).unwrap(),
        user_id: owner.map(str::to_owned),
        created_at: DateTime::from_timestamp(created, 0).unwrap(),
        zulip_auto_post: false,
        zulip_stream: String::new(),
        zulip_topic: String::new(),
        is_locked: false,
        room_mode: RoomMode::Normal,
        recording_type: RecordingType::Cloud,
        recording_trigger: RecordingTrigger::Automatic2ndParticipant,
        is_shared: shared,
        platform: Platform::Whereby,
    }
}

fn created_rooms(mock: &MockClient) -> Vec<String> {
    mock.calls()
        .into_iter()
        .filter_map(|c| match c {
            MockCall::CreateMeeting { room_name, .. } => Some(room_name),
            _ => None,
        })
        .collect()
}

fn deleted_rooms(mock: &MockClient) -> Vec<String> {
    mock.calls()
        .into_iter()
        .filter_map(|c| match c {
            MockCall::DeleteRoom { room_name, .. } => Some(room_name),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn create_room_fixture_returns_the_room_with_the_flagged_platform() {
    let w = world();
    let (status, body) = call(&w, &fixture("create-room.json")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "team-standup");
    assert_eq!(body["is_shared"], true);
    assert_eq!(body["platform"], "whereby");
    assert_eq!(body["user_id"], Value::Null);
    let stored = w.rooms.rooms.lock().unwrap().clone();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].id, body["id"]);
}

#[tokio::test]
async fn missing_optional_fields_take_the_original_defaults() {
    let w = world();
    let e = with_body(fixture("create-room.json"), r#"{"name":"defaults"}"#);
    let (status, body) = call(&w, &e).await;
    assert_eq!(status, 200, "{body}");
    for (field, want) in [
        ("zulip_auto_post", json!(false)),
        ("zulip_stream", json!("")),
        ("zulip_topic", json!("")),
        ("is_locked", json!(false)),
        ("room_mode", json!("normal")),
        ("recording_type", json!("cloud")),
        ("recording_trigger", json!("automatic-2nd-participant")),
        ("is_shared", json!(false)),
    ] {
        assert_eq!(body[field], want, "{field}");
    }
}

#[tokio::test]
async fn migration_flags_choose_the_platform_of_a_new_room() {
    let w = world_with(
        config(&[
            ("DAILY_MIGRATION_ENABLED", "true"),
            ("DEFAULT_VIDEO_PLATFORM", "daily"),
        ]),
        None,
    );
    let (_, body) = call(&w, &fixture("create-room.json")).await;
    assert_eq!(body["platform"], "daily");
}

#[tokio::test]
async fn duplicate_room_name_is_refused_with_the_original_message() {
    let w = world();
    assert_eq!(call(&w, &fixture("create-room.json")).await.0, 200);
    let (status, body) = call(&w, &fixture("create-room.json")).await;
    assert_eq!(status, 400);
    assert_eq!(body, json!({"detail": "Room name is not unique"}));
}

#[tokio::test]
async fn invalid_create_fixture_names_every_bad_field() {
    let w = world();
    let (status, body) = call(&w, &fixture("create-room-invalid.json")).await;
    assert_eq!(status, 422);
    let locs: Vec<Value> = body["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["loc"].clone())
        .collect();
    assert_eq!(
        locs,
        vec![
            json!(["body", "name"]),
            json!(["body", "is_locked"]),
            json!(["body", "room_mode"])
        ]
    );
    assert!(w.rooms.rooms.lock().unwrap().is_empty());
}

#[tokio::test]
async fn missing_name_is_reported_like_fastapi() {
    let w = world();
    let (status, body) = call(&w, &with_body(fixture("create-room.json"), "{}")).await;
    assert_eq!(status, 422);
    assert_eq!(body["detail"][0]["loc"], json!(["body", "name"]));
    assert_eq!(body["detail"][0]["msg"], "Field required");
    assert_eq!(body["detail"][0]["type"], "missing");
}

#[tokio::test]
async fn listing_anonymously_needs_public_mode() {
    let w = world();
    let (status, body) = call(&w, &fixture("list-rooms.json")).await;
    assert_eq!(
        (status, body),
        (401, json!({"detail": "Not authenticated"}))
    );
}

#[tokio::test]
async fn public_listing_pages_shared_rooms_newest_first() {
    let w = world_with(config(&[("PUBLIC_MODE", "true")]), None);
    {
        let mut rooms = w.rooms.rooms.lock().unwrap();
        for i in 0..5 {
            rooms.push(room(
                &format!("id-{i}"),
                &format!("room-{i}"),
                None,
                true,
                1000 + i,
            ));
        }
        rooms.push(room("private", "private", Some("bob"), false, 2000));
    }
    let mut e = fixture("list-rooms.json");
    e["queryStringParameters"] = json!({"page": "2", "size": "2"});
    e["rawQueryString"] = json!("page=2&size=2");
    let (status, body) = call(&w, &e).await;
    assert_eq!(status, 200, "{body}");
    // Not the last page: the total would take reading every room.
    assert_eq!(body["total"], Value::Null);
    assert_eq!(body["page"], 2);
    assert_eq!(body["size"], 2);
    assert_eq!(body["pages"], Value::Null);
    assert_eq!(names_of(&body), ["room-2", "room-1"]);

    let cursor = body["next_cursor"].as_str().unwrap();
    e["queryStringParameters"] = json!({"cursor": cursor, "size": "2"});
    e["rawQueryString"] = json!(format!("cursor={cursor}&size=2"));
    let (status, next) = call(&w, &e).await;
    assert_eq!(status, 200, "{next}");
    assert_eq!(names_of(&next), ["room-0"]);
    assert_eq!(next["next_cursor"], Value::Null);
    assert_eq!(next["page"], Value::Null);

    e["queryStringParameters"] = json!({"page": "3", "size": "2"});
    e["rawQueryString"] = json!("page=3&size=2");
    let (_, last) = call(&w, &e).await;
    assert_eq!(names_of(&last), ["room-0"]);
    assert_eq!((&last["total"], &last["pages"]), (&json!(5), &json!(3)));
}

fn names_of(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn a_cursor_not_given_out_by_the_api_is_422_and_deep_pages_are_refused() {
    let w = world_with(config(&[("PUBLIC_MODE", "true")]), None);
    let mut e = fixture("list-rooms.json");
    for (query, param) in [
        ("cursor=not-a-cursor", "cursor"),
        ("cursor=eyJvIjoxfQ", "cursor"),
        ("page=22&size=50", "page"),
    ] {
        e["rawQueryString"] = json!(query);
        e["queryStringParameters"] = query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), json!(v)))
            .collect::<serde_json::Map<_, _>>()
            .into();
        let (status, body) = call(&w, &e).await;
        assert_eq!(status, 422, "{query}: {body}");
        assert_eq!(body["detail"][0]["loc"], json!(["query", param]), "{query}");
    }
}

#[tokio::test]
async fn page_size_over_100_is_422_naming_the_parameter() {
    let w = world_with(config(&[("PUBLIC_MODE", "true")]), None);
    let mut e = fixture("list-rooms.json");
    e["queryStringParameters"] = json!({"size": "101"});
    e["rawQueryString"] = json!("size=101");
    let (status, body) = call(&w, &e).await;
    assert_eq!(status, 422);
    assert_eq!(body["detail"][0]["loc"], json!(["query", "size"]));
}

#[tokio::test]
async fn an_invalid_token_is_401_not_anonymous() {
    let w = jwt_world();
    let expired = test_keys::token(test_keys::PRIVATE, "alice", -3600, None);
    let e = with_header(
        fixture("create-room.json"),
        "authorization",
        &format!("Bearer {expired}"),
    );
    let (status, body) = call(&w, &e).await;
    assert_eq!(
        (status, body),
        (401, json!({"detail": "Invalid authentication"}))
    );
    assert!(w.rooms.rooms.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_signed_in_user_lists_own_and_shared_rooms() {
    let w = jwt_world();
    {
        let mut rooms = w.rooms.rooms.lock().unwrap();
        rooms.push(room("a", "alices", Some("alice"), false, 1));
        rooms.push(room("b", "bobs", Some("bob"), false, 2));
        rooms.push(room("s", "shared", Some("bob"), true, 3));
    }
    let (status, body) = call(&w, &as_user(fixture("list-rooms.json"), "alice")).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["shared", "alices"]);
}

#[tokio::test]
async fn update_fixture_changes_only_the_given_fields() {
    let w = world();
    w.rooms
        .rooms
        .lock()
        .unwrap()
        .push(room(FIXTURE_ROOM_ID, "team", None, true, 1));
    let (status, body) = call(&w, &fixture("update-room.json")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["is_locked"], true);
    assert_eq!(body["recording_type"], "local");
    assert_eq!(body["is_shared"], true);
    assert_eq!(body["name"], "team");
}

#[tokio::test]
async fn another_users_update_and_delete_are_404_and_change_nothing() {
    let w = jwt_world();
    let before = room(FIXTURE_ROOM_ID, "team", Some("alice"), false, 1);
    w.rooms.rooms.lock().unwrap().push(before.clone());
    let (status, body) = call(&w, &as_user(fixture("update-room.json"), "mallory")).await;
    assert_eq!((status, body), (404, json!({"detail": "Room not found"})));
    let (status, _) = call(&w, &as_user(fixture("delete-room.json"), "mallory")).await;
    assert_eq!(status, 404);
    assert_eq!(w.rooms.rooms.lock().unwrap().clone(), vec![before]);
    let (status, body) = call(&w, &as_user(fixture("delete-room.json"), "alice")).await;
    assert_eq!((status, body), (200, json!({"status": "ok"})));
    assert!(w.rooms.rooms.lock().unwrap().is_empty());
}

#[tokio::test]
async fn with_accounts_anonymous_callers_cannot_create_change_or_delete_rooms() {
    let w = jwt_world();
    // A room made before accounts were turned on belongs to no one: anonymous callers must
    // not inherit it.
    let before = room(FIXTURE_ROOM_ID, "team", None, false, 1);
    w.rooms.rooms.lock().unwrap().push(before.clone());
    let refused = (401, json!({"detail": "Not authenticated"}));
    assert_eq!(call(&w, &fixture("create-room.json")).await, refused);
    assert_eq!(call(&w, &fixture("update-room.json")).await, refused);
    assert_eq!(call(&w, &fixture("delete-room.json")).await, refused);
    // Credentials come before the body: an invalid body is still a 401.
    let invalid = with_body(fixture("update-room.json"), r#"{"room_mode": "nope"}"#);
    assert_eq!(call(&w, &invalid).await, refused);
    assert_eq!(w.rooms.rooms.lock().unwrap().clone(), vec![before]);

    let (status, created) = call(&w, &as_user(fixture("create-room.json"), "alice")).await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["user_id"], "alice");
}

#[tokio::test]
async fn with_accounts_no_anonymous_caller_gets_the_host_url_of_an_ownerless_room() {
    let w = jwt_world();
    put_room(&w, room("r1", "team-standup", None, false, 1));
    let (status, meeting) = call(&w, &fixture("room-meeting.json")).await;
    assert_eq!(status, 200, "{meeting}");
    assert_eq!(meeting["host_room_url"], "");
    let (_, guest) = call(&w, &as_user(fixture("room-meeting.json"), "bob")).await;
    assert_eq!(guest["host_room_url"], "");
}

#[tokio::test]
async fn without_accounts_anonymous_callers_create_change_and_host_rooms() {
    let w = world();
    let (status, created) = call(&w, &fixture("create-room.json")).await;
    assert_eq!(status, 200, "{created}");
    let name = created["name"].as_str().unwrap();
    let e = with_path_param(fixture("room-meeting.json"), "room_name", name);
    let (status, meeting) = call(&w, &e).await;
    assert_eq!(status, 200, "{meeting}");
    assert_ne!(
        meeting["host_room_url"], "",
        "the original's rule: none equals none"
    );
    let id = created["id"].as_str().unwrap();
    let delete = with_path_param(fixture("delete-room.json"), "room_id", id);
    assert_eq!(call(&w, &delete).await.0, 200);
}

#[tokio::test]
async fn update_validates_before_looking_up_the_room() {
    let w = world();
    let e = with_body(
        fixture("update-room.json"),
        r#"{"recording_trigger":"sometimes"}"#,
    );
    let (status, body) = call(&w, &e).await;
    assert_eq!(status, 422);
    assert_eq!(
        body["detail"][0]["loc"],
        json!(["body", "recording_trigger"])
    );
    assert_eq!(body["detail"][0]["type"], "enum");
}

#[tokio::test]
async fn renaming_onto_a_taken_name_is_400() {
    let w = world();
    {
        let mut rooms = w.rooms.rooms.lock().unwrap();
        rooms.push(room(FIXTURE_ROOM_ID, "team", None, false, 1));
        rooms.push(room("other", "taken", None, false, 2));
    }
    let e = with_body(fixture("update-room.json"), r#"{"name":"taken"}"#);
    let (status, body) = call(&w, &e).await;
    assert_eq!(
        (status, body),
        (400, json!({"detail": "Room name is not unique"}))
    );
}

#[tokio::test]
async fn room_meeting_fixture_creates_once_then_reuses() {
    let w = world();
    w.rooms
        .rooms
        .lock()
        .unwrap()
        .push(room("r1", "team-standup", None, false, 1));
    let (status, first) = call(&w, &fixture("room-meeting.json")).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["platform"], "mock");
    assert_eq!(first["recording_type"], "cloud");
    assert_eq!(first["is_active"], true);
    assert_eq!(first["num_clients"], 0);
    // Anonymous caller, anonymous room: the caller owns it, as in the original.
    assert_ne!(first["host_room_url"], "");
    let (_, second) = call(&w, &fixture("room-meeting.json")).await;
    assert_eq!(second["id"], first["id"]);
    assert_eq!(created_rooms(&w.mock).len(), 1);
    let start = DateTime::parse_from_rfc3339(first["start_date"].as_str().unwrap()).unwrap();
    let end = DateTime::parse_from_rfc3339(first["end_date"].as_str().unwrap()).unwrap();
    assert_eq!(end - start, chrono::Duration::hours(8));
}

#[tokio::test]
async fn meeting_duration_is_configurable() {
    let w = world_with(config(&[("MEETING_DURATION_HOURS", "2")]), None);
    w.rooms
        .rooms
        .lock()
        .unwrap()
        .push(room("r1", "team-standup", None, false, 1));
    let (_, m) = call(&w, &fixture("room-meeting.json")).await;
    let start = DateTime::parse_from_rfc3339(m["start_date"].as_str().unwrap()).unwrap();
    let end = DateTime::parse_from_rfc3339(m["end_date"].as_str().unwrap()).unwrap();
    assert_eq!(end - start, chrono::Duration::hours(2));
}

#[tokio::test]
async fn host_url_is_hidden_from_everyone_but_the_owner() {
    let w = jwt_world();
    w.rooms
        .rooms
        .lock()
        .unwrap()
        .push(room("r1", "team-standup", Some("alice"), false, 1));
    let (_, guest) = call(&w, &as_user(fixture("room-meeting.json"), "bob")).await;
    assert_eq!(guest["host_room_url"], "");
    let (_, anonymous) = call(&w, &fixture("room-meeting.json")).await;
    assert_eq!(anonymous["host_room_url"], "");
    let (_, owner) = call(&w, &as_user(fixture("room-meeting.json"), "alice")).await;
    assert!(owner["host_room_url"]
        .as_str()
        .unwrap()
        .starts_with("https://mock.video/"));
    assert_eq!(owner["id"], guest["id"]);
}

#[tokio::test]
async fn unknown_room_meeting_is_404() {
    let w = world();
    let (status, body) = call(&w, &fixture("room-meeting.json")).await;
    assert_eq!((status, body), (404, json!({"detail": "Room not found"})));
    let e = with_path_param(fixture("room-meeting.json"), "room_name", "NOT A NAME");
    assert_eq!(call(&w, &e).await.0, 404);
    assert!(w.mock.calls().is_empty());
}

#[tokio::test]
async fn a_platform_failure_is_502_naming_the_platform_and_the_action_not_its_answer() {
    let w = world();
    w.rooms
        .rooms
        .lock()
        .unwrap()
        .push(room("r1", "team-standup", None, false, 1));
    w.mock.fail_next(PlatformError::Api {
        platform: Platform::Daily,
        status: 500,
        error: "server-error".into(),
        info: Some("try later".into()),
    });
    let (status, body) = call(&w, &fixture("room-meeting.json")).await;
    assert_eq!(status, 502);
    assert_eq!(
        body,
        json!({"detail": "The mock platform could not create the room; try again"})
    );
    assert!(w.meetings.all().is_empty());
}

#[tokio::test]
async fn an_unconfigured_platform_is_502_naming_the_platform_not_its_variable() {
    let rooms = Arc::new(MemoryRooms::default());
    rooms
        .rooms
        .lock()
        .unwrap()
        .push(room("r1", "team-standup", None, false, 1));
    let deps = Deps::new(
        Arc::new(config(&[])),
        rooms,
        Arc::new(MemoryMeetings::default()),
        Arc::new(MemoryConsents::default()),
        Arc::new(PlatformRegistry::empty()),
    )
    .unwrap();
    let (status, body) = send(&Arc::new(deps), &fixture("room-meeting.json")).await;
    assert_eq!(status, 502);
    let detail = body["detail"].as_str().unwrap();
    assert_eq!(
        detail,
        "Whereby could not create the room: this service is not set up for Whereby"
    );
    assert!(!detail.contains("WHEREBY_API_KEY"), "{detail}");
}

fn with_registry_metrics(w: World) -> (World, Arc<Registry>) {
    let registry = Arc::new(Registry::default());
    let deps = Arc::try_unwrap(w.deps).unwrap_or_else(|_| panic!("deps are not shared yet"));
    let deps = Deps {
        metrics: Metrics::new(Function::RoomsApi, registry.clone()),
        ..deps
    };
    (
        World {
            deps: Arc::new(deps),
            ..w
        },
        registry,
    )
}

#[tokio::test]
async fn a_store_failure_after_creation_deletes_the_platform_room() {
    let (w, metrics) = with_registry_metrics(world());
    w.rooms
        .rooms
        .lock()
        .unwrap()
        .push(room("r1", "team-standup", None, false, 1));
    w.meetings.failures.fail("claim_active");
    let (status, body) = call(&w, &fixture("room-meeting.json")).await;
    assert!(status >= 500, "{status} {body}");
    assert!(body["detail"].is_string(), "{body}");
    let created = created_rooms(&w.mock);
    assert_eq!(created.len(), 1);
    assert_eq!(deleted_rooms(&w.mock), created);
    assert!(w.meetings.all().is_empty());
    assert_eq!(
        metrics.sum_where(Metric::PlatformRoomLeftBehind, |_| true),
        0.0
    );
}

#[tokio::test]
async fn an_unconfirmed_creation_deletes_the_room_it_asked_for() {
    let w = world();
    w.rooms
        .rooms
        .lock()
        .unwrap()
        .push(room("r1", "team-standup", None, false, 1));
    w.mock.fail_next(PlatformError::Unconfirmed {
        platform: Platform::Mock,
        operation: "create room",
        room_name: Some("team-standup-lost".into()),
        cause: Box::new(PlatformError::Transport {
            platform: Platform::Mock,
            operation: "create room",
            timed_out: true,
            message: "timed out".into(),
        }),
    });
    let (status, body) = call(&w, &fixture("room-meeting.json")).await;
    assert_eq!(
        (status, body),
        (
            504,
            json!({"detail": "The mock platform did not answer in time to create the room; try again"})
        )
    );
    assert_eq!(deleted_rooms(&w.mock), vec!["team-standup-lost".to_owned()]);
    assert!(w.meetings.all().is_empty());
}

#[tokio::test]
async fn an_unconfirmed_creation_that_cannot_be_deleted_is_counted_left_behind() {
    let (w, metrics) = with_registry_metrics(world());
    w.rooms
        .rooms
        .lock()
        .unwrap()
        .push(room("r1", "team-standup", None, false, 1));
    // As Whereby: the platform names the room, so a lost answer leaves no name to delete.
    w.mock.fail_next(PlatformError::Unconfirmed {
        platform: Platform::Mock,
        operation: "create meeting",
        room_name: None,
        cause: Box::new(PlatformError::Api {
            platform: Platform::Mock,
            status: 500,
            error: "Internal Server Error".into(),
            info: None,
        }),
    });
    let (status, _) = call(&w, &fixture("room-meeting.json")).await;
    assert_eq!(status, 502);
    assert!(deleted_rooms(&w.mock).is_empty());
    assert_eq!(
        metrics.sum_where(Metric::PlatformRoomLeftBehind, |k| k.platform
            == Some(Platform::Mock)),
        1.0
    );
}

/// A platform that never answers a creation: only the request's deadline ends the call.
struct Unanswering;

#[async_trait]
impl VideoPlatform for Unanswering {
    fn platform(&self) -> Platform {
        Platform::Whereby
    }
    async fn create_meeting(
        &self,
        _prefix: &str,
        _end: DateTime<Utc>,
        _room: &Room,
    ) -> Result<shared::platform::MeetingData, PlatformError> {
        std::future::pending().await
    }
    async fn get_room_sessions(
        &self,
        _room_name: &str,
    ) -> Result<Vec<shared::platform::SessionData>, PlatformError> {
        Ok(vec![])
    }
    async fn delete_room(&self, _name: &str, _id: Option<&str>) -> Result<(), PlatformError> {
        Ok(())
    }
}

#[tokio::test]
async fn the_lambda_invocation_deadline_ends_a_hanging_creation_with_a_504() {
    let rooms = Arc::new(MemoryRooms::default());
    rooms
        .rooms
        .lock()
        .unwrap()
        .push(room("r1", "team-standup", None, false, 1));
    let meetings = Arc::new(MemoryMeetings::default());
    let registry = Arc::new(Registry::default());
    let deps = Deps {
        metrics: Metrics::new(Function::RoomsApi, registry.clone()),
        // Were the budget used, the test would hang for an hour: the context's deadline counts.
        request_budget: std::time::Duration::from_secs(3600),
        ..Deps::new(
            Arc::new(config(&[])),
            rooms,
            meetings.clone(),
            Arc::new(MemoryConsents::default()),
            Arc::new(PlatformRegistry::empty().with(
                Platform::Whereby,
                Arc::new(Unanswering) as Arc<dyn VideoPlatform>,
            )),
        )
        .unwrap()
    };
    let mut context = lambda_http::Context::default();
    context.deadline =
        (Utc::now() + chrono::Duration::milliseconds(2500)).timestamp_millis() as u64;
    let request = lambda_http::RequestExt::with_lambda_context(
        request(&fixture("room-meeting.json")),
        context,
    );
    let app = shared::http::standalone(router(Arc::new(deps)));
    let response = match app.oneshot(request).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    assert_eq!(response.status().as_u16(), 504);
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        body,
        json!({"detail": "Whereby did not answer in time to create the room; try again"})
    );
    assert!(meetings.all().is_empty());
    // Whatever Whereby made cannot be found again: it is reported, not leaked silently.
    assert_eq!(
        registry.sum_where(Metric::PlatformRoomLeftBehind, |_| true),
        1.0
    );
}

/// A store in which another request always claims the room first.
struct AlwaysLoses(Meeting);

#[async_trait]
impl MeetingStore for AlwaysLoses {
    async fn claim_active(&self, _m: &Meeting, _now: DateTime<Utc>) -> StoreResult<Claim> {
        Ok(Claim::Lost(self.0.clone()))
    }
    async fn get(&self, _id: &str) -> StoreResult<Option<Meeting>> {
        Ok(None)
    }
    async fn get_by_room_name(&self, _n: &str) -> StoreResult<Option<Meeting>> {
        Ok(None)
    }
    async fn get_active_for_room(
        &self,
        _r: &str,
        _n: DateTime<Utc>,
    ) -> StoreResult<Option<Meeting>> {
        Ok(None)
    }
    async fn list_active(&self) -> StoreResult<Vec<Meeting>> {
        Ok(vec![])
    }
    async fn set_clients_if_newer(
        &self,
        _i: &str,
        _c: i64,
        _o: DateTime<Utc>,
    ) -> StoreResult<bool> {
        Ok(false)
    }
    async fn deactivate(&self, _id: &str) -> StoreResult<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_losing_request_deletes_its_platform_room_and_returns_the_winner() {
    let w = world_with(config(&[]), Some(Arc::new(AlwaysLoses(sample_meeting()))));
    w.rooms
        .rooms
        .lock()
        .unwrap()
        .push(room("r1", "team-standup", None, false, 1));
    let (status, body) = call(&w, &fixture("room-meeting.json")).await;
    assert_eq!(status, 200);
    assert_eq!(body["id"], "winner");
    assert_eq!(body["num_clients"], 3);
    assert_eq!(created_rooms(&w.mock), deleted_rooms(&w.mock));
    assert_eq!(created_rooms(&w.mock).len(), 1);
}

fn sample_meeting() -> Meeting {
    let now = Utc::now();
    Meeting {
        recordings_started: Default::default(),
        id: "winner".into(),
        room_id: "r1".into(),
        room_name: "team-standup-winner".into(),
        room_url: "https://mock.video/team-standup-winner".into(),
        host_room_url: "https://mock.video/team-standup-winner?host=1".into(),
        start_date: now,
        end_date: now + chrono::Duration::hours(8),
        user_id: None,
        is_locked: false,
        room_mode: RoomMode::Normal,
        recording_type: RecordingType::Cloud,
        recording_trigger: RecordingTrigger::Automatic2ndParticipant,
        num_clients: 3,
        is_active: true,
        platform: Platform::Mock,
        extra_data: Value::Null,
    }
}

#[tokio::test]
async fn racing_callers_get_distinct_platform_room_names() {
    // Daily names rooms by prefix and second and deletes by name: two racers must not share a
    // name, or a loser would delete the winner's room. Every call here finds no active meeting.
    let w = world_with(config(&[]), Some(Arc::new(AlwaysLoses(sample_meeting()))));
    w.rooms
        .rooms
        .lock()
        .unwrap()
        .push(room("r1", "team-standup", None, false, 1));
    for _ in 0..5 {
        assert_eq!(call(&w, &fixture("room-meeting.json")).await.0, 200);
    }
    let mut names = created_rooms(&w.mock);
    assert_eq!(names.len(), 5);
    assert!(names.iter().all(|n| n.starts_with("team-standup-")));
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 5, "{names:?}");
}

#[tokio::test]
async fn consent_for_an_unknown_meeting_is_404() {
    let w = world();
    let (status, body) = call(&w, &fixture("meeting-consent.json")).await;
    assert_eq!(
        (status, body),
        (404, json!({"detail": "Meeting not found"}))
    );
}

#[tokio::test]
async fn consent_is_stored_and_upserted_per_user() {
    let w = jwt_world();
    w.rooms
        .rooms
        .lock()
        .unwrap()
        .push(room("r1", "team-standup", None, false, 1));
    let (_, m) = call(&w, &fixture("room-meeting.json")).await;
    let e = with_path_param(
        fixture("meeting-consent.json"),
        "meeting_id",
        m["id"].as_str().unwrap(),
    );
    let (status, first) = call(&w, &as_user(e.clone(), "alice")).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["status"], "success");
    let e2 = with_body(e, r#"{"consent_given": false}"#);
    let (_, second) = call(&w, &as_user(e2, "alice")).await;
    assert_eq!(second["consent_id"], first["consent_id"]);
    let consents = w.consents.consents.lock().unwrap().clone();
    assert_eq!(consents.len(), 1);
    assert!(!consents[0].consent_given);
}

#[tokio::test]
async fn consent_needs_a_boolean() {
    let w = world();
    let e = with_body(
        fixture("meeting-consent.json"),
        r#"{"consent_given": "maybe"}"#,
    );
    let (status, body) = call(&w, &e).await;
    assert_eq!(status, 422);
    assert_eq!(body["detail"][0]["loc"], json!(["body", "consent_given"]));
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let w = world();
    let big = format!(
        r#"{{"name":"x","zulip_topic":"{}"}}"#,
        "a".repeat(70 * 1024)
    );
    let (status, _) = call(&w, &with_body(fixture("create-room.json"), &big)).await;
    assert_eq!(status, 413);
}

#[tokio::test]
async fn no_malformed_request_gets_a_5xx() {
    let w = world_with(config(&[("PUBLIC_MODE", "true")]), None);
    let bodies = [
        "",
        "{",
        "}",
        "null",
        "[]",
        "\"name\"",
        "42",
        "{\"name\": null}",
        "{\"name\": [1]}",
        "{\"name\": {\"a\": 1}}",
        "{\"name\": \"ok\", \"is_locked\": {}}",
        "{\"name\": \"ok\", \"room_mode\": 3}",
        "\u{0}\u{1}\u{2}",
        "{\"name\": \"\u{1F600}\"}",
        "{\"consent_given\": null}",
    ];
    let fixtures = [
        "create-room.json",
        "update-room.json",
        "meeting-consent.json",
        "room-meeting.json",
        "delete-room.json",
        "list-rooms.json",
    ];
    for f in fixtures {
        for b in bodies {
            for ct in [
                "application/json",
                "text/plain",
                "application/x-www-form-urlencoded",
            ] {
                let e = with_header(with_body(fixture(f), b), "content-type", ct);
                let (status, body) = call(&w, &e).await;
                assert!(status < 500, "{f} {ct} {b:?} -> {status} {body}");
            }
        }
        // Random bytes, as API Gateway delivers a binary body.
        let mut e = fixture(f);
        e["body"] = json!("3q2+7wABAgP/");
        e["isBase64Encoded"] = json!(true);
        let (status, body) = call(&w, &e).await;
        assert!(status < 500, "{f} binary -> {status} {body}");
        // Absurd ids in the path.
        let mut e = fixture(f);
        for p in ["room_id", "room_name", "meeting_id"] {
            if e["pathParameters"].get(p).is_some() {
                e = with_path_param(e, p, &"x".repeat(5000));
            }
        }
        let (status, body) = call(&w, &e).await;
        assert!(status < 500, "{f} long id -> {status} {body}");
    }
}

#[tokio::test]
async fn a_database_outage_is_503_not_500() {
    let w = world_with(config(&[("PUBLIC_MODE", "true")]), None);
    w.rooms.failures.fail("list_for_user");
    let (status, body) = call(&w, &fixture("list-rooms.json")).await;
    assert_eq!(status, 503, "{body}");
}

#[tokio::test]
async fn unknown_methods_on_known_paths_are_404() {
    let w = world();
    let mut e = fixture("room-meeting.json");
    e["requestContext"]["http"]["method"] = json!("GET");
    assert_eq!(call(&w, &e).await.0, 404);
}

#[tokio::test]
async fn percent_encoded_path_segments_are_decoded() {
    let w = world();
    w.rooms
        .rooms
        .lock()
        .unwrap()
        .push(room("r1", "team-standup", None, false, 1));
    let mut e = fixture("room-meeting.json");
    e["rawPath"] = json!("/v1/rooms/team%2Dstandup/meeting");
    let (status, body) = call(&w, &e).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(created_rooms(&w.mock).len(), 1);
}

#[tokio::test]
async fn credentials_are_checked_before_the_body_limit() {
    let w = jwt_world();
    let big = format!(r#"{{"name":"{}"}}"#, "a".repeat(70 * 1024));
    let e = with_header(
        with_body(fixture("create-room.json"), &big),
        "authorization",
        "Bearer not-a-token",
    );
    let (status, body) = call(&w, &e).await;
    assert_eq!(
        (status, body),
        (401, json!({"detail": "Invalid authentication"}))
    );
}

#[tokio::test]
async fn unknown_paths_are_404_not_found() {
    let w = world();
    let mut e = fixture("list-rooms.json");
    e["rawPath"] = json!("/v1/nothing");
    assert_eq!(call(&w, &e).await, (404, json!({"detail": "Not Found"})));
}

// ---- Room and meeting lookup, join, deactivate, manual recording start (issue 14) ----

/// The meeting id of the meeting fixtures (`get-meeting.json`, `join-meeting.json`, ...).
const FIXTURE_MEETING_ID: &str = "3c8e2f4a-9b1d-4e6f-8a2c-5d7e9f1b3a60";
const DAILY_KEY: &str = "test-daily-key";

fn put_room(w: &World, r: Room) {
    w.rooms.rooms.lock().unwrap().push(r);
}

/// An active Daily meeting of room `r1` with the fixtures' meeting id.
fn daily_meeting() -> Meeting {
    Meeting {
        id: FIXTURE_MEETING_ID.into(),
        room_name: "team-standup-a1b2c3-20260102030405".into(),
        room_url: "https://x.daily.co/team-standup-a1b2c3-20260102030405".into(),
        host_room_url: "https://x.daily.co/team-standup-a1b2c3-20260102030405".into(),
        platform: Platform::Daily,
        ..sample_meeting()
    }
}

async fn put_meeting(w: &World, m: &Meeting) {
    assert_eq!(
        w.meetings.claim_active(m, Utc::now()).await.unwrap(),
        Claim::Won
    );
}

/// `w` with `daily` as its Daily client.
fn with_daily(w: World, daily: Arc<dyn DailyApi>) -> World {
    let deps = match Arc::try_unwrap(w.deps) {
        Ok(d) => d,
        Err(_) => panic!("the deps are shared"),
    };
    World {
        deps: Arc::new(deps.with_daily(daily)),
        ..w
    }
}

/// The real Daily client with a known domain id, pointed at a closed port: a join that made
/// any request to Daily would fail.
fn real_daily() -> Arc<dyn DailyApi> {
    let cfg = config(&[
        ("DAILY_API_KEY", DAILY_KEY),
        ("DAILY_API_URL", "http://127.0.0.1:9/v1"),
        ("DAILY_DOMAIN_ID", "dom-1"),
    ]);
    PlatformRegistry::from_config(&cfg, Default::default())
        .daily_client()
        .expect("Daily is configured")
}

#[derive(Default)]
struct FakeDaily {
    starts: Mutex<Vec<(String, RecordingKind, uuid::Uuid)>>,
    fail: bool,
}

#[async_trait]
impl RecordingStarter for FakeDaily {
    async fn start_recording(
        &self,
        room_name: &str,
        kind: RecordingKind,
        instance_id: uuid::Uuid,
    ) -> Result<RecordingStart, PlatformError> {
        self.starts
            .lock()
            .unwrap()
            .push((room_name.to_owned(), kind, instance_id));
        if self.fail {
            return Err(PlatformError::Api {
                platform: Platform::Daily,
                status: 400,
                error: "invalid-request-error".into(),
                info: Some("secret internals".into()),
            });
        }
        Ok(RecordingStart::Started)
    }
}

#[async_trait]
impl DailyApi for FakeDaily {
    async fn meeting_token(
        &self,
        _request: &TokenRequest<'_>,
        _now: DateTime<Utc>,
    ) -> Result<String, PlatformError> {
        Ok("fake-token".into())
    }
}

/// The claims of the `t` parameter of `room_url`, verified with the Daily API key.
fn token_claims(room_url: &str) -> serde_json::Map<String, Value> {
    let (_, token) = room_url.split_once("?t=").expect("a ?t= token");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<serde_json::Map<String, Value>>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(DAILY_KEY.as_bytes()),
        &validation,
    )
    .expect("the token verifies with the API key")
    .claims
}

#[tokio::test]
async fn get_room_shows_own_and_shared_rooms_and_hides_others() {
    let w = jwt_world();
    put_room(
        &w,
        room(FIXTURE_ROOM_ID, "team-standup", Some("alice"), false, 1),
    );
    let e = fixture("get-room.json");
    let (status, body) = call(&w, &as_user(e.clone(), "alice")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], FIXTURE_ROOM_ID);
    assert_eq!(body["skip_consent"], false);
    let (status, body) = call(&w, &as_user(e.clone(), "bob")).await;
    assert_eq!((status, body), (404, json!({"detail": "Room not found"})));
    assert_eq!(call(&w, &e).await.0, 404);

    w.rooms.rooms.lock().unwrap()[0].is_shared = true;
    assert_eq!(call(&w, &as_user(e.clone(), "bob")).await.0, 200);
    let unknown = with_path_param(e, "room_id", "no-such-room");
    assert_eq!(call(&w, &as_user(unknown, "alice")).await.0, 404);
}

#[tokio::test]
async fn without_accounts_every_room_is_visible_by_id() {
    let w = world();
    put_room(
        &w,
        room(FIXTURE_ROOM_ID, "team-standup", Some("alice"), false, 1),
    );
    assert_eq!(call(&w, &fixture("get-room.json")).await.0, 200);
}

#[tokio::test]
async fn get_room_by_name_returns_the_room_or_404() {
    let w = jwt_world();
    put_room(&w, room("r1", "team-standup", Some("alice"), false, 1));
    let (status, body) = call(&w, &as_user(fixture("get-room-by-name.json"), "bob")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], "r1");
    assert_eq!(body["name"], "team-standup");
    let unknown = with_path_param(fixture("get-room-by-name.json"), "room_name", "nobody");
    let (status, body) = call(&w, &unknown).await;
    assert_eq!((status, body), (404, json!({"detail": "Room not found"})));
}

#[tokio::test]
async fn skip_consent_round_trips_through_create_patch_and_get() {
    let w = world();
    let create = with_body(
        fixture("create-room.json"),
        r#"{"name": "team-standup", "skip_consent": true}"#,
    );
    let (status, created) = call(&w, &create).await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["skip_consent"], true);
    assert!(w.rooms.rooms.lock().unwrap()[0].skip_consent);
    let id = created["id"].as_str().unwrap();

    let patch = with_body(
        with_path_param(fixture("update-room.json"), "room_id", id),
        r#"{"skip_consent": false}"#,
    );
    let (status, patched) = call(&w, &patch).await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["skip_consent"], false);
    let (_, got) = call(&w, &fixture("get-room-by-name.json")).await;
    assert_eq!(got["skip_consent"], false);

    let bad = with_body(
        fixture("create-room.json"),
        r#"{"name": "other", "skip_consent": "maybe"}"#,
    );
    let (status, body) = call(&w, &bad).await;
    assert_eq!(status, 422);
    assert_eq!(body["detail"][0]["loc"], json!(["body", "skip_consent"]));
}

#[tokio::test]
async fn active_meetings_lists_the_rooms_meeting_with_the_host_url_for_the_owner_only() {
    let w = jwt_world();
    put_room(&w, room("r1", "team-standup", Some("alice"), true, 1));
    let e = fixture("active-meetings.json");
    let (status, body) = call(&w, &as_user(e.clone(), "alice")).await;
    assert_eq!((status, body), (200, json!([])));

    put_meeting(&w, &daily_meeting()).await;
    let (status, owner) = call(&w, &as_user(e.clone(), "alice")).await;
    assert_eq!(status, 200, "{owner}");
    assert_eq!(owner.as_array().unwrap().len(), 1);
    assert_eq!(owner[0]["id"], FIXTURE_MEETING_ID);
    assert_ne!(owner[0]["host_room_url"], "");
    let (_, guest) = call(&w, &as_user(e.clone(), "bob")).await;
    assert_eq!(guest[0]["host_room_url"], "");

    let unknown = with_path_param(e, "room_name", "nobody");
    assert_eq!(call(&w, &unknown).await.0, 404);
}

#[tokio::test]
async fn get_meeting_returns_only_that_rooms_meeting() {
    let w = world();
    put_room(&w, room("r1", "team-standup", None, false, 1));
    put_room(&w, room("r2", "other-room", None, false, 2));
    put_meeting(&w, &daily_meeting()).await;
    let (status, body) = call(&w, &fixture("get-meeting.json")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], FIXTURE_MEETING_ID);
    assert_eq!(body["platform"], "daily");

    let other = with_path_param(fixture("get-meeting.json"), "room_name", "other-room");
    let (status, body) = call(&w, &other).await;
    assert_eq!(
        (status, body),
        (404, json!({"detail": "Meeting not found"}))
    );
    let unknown = with_path_param(fixture("get-meeting.json"), "meeting_id", "nope");
    assert_eq!(call(&w, &unknown).await.0, 404);
}

#[tokio::test]
async fn joining_a_daily_meeting_signs_a_token_without_asking_daily() {
    let w = with_daily(jwt_world(), real_daily());
    let mut r = room("r1", "team-standup", Some("alice"), true, 1);
    r.skip_consent = true;
    put_room(&w, r);
    let m = daily_meeting();
    put_meeting(&w, &m).await;

    let e = fixture("join-meeting.json");
    let (status, owner) = call(&w, &as_user(e.clone(), "alice")).await;
    assert_eq!(status, 200, "{owner}");
    let url = owner["room_url"].as_str().unwrap();
    assert!(url.starts_with(&format!("{}?t=", m.room_url)), "{url}");
    let claims = token_claims(url);
    assert_eq!(claims["r"], json!(m.room_name));
    assert_eq!(claims["d"], "dom-1");
    assert_eq!(claims["exp"], json!(m.end_date.timestamp()));
    assert_eq!(claims["ud"], "alice");
    assert_eq!(claims["o"], true);
    // A cloud room that skips consent shows Daily's record button.
    assert_eq!(claims["erui"], true);
    let iat = claims["iat"].as_i64().unwrap();
    assert!((Utc::now().timestamp() - iat).abs() < 60, "{iat}");

    let (status, guest) = call(&w, &as_user(e.clone(), "bob")).await;
    assert_eq!(status, 200, "{guest}");
    let claims = token_claims(guest["room_url"].as_str().unwrap());
    assert_eq!(claims["ud"], "bob");
    assert_eq!(claims.get("o"), None);
    assert_eq!(guest["host_room_url"], "");

    let (status, anonymous) = call(&w, &e).await;
    assert_eq!(status, 200, "{anonymous}");
    let claims = token_claims(anonymous["room_url"].as_str().unwrap());
    assert_eq!((claims.get("ud"), claims.get("o")), (None, None));
}

#[tokio::test]
async fn joining_a_mock_meeting_returns_its_url_as_is() {
    let w = with_daily(world(), Arc::new(FakeDaily::default()));
    put_room(&w, room("r1", "team-standup", None, false, 1));
    let m = Meeting {
        id: FIXTURE_MEETING_ID.into(),
        ..sample_meeting()
    };
    put_meeting(&w, &m).await;
    let (status, body) = call(&w, &fixture("join-meeting.json")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["room_url"], json!(m.room_url));
}

#[tokio::test]
async fn joining_an_inactive_or_ended_meeting_is_400_and_unknown_ones_404() {
    let w = with_daily(world(), real_daily());
    put_room(&w, room("r1", "team-standup", None, false, 1));
    let ended = Meeting {
        end_date: Utc::now() - chrono::Duration::minutes(1),
        start_date: Utc::now() - chrono::Duration::hours(1),
        ..daily_meeting()
    };
    w.meetings.insert(ended);
    let e = fixture("join-meeting.json");
    let not_active = (400, json!({"detail": "Meeting is not active"}));
    assert_eq!(call(&w, &e).await, not_active);

    w.meetings.insert(Meeting {
        is_active: false,
        ..daily_meeting()
    });
    assert_eq!(call(&w, &e).await, not_active);

    let unknown = with_path_param(e.clone(), "meeting_id", "nope");
    assert_eq!(
        call(&w, &unknown).await,
        (404, json!({"detail": "Meeting not found"}))
    );
    let no_room = with_path_param(e, "room_name", "nobody");
    assert_eq!(
        call(&w, &no_room).await,
        (404, json!({"detail": "Room not found"}))
    );
}

#[tokio::test]
async fn deactivation_by_the_owner_makes_the_next_get_or_create_start_a_new_meeting() {
    let w = jwt_world();
    put_room(&w, room("r1", "team-standup", Some("alice"), false, 1));
    let (status, first) = call(&w, &as_user(fixture("room-meeting.json"), "alice")).await;
    assert_eq!(status, 200, "{first}");
    let id = first["id"].as_str().unwrap();
    let e = with_path_param(fixture("deactivate-meeting.json"), "meeting_id", id);

    let (status, body) = call(&w, &as_user(e.clone(), "bob")).await;
    assert_eq!(
        (status, body),
        (403, json!({"detail": "Only the room owner can do this"}))
    );
    assert_eq!(
        call(&w, &e).await,
        (401, json!({"detail": "Not authenticated"})),
        "an anonymous caller is asked to sign in"
    );
    let (status, body) = call(&w, &as_user(e.clone(), "alice")).await;
    assert_eq!((status, body), (200, json!({"status": "success"})));

    let (_, second) = call(&w, &as_user(fixture("room-meeting.json"), "alice")).await;
    assert_ne!(second["id"], first["id"]);
    let unknown = with_path_param(e, "meeting_id", "nope");
    assert_eq!(call(&w, &as_user(unknown, "alice")).await.0, 404);
}

#[tokio::test]
async fn without_accounts_anyone_may_deactivate() {
    let w = world();
    put_room(&w, room("r1", "team-standup", Some("alice"), false, 1));
    put_meeting(&w, &daily_meeting()).await;
    let (status, _) = call(&w, &fixture("deactivate-meeting.json")).await;
    assert_eq!(status, 200);
    let (_, active) = call(&w, &fixture("active-meetings.json")).await;
    assert_eq!(active, json!([]));
}

#[tokio::test]
async fn manual_recording_start_uses_the_deterministic_instance_id_once() {
    let daily = Arc::new(FakeDaily::default());
    let w = with_daily(jwt_world(), daily.clone());
    put_room(&w, room("r1", "team-standup", Some("alice"), false, 1));
    let m = daily_meeting();
    put_meeting(&w, &m).await;
    let e = as_user(fixture("start-recording.json"), "alice");

    assert_eq!(call(&w, &e).await, (200, json!({"status": "ok"})));
    assert_eq!(
        *daily.starts.lock().unwrap(),
        vec![(
            m.room_name.clone(),
            RecordingKind::Cloud,
            recording_instance_id(&m.id, RecordingKind::Cloud)
        )]
    );
    assert_eq!(
        call(&w, &e).await,
        (200, json!({"status": "already_active"}))
    );
    assert_eq!(daily.starts.lock().unwrap().len(), 1);

    let raw = with_body(e, r#"{"type": "raw-tracks"}"#);
    assert_eq!(call(&w, &raw).await, (200, json!({"status": "ok"})));
    assert_eq!(daily.starts.lock().unwrap()[1].1, RecordingKind::RawTracks);
}

#[tokio::test]
async fn manual_recording_start_refuses_others_bad_bodies_and_non_daily_meetings() {
    let daily = Arc::new(FakeDaily::default());
    let w = with_daily(jwt_world(), daily.clone());
    put_room(&w, room("r1", "team-standup", Some("alice"), false, 1));
    put_meeting(
        &w,
        &Meeting {
            id: FIXTURE_MEETING_ID.into(),
            ..sample_meeting()
        },
    )
    .await;
    let e = fixture("start-recording.json");
    assert_eq!(call(&w, &as_user(e.clone(), "bob")).await.0, 403);
    assert_eq!(call(&w, &e).await.0, 401);
    for bad in [r#"{"type": "local"}"#, r#"{}"#, "not json"] {
        let (status, _) = call(&w, &as_user(with_body(e.clone(), bad), "alice")).await;
        assert_eq!(status, 422, "{bad}");
    }
    assert_eq!(
        call(&w, &as_user(e.clone(), "alice")).await,
        (
            400,
            json!({"detail": "Meeting is not an active Daily meeting"})
        )
    );
    let unknown = with_path_param(e, "meeting_id", "nope");
    assert_eq!(call(&w, &as_user(unknown, "alice")).await.0, 404);
    assert!(daily.starts.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_daily_refusal_is_502_naming_daily_without_its_answer() {
    let daily = Arc::new(FakeDaily {
        fail: true,
        ..Default::default()
    });
    let w = with_daily(world(), daily);
    put_room(&w, room("r1", "team-standup", None, false, 1));
    put_meeting(&w, &daily_meeting()).await;
    let (status, body) = call(&w, &fixture("start-recording.json")).await;
    assert_eq!(status, 502);
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("Daily"), "{detail}");
    assert!(!detail.contains("internals"), "{detail}");
    assert!(w
        .meetings
        .get(FIXTURE_MEETING_ID)
        .await
        .unwrap()
        .unwrap()
        .recordings_started
        .is_empty());
}

/// Flags that a test switches at will, as an operator switches the stored ones.
struct SwitchableFlags(Mutex<Result<shared::config::Flags, String>>);

#[async_trait]
impl shared::flags::FlagSource for SwitchableFlags {
    async fn current(&self) -> StoreResult<shared::config::Flags> {
        self.0
            .lock()
            .unwrap()
            .clone()
            .map_err(shared::store::StoreError::Other)
    }
}

#[tokio::test]
async fn rooms_show_and_new_meetings_use_the_platform_of_the_current_flags() {
    let rooms = Arc::new(MemoryRooms::default());
    rooms
        .rooms
        .lock()
        .unwrap()
        .push(room(FIXTURE_ROOM_ID, "team-standup", None, false, 1));
    // Each platform its own mock, to see which one a meeting was made on.
    let (on_daily, on_whereby) = (Arc::new(MockClient::new()), Arc::new(MockClient::new()));
    let registry = PlatformRegistry::empty()
        .with(Platform::Daily, on_daily.clone() as Arc<dyn VideoPlatform>)
        .with(
            Platform::Whereby,
            on_whereby.clone() as Arc<dyn VideoPlatform>,
        );
    let meetings = Arc::new(MemoryMeetings::default());
    let flags = Arc::new(SwitchableFlags(Mutex::new(Ok(Default::default()))));
    let deps = Arc::new(
        Deps::new(
            Arc::new(config(&[])),
            rooms,
            meetings.clone(),
            Arc::new(MemoryConsents::default()),
            Arc::new(registry),
        )
        .unwrap()
        .with_flags(flags.clone()),
    );
    let (_, body) = send(&deps, &fixture("get-room-by-name.json")).await;
    assert_eq!(body["platform"], "whereby");

    *flags.0.lock().unwrap() = Ok(shared::config::Flags {
        daily_migration_enabled: true,
        daily_migration_room_ids: [FIXTURE_ROOM_ID.to_owned()].into(),
        default_video_platform: Platform::Whereby,
    });
    for fixture_name in ["get-room-by-name.json", "get-room.json"] {
        let (status, body) = send(&deps, &fixture(fixture_name)).await;
        assert_eq!(
            (status, &body["platform"]),
            (200, &json!("daily")),
            "{fixture_name}"
        );
    }
    let (status, m) = send(&deps, &fixture("room-meeting.json")).await;
    assert_eq!(status, 200, "{m}");
    assert_eq!(created_rooms(&on_daily).len(), 1);
    assert!(created_rooms(&on_whereby).is_empty());

    // Rolled back: the room shows Whereby at once; its active meeting stays where it is.
    *flags.0.lock().unwrap() = Ok(Default::default());
    let (_, body) = send(&deps, &fixture("get-room-by-name.json")).await;
    assert_eq!(body["platform"], "whereby");
    let (_, again) = send(&deps, &fixture("room-meeting.json")).await;
    assert_eq!(again["id"], m["id"]);
    assert!(created_rooms(&on_whereby).is_empty());
}

#[tokio::test]
async fn unreadable_flags_are_a_503_and_no_meeting_is_made() {
    let w = world();
    w.rooms
        .rooms
        .lock()
        .unwrap()
        .push(room("r1", "team-standup", None, false, 1));
    let flags = Arc::new(SwitchableFlags(Mutex::new(Err(
        "config table unreachable".into()
    ))));
    let deps = Arc::new(
        Deps::new(
            w.deps.config.clone(),
            w.rooms.clone(),
            w.meetings.clone(),
            w.consents.clone(),
            w.deps.platforms.clone(),
        )
        .unwrap()
        .with_flags(flags),
    );
    let (status, body) = send(&deps, &fixture("room-meeting.json")).await;
    assert_eq!(
        (status, body),
        (
            503,
            json!({"detail": "The database is unavailable, try again shortly"})
        )
    );
    assert!(created_rooms(&w.mock).is_empty());
}

#[tokio::test]
async fn the_openapi_document_is_served_as_json_to_anyone() {
    let w = jwt_world();
    let mut e = fixture("list-rooms.json");
    e["rawPath"] = json!("/v1/openapi.json");
    e["requestContext"]["http"]["path"] = json!("/v1/openapi.json");
    e["routeKey"] = json!("GET /v1/openapi.json");
    e["rawQueryString"] = json!("");
    e["queryStringParameters"] = Value::Null;
    let (status, doc) = call(&w, &e).await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/v1/rooms"]["get"].is_object());
}
