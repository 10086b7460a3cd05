//! Black-box tests of the rooms API through `reflector-local`: HTTP on loopback, the emulator
//! behind it, and fake Daily and Whereby APIs (wiremock) that check each request.

use std::collections::BTreeSet;
use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{json, Value};
use wiremock::matchers::{header, method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use reflector_tests::platforms::{user_token, PlatformFakes, DAILY_KEY, TEST_PUBLIC_KEY};
use reflector_tests::{clients_for, config_with, emulator_endpoint, unique_prefix};
use shared::store::MeetingStore;

struct Api {
    running: local::Running,
    http: reqwest::Client,
    base: String,
    prefix: String,
}

impl Api {
    async fn start(prefix: &str, vars: &[(String, String)]) -> Self {
        Self::start_with(prefix, vars, local::Options::default().request_budget).await
    }

    /// A stack whose API requests may take `request_budget` (the function's timeout in AWS).
    async fn start_with(
        prefix: &str,
        vars: &[(String, String)],
        request_budget: std::time::Duration,
    ) -> Self {
        let endpoint = emulator_endpoint();
        let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let config = config_with(prefix, &endpoint, &pairs);
        let aws = clients_for(&endpoint).await;
        let running = local::start(
            config,
            aws,
            local::Options {
                background: false,
                resource_prefix: prefix.to_owned(),
                request_budget,
                ..Default::default()
            },
        )
        .await
        .expect("local stack starts");
        let base = format!("http://{}", running.addr);
        Self {
            running,
            http: reqwest::Client::new(),
            base,
            prefix: prefix.to_owned(),
        }
    }

    async fn send(
        &self,
        verb: reqwest::Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(verb, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status();
        let bytes = resp.bytes().await.unwrap_or_default();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn create_room(&self, name: &str, token: Option<&str>) -> Value {
        let (s, body) = self
            .send(
                reqwest::Method::POST,
                "/v1/rooms",
                Some(json!({ "name": name })),
                token,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
        body
    }

    async fn meeting(&self, name: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.send(
            reqwest::Method::POST,
            &format!("/v1/rooms/{name}/meeting"),
            None,
            token,
        )
        .await
    }

    async fn meetings_store(&self) -> shared::store::dynamo::DynamoMeetingStore {
        let aws = clients_for(&emulator_endpoint()).await;
        shared::store::dynamo::DynamoMeetingStore::new(
            aws.dynamodb,
            shared::config::TableNames::with_prefix(&self.prefix).meetings,
        )
    }
}

fn vars(fakes: &PlatformFakes, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v = fakes.vars();
    v.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    v
}

fn jwt_vars(fakes: &PlatformFakes) -> Vec<(String, String)> {
    vars(
        fakes,
        &[
            ("AUTH_BACKEND", "jwt"),
            ("AUTH_JWT_PUBLIC_KEY", TEST_PUBLIC_KEY),
        ],
    )
}

#[tokio::test]
async fn rooms_can_be_created_listed_updated_and_deleted() {
    let fakes = PlatformFakes::start().await;
    let api = Api::start(
        &unique_prefix("rooms_crud"),
        &vars(&fakes, &[("PUBLIC_MODE", "true")]),
    )
    .await;
    use reqwest::Method as M;

    let room = api.create_room("weekly-sync", None).await;
    assert_eq!(room["platform"], "whereby");
    assert_eq!(room["recording_trigger"], "automatic-2nd-participant");
    let id = room["id"].as_str().unwrap().to_owned();

    let (s, dup) = api
        .send(
            M::POST,
            "/v1/rooms",
            Some(json!({"name": "weekly-sync"})),
            None,
        )
        .await;
    assert_eq!(
        (s, dup),
        (
            StatusCode::BAD_REQUEST,
            json!({"detail": "Room name is not unique"})
        )
    );

    let (s, patched) = api
        .send(
            M::PATCH,
            &format!("/v1/rooms/{id}"),
            Some(json!({"is_shared": true, "room_mode": "group"})),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{patched}");
    assert_eq!(patched["room_mode"], "group");
    assert_eq!(patched["name"], "weekly-sync");

    let (s, list) = api
        .send(M::GET, "/v1/rooms?page=1&size=10", None, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{list}");
    assert_eq!(list["total"], 1);
    assert_eq!(list["pages"], 1);
    assert_eq!(list["items"][0]["id"], id.as_str());

    let (s, bad) = api.send(M::GET, "/v1/rooms?size=500", None, None).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad["detail"][0]["loc"], json!(["query", "size"]));

    let (s, del) = api
        .send(M::DELETE, &format!("/v1/rooms/{id}"), None, None)
        .await;
    assert_eq!((s, del), (StatusCode::OK, json!({"status": "ok"})));
    let (s, gone) = api
        .send(M::DELETE, &format!("/v1/rooms/{id}"), None, None)
        .await;
    assert_eq!(
        (s, gone),
        (StatusCode::NOT_FOUND, json!({"detail": "Room not found"}))
    );
    let (s, _) = api
        .send(
            M::PATCH,
            &format!("/v1/rooms/{id}"),
            Some(json!({"is_locked": true})),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // The name is free again.
    api.create_room("weekly-sync", None).await;
    api.running.stop().await;
}

#[tokio::test]
async fn invalid_room_fields_are_422_naming_the_field() {
    let fakes = PlatformFakes::start().await;
    let api = Api::start(&unique_prefix("rooms_422"), &vars(&fakes, &[])).await;
    for (body, field, kind) in [
        (json!({}), "name", "missing"),
        (json!({"name": ""}), "name", "string_too_short"),
        (json!({"name": "x".repeat(101)}), "name", "string_too_long"),
        (json!({"name": "Not Usable"}), "name", "value_error"),
        (
            json!({"name": "ok", "recording_type": "tape"}),
            "recording_type",
            "enum",
        ),
        (
            json!({"name": "ok", "room_mode": "huge"}),
            "room_mode",
            "enum",
        ),
        (
            json!({"name": "ok", "recording_trigger": "later"}),
            "recording_trigger",
            "enum",
        ),
        (
            json!({"name": "ok", "is_locked": "perhaps"}),
            "is_locked",
            "bool_parsing",
        ),
        (
            json!({"name": "ok", "zulip_stream": 5}),
            "zulip_stream",
            "string_type",
        ),
    ] {
        let (s, err) = api
            .send(reqwest::Method::POST, "/v1/rooms", Some(body.clone()), None)
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(
            err["detail"][0]["loc"],
            json!(["body", field]),
            "{body}: {err}"
        );
        assert_eq!(err["detail"][0]["type"], kind, "{body}: {err}");
    }
    api.running.stop().await;
}

#[tokio::test]
async fn thirty_concurrent_meeting_calls_share_one_meeting_and_leave_one_platform_room() {
    let fakes = PlatformFakes::start().await;
    let api = Api::start(
        &unique_prefix("meeting_race"),
        &vars(
            &fakes,
            &[
                ("DAILY_MIGRATION_ENABLED", "true"),
                ("DEFAULT_VIDEO_PLATFORM", "daily"),
            ],
        ),
    )
    .await;
    api.create_room("race-room", None).await;
    let api = Arc::new(api);
    let calls = (0..30).map(|_| {
        let api = api.clone();
        tokio::spawn(async move { api.meeting("race-room", None).await })
    });
    let results = futures::future::join_all(calls).await;
    let mut ids = BTreeSet::new();
    let mut room_names = BTreeSet::new();
    for r in results {
        let (s, m) = r.unwrap();
        assert_eq!(s, StatusCode::OK, "{m}");
        assert_eq!(m["platform"], "daily");
        ids.insert(m["id"].as_str().unwrap().to_owned());
        room_names.insert(m["room_name"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
    let live = fakes.live_daily_rooms().await;
    assert_eq!(
        live, room_names,
        "creates minus deletes must be the one meeting's room"
    );
    let creates = fakes.count(&fakes.daily, "POST").await;
    let deletes = fakes.count(&fakes.daily, "DELETE").await;
    assert_eq!(creates - deletes, 1, "creates {creates}, deletes {deletes}");
    let api = Arc::try_unwrap(api).ok().expect("no other holder");
    api.running.stop().await;
}

#[tokio::test]
async fn flags_choose_whereby_daily_or_the_default() {
    let fakes = PlatformFakes::start().await;
    let prefix = unique_prefix("meeting_flags");
    // Migration off: Whereby, even for a listed room.
    let api = Api::start(
        &prefix,
        &vars(&fakes, &[("DEFAULT_VIDEO_PLATFORM", "daily")]),
    )
    .await;
    let listed = api.create_room("listed", None).await;
    api.create_room("unlisted", None).await;
    let listed_id = listed["id"].as_str().unwrap().to_owned();
    api.running.stop().await;
    let api = Api::start(
        &prefix,
        &vars(
            &fakes,
            &[
                ("DAILY_MIGRATION_ROOM_IDS", &listed_id),
                ("DEFAULT_VIDEO_PLATFORM", "daily"),
            ],
        ),
    )
    .await;
    let (_, m) = api.meeting("listed", None).await;
    assert_eq!(m["platform"], "whereby", "{m}");
    assert!(m["room_url"]
        .as_str()
        .unwrap()
        .starts_with("https://fake.whereby.com/"));
    api.running.stop().await;

    // Migration on: a listed room gets Daily, another the default (Whereby here).
    let prefix = unique_prefix("meeting_flags_on");
    let api = Api::start(&prefix, &vars(&fakes, &[])).await;
    let listed = api.create_room("listed", None).await;
    api.create_room("unlisted", None).await;
    let listed_id = listed["id"].as_str().unwrap().to_owned();
    api.running.stop().await;
    let api = Api::start(
        &prefix,
        &vars(
            &fakes,
            &[
                ("DAILY_MIGRATION_ENABLED", "true"),
                ("DAILY_MIGRATION_ROOM_IDS", &listed_id),
                ("DEFAULT_VIDEO_PLATFORM", "whereby"),
            ],
        ),
    )
    .await;
    let (_, daily) = api.meeting("listed", None).await;
    assert_eq!(daily["platform"], "daily", "{daily}");
    assert!(daily["room_url"]
        .as_str()
        .unwrap()
        .starts_with("https://fake.daily.co/"));
    let (_, default) = api.meeting("unlisted", None).await;
    assert_eq!(default["platform"], "whereby", "{default}");
    api.running.stop().await;
}

#[tokio::test]
async fn turning_the_flag_off_keeps_the_active_daily_meeting_and_moves_the_next_to_whereby() {
    let fakes = PlatformFakes::start().await;
    let prefix = unique_prefix("meeting_rollback");
    let on = vars(
        &fakes,
        &[
            ("DAILY_MIGRATION_ENABLED", "true"),
            ("DEFAULT_VIDEO_PLATFORM", "daily"),
        ],
    );
    let api = Api::start(&prefix, &on).await;
    let room = api.create_room("migrating", None).await;
    assert_eq!(room["platform"], "daily");
    let (_, daily) = api.meeting("migrating", None).await;
    assert_eq!(daily["platform"], "daily");
    api.running.stop().await;

    let api = Api::start(
        &prefix,
        &vars(&fakes, &[("DAILY_MIGRATION_ENABLED", "false")]),
    )
    .await;
    let (s, still) = api.meeting("migrating", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(still["id"], daily["id"]);
    assert_eq!(still["platform"], "daily");
    let (s, consent) = api
        .send(
            reqwest::Method::POST,
            &format!("/v1/meetings/{}/consent", daily["id"].as_str().unwrap()),
            Some(json!({"consent_given": true})),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{consent}");
    assert_eq!(consent["status"], "success");

    // The Daily meeting ends; the next one follows the flag.
    api.meetings_store()
        .await
        .deactivate(daily["id"].as_str().unwrap())
        .await
        .unwrap();
    let (_, next) = api.meeting("migrating", None).await;
    assert_eq!(next["platform"], "whereby", "{next}");
    assert_ne!(next["id"], daily["id"]);
    api.running.stop().await;
}

fn daily_default(fakes: &PlatformFakes) -> Vec<(String, String)> {
    vars(
        fakes,
        &[
            ("DAILY_MIGRATION_ENABLED", "true"),
            ("DEFAULT_VIDEO_PLATFORM", "daily"),
        ],
    )
}

/// What a caller must never read in an error: the platform's own words, our error chains,
/// our settings' names.
fn assert_no_internals(detail: &str, platform_text: &str) {
    for leak in [
        platform_text,
        "error sending request",
        "Connection refused",
        "connection failed",
        "HTTP 5",
        "DAILY_",
        "WHEREBY_",
        "API_KEY",
        "API_URL",
    ] {
        assert!(!detail.contains(leak), "{detail:?} contains {leak:?}");
    }
}

#[tokio::test]
async fn a_platform_refusal_is_502_naming_it_and_stores_nothing() {
    let daily = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/rooms"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"error": "invalid-request-error", "info": "exp must be in the future"}),
        ))
        .mount(&daily)
        .await;
    let fakes = PlatformFakes::start().await;
    let mut v = daily_default(&fakes);
    v[0].1 = format!("{}/v1", daily.uri());
    let api = Api::start(&unique_prefix("meeting_502"), &v).await;
    let room = api.create_room("broken", None).await;
    let (s, err) = api.meeting("broken", None).await;
    assert_eq!(s, StatusCode::BAD_GATEWAY);
    assert_eq!(
        err,
        json!({"detail": "Daily could not create the room; try again"})
    );
    assert_no_internals(err["detail"].as_str().unwrap(), "exp must be in the future");
    let active = api
        .meetings_store()
        .await
        .get_active_for_room(room["id"].as_str().unwrap(), chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(active, None);
    api.running.stop().await;
}

#[tokio::test]
async fn a_platform_error_answer_or_an_unreachable_platform_is_502_without_its_text() {
    const PLATFORM_TEXT: &str = "db-shard-7 exploded at 10.1.2.3";
    let broken = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(500)
                .set_body_json(json!({"error": "server-error", "info": PLATFORM_TEXT})),
        )
        .mount(&broken)
        .await;
    Mock::given(method("DELETE"))
        .respond_with(ResponseTemplate::new(500).set_body_string(PLATFORM_TEXT))
        .mount(&broken)
        .await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let unreachable = format!("http://{}/v1", closed.local_addr().unwrap());
    drop(closed);
    let fakes = PlatformFakes::start().await;
    for (case, url) in [
        ("answers 500", format!("{}/v1", broken.uri())),
        ("unreachable", unreachable),
    ] {
        let mut v = daily_default(&fakes);
        v[0].1 = url;
        let api = Api::start(&unique_prefix("meeting_no_leak"), &v).await;
        api.create_room("leaky", None).await;
        let (s, err) = api.meeting("leaky", None).await;
        assert_eq!(s, StatusCode::BAD_GATEWAY, "{case}: {err}");
        assert_eq!(
            err,
            json!({"detail": "Daily could not create the room; try again"}),
            "{case}"
        );
        assert_no_internals(err["detail"].as_str().unwrap(), PLATFORM_TEXT);
        api.running.stop().await;
    }
}

#[tokio::test]
async fn a_platform_slower_than_the_request_budget_is_504_and_its_room_is_deleted() {
    let fakes = PlatformFakes::start().await;
    // Daily takes longer to create the room than the whole request may take; it creates it all
    // the same (the fake answers, late), so the room must be deleted by the name we asked for.
    Mock::given(method("POST"))
        .and(path("/v1/rooms"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "late", "name": "x", "url": "https://x"}))
                .set_delay(std::time::Duration::from_secs(30)),
        )
        .with_priority(1)
        .mount(&fakes.daily)
        .await;
    let api = Api::start_with(
        &unique_prefix("meeting_slow"),
        &daily_default(&fakes),
        std::time::Duration::from_secs(4),
    )
    .await;
    let room = api.create_room("slow", None).await;
    let (s, err) = api.meeting("slow", None).await;
    assert_eq!(s, StatusCode::GATEWAY_TIMEOUT, "{err}");
    assert_eq!(
        err,
        json!({"detail": "Daily did not answer in time to create the room; try again"})
    );
    let requests = fakes.daily.received_requests().await.unwrap();
    let asked: BTreeSet<String> = requests
        .iter()
        .filter(|r| r.method.as_str() == "POST")
        .map(|r| {
            serde_json::from_slice::<Value>(&r.body).unwrap()["name"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(asked.len(), 1, "one room asked for: {asked:?}");
    let deleted: BTreeSet<String> = requests
        .iter()
        .filter(|r| r.method.as_str() == "DELETE")
        .map(|r| r.url.path().trim_start_matches("/v1/rooms/").to_owned())
        .collect();
    assert_eq!(deleted, asked, "the room asked for is deleted");
    let active = api
        .meetings_store()
        .await
        .get_active_for_room(room["id"].as_str().unwrap(), chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(active, None);
    api.running.stop().await;
}

#[tokio::test]
async fn unknown_room_and_meeting_are_404() {
    let fakes = PlatformFakes::start().await;
    let api = Api::start(&unique_prefix("rooms_404"), &vars(&fakes, &[])).await;
    let (s, b) = api.meeting("nobody-here", None).await;
    assert_eq!(
        (s, b),
        (StatusCode::NOT_FOUND, json!({"detail": "Room not found"}))
    );
    let (s, b) = api
        .send(
            reqwest::Method::POST,
            "/v1/meetings/no-such-meeting/consent",
            Some(json!({"consent_given": true})),
            None,
        )
        .await;
    assert_eq!(
        (s, b),
        (
            StatusCode::NOT_FOUND,
            json!({"detail": "Meeting not found"})
        )
    );
    assert_eq!(
        fakes.count(&fakes.daily, "POST").await + fakes.count(&fakes.whereby, "POST").await,
        0
    );
    api.running.stop().await;
}

#[tokio::test]
async fn only_the_owner_may_update_or_delete_a_room_and_sees_the_host_url() {
    let fakes = PlatformFakes::start().await;
    let api = Api::start(&unique_prefix("rooms_owner"), &jwt_vars(&fakes)).await;
    let alice = user_token("alice", 600);
    let mallory = user_token("mallory", 600);
    let room = api.create_room("alices-room", Some(&alice)).await;
    assert_eq!(room["user_id"], "alice");
    let id = room["id"].as_str().unwrap();
    use reqwest::Method as M;

    let (s, b) = api
        .send(
            M::PATCH,
            &format!("/v1/rooms/{id}"),
            Some(json!({"name": "stolen"})),
            Some(&mallory),
        )
        .await;
    assert_eq!(
        (s, b),
        (StatusCode::NOT_FOUND, json!({"detail": "Room not found"}))
    );
    let (s, _) = api
        .send(M::DELETE, &format!("/v1/rooms/{id}"), None, Some(&mallory))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let anonymous = (
        StatusCode::UNAUTHORIZED,
        json!({"detail": "Not authenticated"}),
    );
    let (s, b) = api
        .send(M::DELETE, &format!("/v1/rooms/{id}"), None, None)
        .await;
    assert_eq!((s, b), anonymous);
    let (s, b) = api
        .send(
            M::PATCH,
            &format!("/v1/rooms/{id}"),
            Some(json!({"name": "stolen"})),
            None,
        )
        .await;
    assert_eq!((s, b), anonymous);

    let (s, list) = api.send(M::GET, "/v1/rooms", None, Some(&alice)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["items"], json!([room]), "the room is unchanged");
    let (s, list) = api.send(M::GET, "/v1/rooms", None, Some(&mallory)).await;
    assert_eq!((s, list["total"].clone()), (StatusCode::OK, json!(0)));

    let (_, guest) = api.meeting("alices-room", Some(&mallory)).await;
    assert_eq!(guest["host_room_url"], "");
    let (_, nobody) = api.meeting("alices-room", None).await;
    assert_eq!(nobody["host_room_url"], "");
    let (s, b) = api
        .send(
            M::PATCH,
            &format!("/v1/meetings/{}/deactivate", guest["id"].as_str().unwrap()),
            None,
            None,
        )
        .await;
    assert_eq!((s, b), anonymous);
    let (_, owner) = api.meeting("alices-room", Some(&alice)).await;
    assert_eq!(owner["id"], guest["id"]);
    assert!(owner["host_room_url"]
        .as_str()
        .unwrap()
        .contains("roomKey=host"));
    api.running.stop().await;
}

#[tokio::test]
async fn bad_tokens_are_401_and_anonymous_listing_needs_public_mode() {
    let fakes = PlatformFakes::start().await;
    let api = Api::start(&unique_prefix("rooms_401"), &jwt_vars(&fakes)).await;
    use reqwest::Method as M;
    let (s, b) = api.send(M::GET, "/v1/rooms", None, None).await;
    assert_eq!(
        (s, b),
        (
            StatusCode::UNAUTHORIZED,
            json!({"detail": "Not authenticated"})
        )
    );
    for bad in [user_token("alice", -3600), "garbage".to_owned()] {
        let (s, b) = api
            .send(
                M::POST,
                "/v1/rooms",
                Some(json!({"name": "never"})),
                Some(&bad),
            )
            .await;
        assert_eq!(
            (s, b),
            (
                StatusCode::UNAUTHORIZED,
                json!({"detail": "Invalid authentication"})
            )
        );
    }
    // With accounts, creating a room needs one (the original's `current_user`).
    let (s, b) = api
        .send(
            M::POST,
            "/v1/rooms",
            Some(json!({"name": "anon-room"})),
            None,
        )
        .await;
    assert_eq!(
        (s, b),
        (
            StatusCode::UNAUTHORIZED,
            json!({"detail": "Not authenticated"})
        )
    );
    api.running.stop().await;
}

#[tokio::test]
async fn no_input_makes_the_api_answer_500() {
    let fakes = PlatformFakes::start().await;
    let api = Api::start(
        &unique_prefix("rooms_fuzz"),
        &vars(&fakes, &[("PUBLIC_MODE", "true")]),
    )
    .await;
    let room = api.create_room("fuzz-room", None).await;
    let (_, meeting) = api.meeting("fuzz-room", None).await;
    let paths = [
        ("POST", "/v1/rooms".to_owned()),
        (
            "PATCH",
            format!("/v1/rooms/{}", room["id"].as_str().unwrap()),
        ),
        (
            "POST",
            format!("/v1/meetings/{}/consent", meeting["id"].as_str().unwrap()),
        ),
        ("POST", "/v1/rooms/fuzz-room/meeting".to_owned()),
        ("GET", "/v1/rooms?page=-1&size=abc".to_owned()),
        ("PATCH", format!("/v1/rooms/{}", "x".repeat(3000))),
        (
            "POST",
            format!("/v1/meetings/{}/consent", "%00".repeat(100)),
        ),
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut random = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed & 0xff) as u8
            })
            .collect()
    };
    let bodies: Vec<Vec<u8>> = vec![
        random(64),
        random(4096),
        b"{\"name\": 1, \"is_locked\": [], \"room_mode\": {}}".to_vec(),
        b"{\"consent_given\": \"perhaps\"}".to_vec(),
        b"[1,2,3]".to_vec(),
        b"{\"name\": \"a\"".to_vec(),
        vec![b'{'; 10_000],
        format!("{{\"name\":\"{}\"}}", "n".repeat(200_000)).into_bytes(),
        vec![b' '; 10 * 1024 * 1024 + 1],
    ];
    for (verb, p) in &paths {
        for body in &bodies {
            for ct in [
                "application/json",
                "text/plain",
                "application/octet-stream",
                "multipart/form-data; boundary=x",
            ] {
                let resp = api
                    .http
                    .request(verb.parse().unwrap(), format!("{}{p}", api.base))
                    .header("content-type", ct)
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap();
                let status = resp.status();
                let text = resp.text().await.unwrap_or_default();
                assert!(
                    status.as_u16() < 500,
                    "{verb} {p} {ct} ({} bytes) -> {status} {text}",
                    body.len()
                );
                if body.len() > 64 * 1024 && *verb != "GET" {
                    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{verb} {p}");
                }
            }
        }
    }
    api.running.stop().await;
}

/// Daily settings of the issue-14 tests: every room's meetings on Daily, a known domain id (so a
/// join makes no Daily request at all).
fn daily_jwt_vars(fakes: &PlatformFakes) -> Vec<(String, String)> {
    let mut v = jwt_vars(fakes);
    v.extend(
        [
            ("DAILY_MIGRATION_ENABLED", "true"),
            ("DEFAULT_VIDEO_PLATFORM", "daily"),
            ("DAILY_DOMAIN_ID", "domain-e2e"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    v
}

/// The claims of the `t` parameter of a Daily join URL, verified with the Daily API key.
fn daily_token_claims(room_url: &str) -> Value {
    let url = url::Url::parse(room_url).expect("room_url is a URL");
    let token = url
        .query_pairs()
        .find(|(k, _)| k == "t")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no token in {room_url}"));
    let validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    jsonwebtoken::decode::<Value>(
        &token,
        &jsonwebtoken::DecodingKey::from_secret(DAILY_KEY.as_bytes()),
        &validation,
    )
    .expect("the token verifies with the Daily API key")
    .claims
}

#[tokio::test]
async fn a_daily_join_is_a_self_signed_token_with_owner_rights_for_the_owner_only() {
    let fakes = PlatformFakes::start().await;
    let api = Api::start(&unique_prefix("daily_join"), &daily_jwt_vars(&fakes)).await;
    let alice = user_token("alice", 600);
    let mallory = user_token("mallory", 600);
    api.create_room("alices-daily", Some(&alice)).await;
    let (s, meeting) = api.meeting("alices-daily", Some(&alice)).await;
    assert_eq!(s, StatusCode::OK, "{meeting}");
    assert_eq!(meeting["platform"], "daily");
    let id = meeting["id"].as_str().unwrap();
    let requests_before = fakes.daily.received_requests().await.unwrap().len();
    let join_path = format!("/v1/rooms/alices-daily/meetings/{id}/join");
    use reqwest::Method as M;

    let (s, owner) = api.send(M::POST, &join_path, None, Some(&alice)).await;
    assert_eq!(s, StatusCode::OK, "{owner}");
    assert_eq!(owner["id"], meeting["id"]);
    let claims = daily_token_claims(owner["room_url"].as_str().unwrap());
    assert_eq!(claims["r"], meeting["room_name"]);
    assert_eq!(claims["d"], "domain-e2e");
    assert_eq!(claims["ud"], "alice");
    assert_eq!(claims["o"], true);
    let end = chrono::DateTime::parse_from_rfc3339(meeting["end_date"].as_str().unwrap()).unwrap();
    assert_eq!(claims["exp"], end.timestamp());
    assert!(claims["iat"].as_i64().unwrap() <= chrono::Utc::now().timestamp());
    // The room records to the cloud and asks for consent: Daily's own record button stays off.
    assert_eq!(claims["erui"], false);

    let (s, guest) = api.send(M::POST, &join_path, None, Some(&mallory)).await;
    assert_eq!(s, StatusCode::OK, "{guest}");
    let claims = daily_token_claims(guest["room_url"].as_str().unwrap());
    assert_eq!(claims["ud"], "mallory");
    assert_ne!(claims["o"], true, "a guest is not an owner: {claims}");
    assert_eq!(guest["host_room_url"], "");

    let (s, anonymous) = api.send(M::POST, &join_path, None, None).await;
    assert_eq!(s, StatusCode::OK, "{anonymous}");
    let claims = daily_token_claims(anonymous["room_url"].as_str().unwrap());
    assert!(claims.get("ud").is_none(), "{claims}");
    assert_ne!(claims["o"], true);

    assert_eq!(
        fakes.daily.received_requests().await.unwrap().len(),
        requests_before,
        "a join makes no request to Daily"
    );
    let (s, b) = api
        .send(
            M::POST,
            "/v1/rooms/alices-daily/meetings/no-such-meeting/join",
            None,
            Some(&alice),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
    api.running.stop().await;
}

#[tokio::test]
async fn deactivate_by_the_owner_makes_the_next_get_or_create_a_new_meeting() {
    let fakes = PlatformFakes::start().await;
    let api = Api::start(&unique_prefix("deactivate"), &daily_jwt_vars(&fakes)).await;
    let alice = user_token("alice", 600);
    let mallory = user_token("mallory", 600);
    api.create_room("alices-standup", Some(&alice)).await;
    let (_, first) = api.meeting("alices-standup", Some(&alice)).await;
    let id = first["id"].as_str().unwrap();
    use reqwest::Method as M;
    let deactivate = format!("/v1/meetings/{id}/deactivate");

    let (s, _) = api.send(M::PATCH, &deactivate, None, Some(&mallory)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = api.send(M::PATCH, &deactivate, None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (_, still) = api.meeting("alices-standup", Some(&alice)).await;
    assert_eq!(
        still["id"], first["id"],
        "a refused deactivate changes nothing"
    );

    let (s, b) = api.send(M::PATCH, &deactivate, None, Some(&alice)).await;
    assert_eq!((s, b), (StatusCode::OK, json!({"status": "success"})));
    let (s, next) = api.meeting("alices-standup", Some(&alice)).await;
    assert_eq!(s, StatusCode::OK);
    assert_ne!(next["id"], first["id"], "a new meeting after deactivate");
    let (s, b) = api
        .send(
            M::POST,
            &format!("/v1/rooms/alices-standup/meetings/{id}/join"),
            None,
            Some(&alice),
        )
        .await;
    assert_eq!(
        (s, b),
        (
            StatusCode::BAD_REQUEST,
            json!({"detail": "Meeting is not active"})
        )
    );
    let (s, active) = api
        .send(
            M::GET,
            "/v1/rooms/alices-standup/meetings/active",
            None,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let ids: Vec<&Value> = active
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["id"])
        .collect();
    assert_eq!(ids, vec![&next["id"]]);
    api.running.stop().await;
}

#[tokio::test]
async fn a_manual_recording_start_asks_daily_once_with_the_meetings_instance_id() {
    let fakes = PlatformFakes::start().await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/v1/rooms/[^/]+/recordings/start$"))
        .and(header(
            "authorization",
            format!("Bearer {DAILY_KEY}").as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&fakes.daily)
        .await;
    let api = Api::start(&unique_prefix("manual_start"), &daily_jwt_vars(&fakes)).await;
    let alice = user_token("alice", 600);
    let mallory = user_token("mallory", 600);
    api.create_room("alices-recorded", Some(&alice)).await;
    let (_, meeting) = api.meeting("alices-recorded", Some(&alice)).await;
    let id = meeting["id"].as_str().unwrap();
    use reqwest::Method as M;
    let start = format!("/v1/meetings/{id}/recordings/start");
    let body = Some(json!({"type": "cloud"}));

    let (s, _) = api
        .send(M::POST, &start, body.clone(), Some(&mallory))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, b) = api
        .send(M::POST, &start, Some(json!({"type": "mp3"})), Some(&alice))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let (s, b) = api.send(M::POST, &start, body.clone(), Some(&alice)).await;
    assert_eq!((s, b), (StatusCode::OK, json!({"status": "ok"})));
    let (s, b) = api.send(M::POST, &start, body.clone(), Some(&alice)).await;
    assert_eq!(
        (s, b),
        (StatusCode::OK, json!({"status": "already_active"}))
    );

    let starts: Vec<Value> = fakes
        .daily
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().ends_with("/recordings/start"))
        .map(|r| {
            assert_eq!(
                r.url.path(),
                format!(
                    "/v1/rooms/{}/recordings/start",
                    meeting["room_name"].as_str().unwrap()
                )
            );
            serde_json::from_slice(&r.body).unwrap()
        })
        .collect();
    let instance =
        shared::platform::daily::recording_instance_id(id, shared::domain::RecordingKind::Cloud);
    assert_eq!(
        starts,
        vec![json!({"type": "cloud", "instanceId": instance.to_string()})],
        "one start request, with the meeting's deterministic instance id"
    );
    api.running.stop().await;
}

#[tokio::test]
async fn rooms_are_read_by_id_and_name_and_keep_skip_consent() {
    let fakes = PlatformFakes::start().await;
    let api = Api::start(&unique_prefix("room_reads"), &jwt_vars(&fakes)).await;
    let alice = user_token("alice", 600);
    let mallory = user_token("mallory", 600);
    use reqwest::Method as M;
    let (s, created) = api
        .send(
            M::POST,
            "/v1/rooms",
            Some(json!({"name": "consentless", "skip_consent": true})),
            Some(&alice),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{created}");
    assert_eq!(created["skip_consent"], true);
    let id = created["id"].as_str().unwrap();

    let (s, by_name) = api
        .send(M::GET, "/v1/rooms/name/consentless", None, None)
        .await;
    assert_eq!((s, &by_name), (StatusCode::OK, &created));
    let (s, by_id) = api
        .send(M::GET, &format!("/v1/rooms/{id}"), None, Some(&alice))
        .await;
    assert_eq!((s, &by_id), (StatusCode::OK, &created));
    let (s, _) = api
        .send(M::GET, &format!("/v1/rooms/{id}"), None, Some(&mallory))
        .await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "a private room is not another user's"
    );
    let (s, _) = api
        .send(M::GET, "/v1/rooms/name/no-such-room", None, None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (s, patched) = api
        .send(
            M::PATCH,
            &format!("/v1/rooms/{id}"),
            Some(json!({"skip_consent": false})),
            Some(&alice),
        )
        .await;
    assert_eq!(
        (s, &patched["skip_consent"]),
        (StatusCode::OK, &json!(false))
    );
    let (_, reread) = api
        .send(M::GET, "/v1/rooms/name/consentless", None, None)
        .await;
    assert_eq!(reread["skip_consent"], false);

    api.create_room("other-room", Some(&alice)).await;
    let (_, meeting) = api.meeting("consentless", Some(&alice)).await;
    let mid = meeting["id"].as_str().unwrap();
    let (s, got) = api
        .send(
            M::GET,
            &format!("/v1/rooms/consentless/meetings/{mid}"),
            None,
            None,
        )
        .await;
    assert_eq!((s, &got["id"]), (StatusCode::OK, &meeting["id"]));
    let (s, _) = api
        .send(
            M::GET,
            &format!("/v1/rooms/other-room/meetings/{mid}"),
            None,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "a meeting of another room");
    api.running.stop().await;
}
