//! The room page in a real browser (Debian's headless Chromium, `scripts/ensure-chromium`), with
//! fake daily-js and Whereby scripts that record calls, and a front server that fails the test on
//! any request addressed off loopback. Screenshots of each state land in
//! `target/room-page-screenshots/`.
//!
//! The stack under test is started in one place, [`Stack::start`]. Until the API routes the page
//! calls (`GET /v1/rooms/name/{name}`, meeting get-or-create, join, consent) are served by
//! `reflector-local`, it is a loopback server with `room_page::router()` and stub JSON routes of
//! the same shapes; switching to reflector-local changes `Stack` alone.

mod browser;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::Json;
use browser::{Browser, Front, ENTER, TAB};
use http::StatusCode;
use serde_json::{json, Value};

/// One browser at a time: Chromium is heavy and the machines have two cores.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[derive(Clone)]
struct RoomSpec {
    name: &'static str,
    platform: &'static str,
    recording_type: &'static str,
    skip_consent: bool,
    /// Whether the browser's user owns the room (Whereby: gets `host_room_url`).
    owned: bool,
}

impl RoomSpec {
    fn new(name: &'static str, platform: &'static str) -> Self {
        RoomSpec {
            name,
            platform,
            recording_type: "cloud",
            skip_consent: false,
            owned: false,
        }
    }
}

#[derive(Default)]
struct StubApi {
    rooms: HashMap<String, RoomSpec>,
    /// (meeting id, consent_given) for every consent posted, in order.
    consents: Vec<(String, bool)>,
}

type Shared = Arc<Mutex<StubApi>>;

/// The stack the page runs against, plus the front server the browser talks to.
struct Stack {
    front: Front,
    api: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl Stack {
    async fn start(rooms: &[RoomSpec]) -> Stack {
        let api: Shared = Arc::new(Mutex::new(StubApi {
            rooms: rooms
                .iter()
                .map(|r| (r.name.to_owned(), r.clone()))
                .collect(),
            consents: Vec::new(),
        }));
        let stub = axum::Router::new()
            .route("/v1/rooms/name/{name}", get(stub_room))
            .route("/v1/rooms/{name}/meeting", post(stub_meeting))
            .route("/v1/rooms/{name}/meetings/{id}/join", post(stub_join))
            .route("/v1/meetings/{id}/consent", post(stub_consent))
            .with_state(api.clone());
        let app = room_page::router().merge(stub);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Stack {
            front: Front::start(&upstream).await,
            api,
            server,
        }
    }

    fn page(&self, room: &str) -> String {
        self.front.url(&format!("/{room}"))
    }

    /// The consents stored for `meeting_id`, in the order they were posted.
    fn consents(&self, meeting_id: &str) -> Vec<bool> {
        let api = self.api.lock().unwrap();
        api.consents
            .iter()
            .filter(|(id, _)| id == meeting_id)
            .map(|(_, given)| *given)
            .collect()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn meeting_id(room: &str) -> String {
    format!("meeting-of-{room}")
}

fn meeting_json(room: &RoomSpec) -> Value {
    let (room_url, host_room_url) = match room.platform {
        "daily" => (
            format!("https://reflector.daily.co/{}", room.name),
            String::new(),
        ),
        "whereby" => (
            format!("https://reflector.whereby.com/{}-4f2a", room.name),
            if room.owned {
                format!(
                    "https://reflector.whereby.com/{}-4f2a?roomKey=host",
                    room.name
                )
            } else {
                String::new()
            },
        ),
        _ => (format!("https://mock.video/{}", room.name), String::new()),
    };
    json!({
        "id": meeting_id(room.name), "room_name": room.name, "room_url": room_url,
        "host_room_url": host_room_url, "start_date": "2025-01-01T10:00:00Z",
        "end_date": "2025-01-01T18:00:00Z", "recording_type": room.recording_type,
        "platform": room.platform, "num_clients": 0, "is_active": true
    })
}

fn not_found(what: &str) -> (StatusCode, Json<Value>) {
    (
        StatusCode::NOT_FOUND,
        Json(json!({ "detail": format!("{what} not found") })),
    )
}

async fn stub_room(
    State(api): State<Shared>,
    Path(name): Path<String>,
) -> Result<Json<Value>, (StatusCode, Json<Value>)> {
    let api = api.lock().unwrap();
    let room = api.rooms.get(&name).ok_or_else(|| not_found("Room"))?;
    Ok(Json(json!({
        "id": format!("room-{}", room.name), "name": room.name, "platform": room.platform,
        "recording_type": room.recording_type, "skip_consent": room.skip_consent,
        "recording_trigger": "automatic-2nd-participant", "is_shared": true
    })))
}

async fn stub_meeting(
    State(api): State<Shared>,
    Path(name): Path<String>,
) -> Result<Json<Value>, (StatusCode, Json<Value>)> {
    let api = api.lock().unwrap();
    let room = api.rooms.get(&name).ok_or_else(|| not_found("Room"))?;
    Ok(Json(meeting_json(room)))
}

async fn stub_join(
    State(api): State<Shared>,
    Path((name, id)): Path<(String, String)>,
) -> Result<Json<Value>, (StatusCode, Json<Value>)> {
    let api = api.lock().unwrap();
    let room = api.rooms.get(&name).ok_or_else(|| not_found("Room"))?;
    if id != meeting_id(&name) {
        return Err(not_found("Meeting"));
    }
    let mut meeting = meeting_json(room);
    if room.platform == "daily" {
        meeting["room_url"] = json!(format!("https://reflector.daily.co/{name}?t=token-{id}"));
    }
    Ok(Json(meeting))
}

async fn stub_consent(
    State(api): State<Shared>,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Json<Value>, (StatusCode, Json<Value>)> {
    let given = body["consent_given"].as_bool().ok_or((
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({"detail": "consent_given"})),
    ))?;
    let mut api = api.lock().unwrap();
    api.consents.push((id, given));
    let consent_id = format!("consent-{}", api.consents.len());
    Ok(Json(
        json!({ "status": "success", "consent_id": consent_id }),
    ))
}

/// Loads `room`'s page and waits until the join flow has finished.
async fn open_room(browser: &Browser, stack: &Stack, room: &str) {
    browser.goto(&stack.page(room)).await;
    browser
        .wait_until("document.body.dataset.joining === 'false'")
        .await;
}

async fn calls(browser: &Browser, function: &str) -> Vec<Value> {
    let all = browser.eval("window.__calls || []").await;
    all.as_array()
        .unwrap()
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

#[tokio::test]
async fn daily_room_joins_with_the_token_and_an_accepted_consent_is_posted_once_and_remembered() {
    let _one = ONE_BROWSER.lock().await;
    let stack = Stack::start(&[RoomSpec::new("daily-standup", "daily")]).await;
    let browser = Browser::start(stack.front.addr).await;
    open_room(&browser, &stack, "daily-standup").await;

    let created = calls(&browser, "createFrame").await;
    assert_eq!(created.len(), 1, "{created:?}");
    assert_eq!(created[0]["parent"], "view-call");
    let joined = calls(&browser, "join").await;
    let id = meeting_id("daily-standup");
    assert_eq!(
        joined[0]["options"],
        json!({"url": "https://reflector.daily.co/daily-standup", "token": format!("token-{id}")})
    );

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
    assert_eq!(stack.consents(&id), vec![true]);
    browser.press(&[ENTER]).await; // a second Enter must not post again
    assert_eq!(stack.consents(&id), vec![true]);

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

    // A reload joins again without asking.
    browser.client.refresh().await.unwrap();
    browser
        .wait_until("document.body.dataset.joining === 'false'")
        .await;
    assert_eq!(
        calls(&browser, "join").await.len(),
        1,
        "one join per page load"
    );
    assert!(!consent_dialog_open(&browser).await);
    assert_eq!(stack.consents(&id), vec![true]);

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
    stack.front.assert_nothing_left_loopback();
}

#[tokio::test]
async fn declining_consent_from_the_keyboard_posts_false() {
    let _one = ONE_BROWSER.lock().await;
    let stack = Stack::start(&[RoomSpec::new("daily-decline", "daily")]).await;
    let browser = Browser::start(stack.front.addr).await;
    open_room(&browser, &stack, "daily-decline").await;
    assert!(consent_dialog_open(&browser).await);
    browser.press(&[TAB, ENTER]).await;
    browser
        .wait_until("!document.getElementById('consent').open")
        .await;
    assert_eq!(stack.consents(&meeting_id("daily-decline")), vec![false]);
    browser.close().await;
    stack.front.assert_nothing_left_loopback();
}

#[tokio::test]
async fn whereby_room_embeds_the_room_url_and_the_owner_gets_the_host_url() {
    let _one = ONE_BROWSER.lock().await;
    let guest = RoomSpec {
        recording_type: "local",
        ..RoomSpec::new("whereby-guest", "whereby")
    };
    let owned = RoomSpec {
        owned: true,
        skip_consent: true,
        ..RoomSpec::new("whereby-owned", "whereby")
    };
    let stack = Stack::start(&[guest, owned]).await;
    let browser = Browser::start(stack.front.addr).await;

    open_room(&browser, &stack, "whereby-guest").await;
    let embeds = calls(&browser, "whereby-embed").await;
    assert_eq!(
        embeds,
        vec![
            json!({"fn": "whereby-embed", "room": "https://reflector.whereby.com/whereby-guest-4f2a"})
        ]
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

    open_room(&browser, &stack, "whereby-owned").await;
    let embeds = calls(&browser, "whereby-embed").await;
    assert_eq!(
        embeds[0]["room"],
        "https://reflector.whereby.com/whereby-owned-4f2a?roomKey=host"
    );
    assert!(
        !consent_dialog_open(&browser).await,
        "skip_consent asks nothing"
    );
    assert!(stack.consents(&meeting_id("whereby-owned")).is_empty());

    browser.close().await;
    stack.front.assert_nothing_left_loopback();
}

#[tokio::test]
async fn skip_consent_and_non_cloud_daily_rooms_never_ask() {
    let _one = ONE_BROWSER.lock().await;
    let skip = RoomSpec {
        skip_consent: true,
        ..RoomSpec::new("daily-skip", "daily")
    };
    let local = RoomSpec {
        recording_type: "none",
        ..RoomSpec::new("daily-none", "daily")
    };
    let stack = Stack::start(&[skip, local]).await;
    let browser = Browser::start(stack.front.addr).await;
    for room in ["daily-skip", "daily-none"] {
        open_room(&browser, &stack, room).await;
        assert_eq!(calls(&browser, "join").await.len(), 1, "{room}");
        assert!(!consent_dialog_open(&browser).await, "{room}");
        assert!(stack.consents(&meeting_id(room)).is_empty(), "{room}");
    }
    browser.close().await;
    stack.front.assert_nothing_left_loopback();
}

#[tokio::test]
async fn mock_room_shows_the_local_placeholder_whose_leave_returns_to_the_left_view() {
    let _one = ONE_BROWSER.lock().await;
    let stack = Stack::start(&[RoomSpec::new("mock-room", "mock")]).await;
    let browser = Browser::start(stack.front.addr).await;
    open_room(&browser, &stack, "mock-room").await;
    // Mock meetings record to the cloud here, so the consent comes first.
    browser.press(&[ENTER]).await;
    browser
        .wait_until("!document.getElementById('consent').open")
        .await;
    browser
        .wait_until("(() => { const d = document.querySelector('#view-call iframe').contentDocument; return !!d && !!d.getElementById('leave'); })()")
        .await;
    assert_eq!(
        browser
            .eval("document.querySelector('#view-call iframe').contentDocument.getElementById('room-url').textContent")
            .await,
        "https://mock.video/mock-room"
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
    stack.front.assert_nothing_left_loopback();
}

#[tokio::test]
async fn unknown_rooms_and_reserved_paths_show_the_not_found_page() {
    let _one = ONE_BROWSER.lock().await;
    let stack = Stack::start(&[]).await;
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

    browser.goto(&stack.page("healthz")).await;
    assert_eq!(browser.eval("document.title").await, "Room not found");
    browser.close().await;
    stack.front.assert_nothing_left_loopback();
}
