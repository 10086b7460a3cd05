//! The room page in a real browser (Debian's headless Chromium, `scripts/ensure-chromium`)
//! against `reflector-local` on the emulator, with fake Daily and Whereby APIs (wiremock) behind
//! it, fake daily-js and Whereby scripts in the browser that record calls, and a front server
//! that fails the test on any request addressed off loopback. Screenshots of each state land in
//! `target/room-page-screenshots/`.
//!
//! Rooms are created through `POST /v1/rooms`; the platform of every room of a stack is chosen by
//! the migration flags (room ids are known only after creation, so each platform gets a stack
//! of its own); consents are read back from the consents table.

mod browser;
mod support;

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use browser::{Browser, Front, ENTER, TAB};
use reflector_tests::platforms::{user_token, PlatformFakes, DAILY_KEY, TEST_PUBLIC_KEY};
use serde_json::{json, Value};
use shared::config::TableNames;
use support::Stack;

/// One browser at a time: Chromium is heavy and the machines have two cores.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `DAILY_DOMAIN_ID`, so meeting tokens are signed without asking the fake for the domain.
const DAILY_DOMAIN: &str = "room-page-domain";

/// The platform every meeting of a stack gets.
#[derive(Clone, Copy, PartialEq)]
enum Platform {
    Daily,
    Whereby,
    /// No platform keys and no platform chosen: the mock platform, as `scripts/dev` runs.
    Mock,
}

/// A room to create: `POST /v1/rooms` with these fields.
struct RoomSpec {
    name: &'static str,
    recording_type: &'static str,
    skip_consent: bool,
    /// The user whose bearer token creates the room (the stack then checks JWTs).
    owner: Option<&'static str>,
}

impl RoomSpec {
    fn new(name: &'static str) -> RoomSpec {
        RoomSpec {
            name,
            recording_type: "cloud",
            skip_consent: false,
            owner: None,
        }
    }
}

/// A bearer token of `user`, signed with the key the stack trusts.
/// `reflector-local` with the fakes behind it, and the front server the browser talks to.
struct PageStack {
    stack: Stack,
    front: Front,
    _fakes: PlatformFakes,
}

impl PageStack {
    /// A stack whose meetings are all on `platform`, with `rooms` created through the API.
    async fn start(test: &str, platform: Platform, rooms: &[RoomSpec]) -> PageStack {
        let fakes = PlatformFakes::start().await;
        let mut vars = match platform {
            Platform::Mock => Vec::new(),
            Platform::Daily => {
                let mut v = fakes.vars();
                v.push(("DAILY_DOMAIN_ID".into(), DAILY_DOMAIN.to_owned()));
                v.push(("DAILY_MIGRATION_ENABLED".into(), "true".to_owned()));
                v.push(("DEFAULT_VIDEO_PLATFORM".into(), "daily".to_owned()));
                v
            }
            Platform::Whereby => {
                let mut v = fakes.vars();
                v.push(("DAILY_DOMAIN_ID".into(), DAILY_DOMAIN.to_owned()));
                v.push(("DAILY_MIGRATION_ENABLED".into(), "false".to_owned()));
                v.push(("DEFAULT_VIDEO_PLATFORM".into(), "whereby".to_owned()));
                v
            }
        };
        if rooms.iter().any(|r| r.owner.is_some()) {
            vars.push(("AUTH_BACKEND".into(), "jwt".to_owned()));
            vars.push(("AUTH_JWT_PUBLIC_KEY".into(), TEST_PUBLIC_KEY.to_owned()));
        }
        let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let stack = Stack::start(test, &pairs, false, Duration::from_secs(5)).await;
        for room in rooms {
            let body = json!({
                "name": room.name,
                "recording_type": room.recording_type,
                "skip_consent": room.skip_consent,
            });
            let headers: Vec<(&str, String)> = room
                .owner
                .map(|user| {
                    vec![(
                        "authorization",
                        format!("Bearer {}", user_token(user, 3600)),
                    )]
                })
                .unwrap_or_default();
            let (status, created) = stack
                .post("/v1/rooms", &headers, body.to_string().as_bytes())
                .await;
            assert_eq!(status, 200, "create room {}: {created}", room.name);
            assert_eq!(
                (&created["recording_type"], &created["skip_consent"]),
                (&json!(room.recording_type), &json!(room.skip_consent)),
                "POST /v1/rooms keeps recording_type and skip_consent: {created}"
            );
        }
        let front = Front::start(&stack.base).await;
        PageStack {
            stack,
            front,
            _fakes: fakes,
        }
    }

    fn page(&self, room: &str) -> String {
        self.front.url(&format!("/{room}"))
    }

    /// The room's active meeting as an anonymous caller of the API sees it (the one the page
    /// created and joined).
    async fn meeting(&self, room: &str) -> Value {
        let (status, meeting) = self.stack.meeting_json(room).await;
        assert_eq!(status, 200, "meeting of {room}: {meeting}");
        meeting
    }

    /// `consent_given` of every consent stored for `meeting_id` in the consents table.
    async fn consents(&self, meeting_id: &str) -> Vec<bool> {
        let table = TableNames::with_prefix(&self.stack.prefix).meeting_consents;
        let items = self
            .stack
            .aws
            .dynamodb
            .query()
            .table_name(table)
            .key_condition_expression("meeting_id = :m")
            .expression_attribute_values(":m", AttributeValue::S(meeting_id.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .expect("query consents")
            .items
            .unwrap_or_default();
        items
            .iter()
            .map(|item| {
                *item
                    .get("consent_given")
                    .and_then(|v| v.as_bool().ok())
                    .expect("consent_given is stored as a boolean")
            })
            .collect()
    }

    async fn stop(self) {
        self.front.assert_nothing_left_loopback();
        self.stack.stop().await;
    }
}

/// Loads `room`'s page and waits until the join flow has finished.
async fn open_room(browser: &Browser, stack: &PageStack, room: &str) {
    browser.goto(&stack.page(room)).await;
    browser
        .wait_until("document.body.dataset.joining === 'false'")
        .await;
}

async fn calls(browser: &Browser, function: &str) -> Vec<Value> {
    let all = browser.eval("window.__calls || []").await;
    all.as_array()
        .expect("window.__calls is an array")
        .iter()
        .filter(|call| call["fn"] == function)
        .cloned()
        .collect()
}

async fn consent_dialog_open(browser: &Browser) -> bool {
    browser
        .eval("document.getElementById('consent').open")
        .await
        == json!(true)
}

/// The claims of a Daily meeting token, checked against the key the stack signs with.
fn daily_token_claims(token: &str) -> Value {
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.validate_exp = false;
    jsonwebtoken::decode::<Value>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(DAILY_KEY.as_bytes()),
        &validation,
    )
    .unwrap_or_else(|e| panic!("{token} is not a meeting token signed with the Daily key: {e}"))
    .claims
}

#[tokio::test]
async fn daily_room_joins_with_the_token_and_an_accepted_consent_is_posted_once_and_remembered() {
    let _one = ONE_BROWSER.lock().await;
    let stack = PageStack::start(
        "page_daily",
        Platform::Daily,
        &[RoomSpec::new("daily-standup")],
    )
    .await;
    let browser = Browser::start(stack.front.addr).await;
    open_room(&browser, &stack, "daily-standup").await;
    let meeting = stack.meeting("daily-standup").await;
    assert_eq!(meeting["platform"], "daily", "{meeting}");
    let id = meeting["id"].as_str().expect("meeting id").to_owned();

    let created = calls(&browser, "createFrame").await;
    assert_eq!(created.len(), 1, "{created:?}");
    assert_eq!(created[0]["parent"], "view-call");
    let joined = calls(&browser, "join").await;
    assert_eq!(joined.len(), 1, "{joined:?}");
    // The page joins the meeting's room URL, the token taken out of `?t=` and passed apart.
    assert_eq!(joined[0]["options"]["url"], meeting["room_url"]);
    let token = joined[0]["options"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("join without a token: {joined:?}"));
    let claims = daily_token_claims(token);
    assert_eq!(claims["r"], meeting["room_name"], "{claims}");
    assert_eq!(claims["d"], DAILY_DOMAIN, "{claims}");

    // The dialog is modal: the call frame cannot take the focus from it, and Enter answers.
    assert!(consent_dialog_open(&browser).await);
    browser
        .eval("(document.querySelector('#view-call iframe').focus(), true)")
        .await;
    assert_eq!(
        browser.eval("document.activeElement.id").await,
        "consent-accept"
    );
    browser.screenshot("daily-consent-dialog").await;
    browser.press(&[ENTER]).await;
    browser
        .wait_until("!document.getElementById('consent').open")
        .await;
    assert_eq!(stack.consents(&id).await, vec![true]);
    browser.press(&[ENTER]).await; // a second Enter must not post again
    assert_eq!(stack.consents(&id).await, vec![true]);

    browser
        .eval("(window.__fakeDaily.emit('recording-started', {}), true)")
        .await;
    browser
        .wait_until("!document.getElementById('recording').hidden")
        .await;
    browser.screenshot("daily-in-call-recording").await;
    browser
        .eval("(window.__fakeDaily.emit('recording-stopped', {}), true)")
        .await;
    browser
        .wait_until("document.getElementById('recording').hidden")
        .await;

    // A reload joins the same meeting again without asking.
    browser.client.refresh().await.expect("the browser reloads");
    browser
        .wait_until("document.body.dataset.joining === 'false'")
        .await;
    let rejoined = calls(&browser, "join").await;
    assert_eq!(rejoined.len(), 1, "one join per page load");
    assert_eq!(rejoined[0]["options"]["url"], meeting["room_url"]);
    assert!(!consent_dialog_open(&browser).await);
    assert_eq!(stack.consents(&id).await, vec![true]);

    // Leaving shows the "you left" view; Rejoin joins again.
    browser
        .eval("(window.__fakeDaily.emit('left-meeting', {}), true)")
        .await;
    browser
        .wait_until("document.body.dataset.view === 'left'")
        .await;
    assert_eq!(calls(&browser, "destroy").await.len(), 1);
    browser.screenshot("left-meeting").await;
    assert_eq!(browser.eval("document.activeElement.id").await, "rejoin");
    browser.press(&[ENTER]).await;
    browser
        .wait_until(
            "document.body.dataset.view === 'call' && document.body.dataset.joining === 'false'",
        )
        .await;
    assert_eq!(calls(&browser, "join").await.len(), 2);

    browser.close().await;
    stack.stop().await;
}

#[tokio::test]
async fn declining_consent_from_the_keyboard_posts_false() {
    let _one = ONE_BROWSER.lock().await;
    let stack = PageStack::start(
        "page_decline",
        Platform::Daily,
        &[RoomSpec::new("daily-decline")],
    )
    .await;
    let browser = Browser::start(stack.front.addr).await;
    open_room(&browser, &stack, "daily-decline").await;
    assert!(consent_dialog_open(&browser).await);
    browser.press(&[TAB, ENTER]).await;
    browser
        .wait_until("!document.getElementById('consent').open")
        .await;
    let meeting = stack.meeting("daily-decline").await;
    let id = meeting["id"].as_str().expect("meeting id");
    assert_eq!(stack.consents(id).await, vec![false]);
    browser.close().await;
    stack.stop().await;
}

#[tokio::test]
async fn whereby_room_embeds_the_room_url_and_the_owner_gets_the_host_url() {
    let _one = ONE_BROWSER.lock().await;
    // Both rooms belong to alice; the browser is anonymous until it holds her token.
    let guest = RoomSpec {
        recording_type: "local",
        owner: Some("alice"),
        ..RoomSpec::new("whereby-guest")
    };
    let owned = RoomSpec {
        skip_consent: true,
        owner: Some("alice"),
        ..RoomSpec::new("whereby-owned")
    };
    let stack = PageStack::start("page_whereby", Platform::Whereby, &[guest, owned]).await;
    let browser = Browser::start(stack.front.addr).await;

    open_room(&browser, &stack, "whereby-guest").await;
    let meeting = stack.meeting("whereby-guest").await;
    assert_eq!(meeting["platform"], "whereby", "{meeting}");
    let embeds = calls(&browser, "whereby-embed").await;
    assert_eq!(
        embeds,
        vec![json!({"fn": "whereby-embed", "room": meeting["room_url"]})]
    );
    assert!(
        !consent_dialog_open(&browser).await,
        "local recording asks nothing"
    );
    browser
        .eval("(window.__fakeWhereby.emit('recording_status_change', {status: 'recording'}), true)")
        .await;
    browser
        .wait_until("!document.getElementById('recording').hidden")
        .await;
    browser.screenshot("whereby-in-call").await;
    browser
        .eval("(window.__fakeWhereby.emit('leave', {}), true)")
        .await;
    browser
        .wait_until(
            "document.body.dataset.view === 'left' && !document.querySelector('whereby-embed')",
        )
        .await;

    // The page sends the token a Reflector web app on this origin leaves in localStorage.
    browser
        .eval(&format!(
            "(localStorage.setItem('reflector.accessToken', '{}'), true)",
            user_token("alice", 3600)
        ))
        .await;
    open_room(&browser, &stack, "whereby-owned").await;
    let meeting = stack.meeting("whereby-owned").await;
    let room_url = meeting["room_url"].as_str().expect("room_url");
    let embeds = calls(&browser, "whereby-embed").await;
    assert_eq!(embeds[0]["room"], format!("{room_url}?roomKey=host"));
    assert!(
        !consent_dialog_open(&browser).await,
        "skip_consent asks nothing"
    );
    let id = meeting["id"].as_str().expect("meeting id");
    assert!(stack.consents(id).await.is_empty());

    browser.close().await;
    stack.stop().await;
}

#[tokio::test]
async fn skip_consent_and_non_cloud_daily_rooms_never_ask() {
    let _one = ONE_BROWSER.lock().await;
    let skip = RoomSpec {
        skip_consent: true,
        ..RoomSpec::new("daily-skip")
    };
    let none = RoomSpec {
        recording_type: "none",
        ..RoomSpec::new("daily-none")
    };
    let stack = PageStack::start("page_skip", Platform::Daily, &[skip, none]).await;
    let browser = Browser::start(stack.front.addr).await;
    for room in ["daily-skip", "daily-none"] {
        open_room(&browser, &stack, room).await;
        assert_eq!(calls(&browser, "join").await.len(), 1, "{room}");
        assert!(!consent_dialog_open(&browser).await, "{room}");
        let meeting = stack.meeting(room).await;
        assert_eq!(meeting["platform"], "daily", "{meeting}");
        let id = meeting["id"].as_str().expect("meeting id");
        assert!(stack.consents(id).await.is_empty(), "{room}");
    }
    browser.close().await;
    stack.stop().await;
}

#[tokio::test]
async fn mock_room_shows_the_local_placeholder_whose_leave_returns_to_the_left_view() {
    let _one = ONE_BROWSER.lock().await;
    let stack = PageStack::start("page_mock", Platform::Mock, &[RoomSpec::new("mock-room")]).await;
    let browser = Browser::start(stack.front.addr).await;
    open_room(&browser, &stack, "mock-room").await;
    // The room records to the cloud, so the consent comes first.
    assert!(consent_dialog_open(&browser).await);
    browser.press(&[ENTER]).await;
    browser
        .wait_until("!document.getElementById('consent').open")
        .await;
    let meeting = stack.meeting("mock-room").await;
    assert_eq!(meeting["platform"], "mock", "{meeting}");
    let id = meeting["id"].as_str().expect("meeting id");
    assert_eq!(stack.consents(id).await, vec![true]);
    browser
        .wait_until("(() => { const d = document.querySelector('#view-call iframe').contentDocument; return !!d && !!d.getElementById('leave'); })()")
        .await;
    assert_eq!(
        browser
            .eval("document.querySelector('#view-call iframe').contentDocument.getElementById('room-url').textContent")
            .await,
        meeting["room_url"]
    );
    browser
        .eval("(document.querySelector('#view-call iframe').contentDocument.getElementById('record').click(), true)")
        .await;
    browser
        .wait_until("!document.getElementById('recording').hidden")
        .await;
    browser.screenshot("mock-in-call").await;
    browser
        .eval("(document.querySelector('#view-call iframe').contentDocument.getElementById('leave').click(), true)")
        .await;
    browser
        .wait_until(
            "document.body.dataset.view === 'left' && document.getElementById('recording').hidden",
        )
        .await;
    browser.close().await;
    stack.stop().await;
}

#[tokio::test]
async fn unknown_rooms_and_reserved_paths_show_the_not_found_page() {
    let _one = ONE_BROWSER.lock().await;
    let stack = PageStack::start("page_unknown", Platform::Mock, &[]).await;
    let browser = Browser::start(stack.front.addr).await;
    open_room(&browser, &stack, "no-such-room").await;
    assert_eq!(
        browser.eval("document.body.dataset.view").await,
        "not-found"
    );
    assert_eq!(
        browser
            .eval("document.getElementById('missing-name').textContent")
            .await,
        "no-such-room"
    );
    assert!(calls(&browser, "createFrame").await.is_empty());
    browser.screenshot("unknown-room").await;

    for reserved in ["v1", "assets"] {
        browser.goto(&stack.page(reserved)).await;
        assert_eq!(
            browser.eval("document.title").await,
            "Room not found",
            "{reserved}"
        );
    }
    browser.close().await;
    stack.stop().await;
}

/// No browser: the page merged into `reflector-local` leaves the health check and the API
/// where they were.
#[tokio::test]
async fn local_stack_serves_the_page_beside_healthz_and_the_api() {
    let stack = PageStack::start("page_routes", Platform::Mock, &[RoomSpec::new("standup")]).await;
    let http = reqwest::Client::new();
    let get = |path: String| {
        let http = http.clone();
        let url = format!("{}{path}", stack.stack.base);
        async move {
            let response = http.get(url).send().await.expect("request sent");
            let status = response.status().as_u16();
            let content_type = response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            (
                status,
                content_type,
                response.text().await.unwrap_or_default(),
            )
        }
    };

    let (status, content_type, body) = get("/healthz".into()).await;
    assert_eq!((status, content_type.as_str()), (200, "application/json"));
    assert_eq!(
        serde_json::from_str::<Value>(&body).ok(),
        Some(json!({"status": "ok"}))
    );

    let (status, _, body) = get("/v1/rooms/name/standup".into()).await;
    assert_eq!(status, 200, "{body}");
    let room: Value = serde_json::from_str(&body).expect("the API answers JSON");
    assert_eq!(room["name"], "standup");

    let (status, content_type, body) = get("/standup".into()).await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "text/html; charset=utf-8")
    );
    assert!(body.contains(&format!("{}/room.js", room_page::asset_base())));

    let (status, content_type, _) = get(format!("{}/room.js", room_page::asset_base())).await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "text/javascript; charset=utf-8")
    );
    stack.stop().await;
}
