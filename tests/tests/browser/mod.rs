//! Headless Debian Chromium driven over WebDriver (chromedriver + fantoccini), behind a logging
//! front server that every request of the browser goes through.
//!
//! The front server is both the origin the browser opens and its HTTP proxy
//! (`--proxy-server` with `<-loopback>`, so loopback requests are proxied too). It serves the fake
//! SDK scripts in place of the vendored ones, forwards everything else of its own origin to the
//! stack under test, and refuses and logs anything addressed elsewhere, so a test can assert that
//! no request tried to leave the machine. `--host-resolver-rules` makes any name but 127.0.0.1
//! unresolvable in case something bypassed the proxy.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::{Client, ClientBuilder};
use http::StatusCode;
use serde_json::{json, Value};

pub const ENTER: char = '\u{E007}';
pub const TAB: char = '\u{E004}';

const FAKE_DAILY: &str = include_str!("../../fixtures/room-page/fake-daily.js");
const FAKE_WHEREBY: &str = include_str!("../../fixtures/room-page/fake-whereby.js");

/// The front server: what the browser talks to, and the log of what it asked for.
pub struct Front {
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct FrontState {
    own_host: String,
    upstream: String,
    log: Arc<Mutex<Vec<String>>>,
    http: reqwest::Client,
}

impl Front {
    /// Starts a front server forwarding to `upstream` (e.g. `http://127.0.0.1:3000`).
    pub async fn start(upstream: &str) -> Front {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let state = FrontState {
            own_host: addr.to_string(),
            upstream: upstream.trim_end_matches('/').to_owned(),
            log: log.clone(),
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
        };
        let app = axum::Router::new().fallback(front).with_state(state);
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Front { addr, log, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every request the browser made, as `METHOD host path`.
    pub fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Fails the test when any request of the page was addressed to anything but this server on
    /// 127.0.0.1. Every off-loopback request was refused above, so nothing left the machine in
    /// any case; Chromium's own background requests (update checks, sign-in, the default search
    /// engine's preconnect), which survive every flag, are told apart by host: the page's CSP
    /// would block it from loading anything from those hosts anyway.
    pub fn assert_nothing_left_loopback(&self) {
        let own = format!(" {} ", self.addr);
        let foreign: Vec<String> = self
            .requests()
            .into_iter()
            .filter(|line| !line.contains(&own))
            .filter(|line| !CHROMIUM_OWN_HOSTS.iter().any(|host| line.contains(host)))
            .collect();
        assert!(
            foreign.is_empty(),
            "requests that tried to leave the machine: {foreign:#?}"
        );
    }
}

/// Hosts Debian's Chromium calls by itself, whatever the page does.
const CHROMIUM_OWN_HOSTS: &[&str] = &[
    " update.googleapis.com",
    " accounts.google.com",
    " clients2.google.com",
    " start.duckduckgo.com",
    " optimizationguide-pa.googleapis.com",
    " content-autofill.googleapis.com",
];

impl Drop for Front {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn front(State(state): State<FrontState>, request: Request) -> Response {
    let host = request
        .uri()
        .authority()
        .map(|a| a.to_string())
        .or_else(|| {
            request
                .headers()
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    state
        .log
        .lock()
        .unwrap()
        .push(format!("{} {host} {path}", request.method()));
    if host != state.own_host {
        return plain(
            StatusCode::BAD_GATEWAY,
            "off-loopback request refused by the test",
        );
    }
    let bare_path = request.uri().path().to_owned();
    if bare_path.starts_with("/assets/") {
        if bare_path.ends_with("/vendor/daily-js/daily.js") {
            return script(FAKE_DAILY);
        }
        if bare_path.ends_with("/vendor/whereby-browser-sdk/v3-embed.js") {
            return script(FAKE_WHEREBY);
        }
    }
    forward(&state, request, &path).await
}

async fn forward(state: &FrontState, request: Request, path: &str) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 1 << 20).await else {
        return plain(StatusCode::PAYLOAD_TOO_LARGE, "body too large");
    };
    let mut upstream = state
        .http
        .request(parts.method, format!("{}{path}", state.upstream))
        .body(body);
    for (name, value) in &parts.headers {
        if !matches!(
            name.as_str(),
            "host" | "connection" | "proxy-connection" | "content-length"
        ) {
            upstream = upstream.header(name, value);
        }
    }
    let got = match upstream.send().await {
        Ok(got) => got,
        Err(error) => return plain(StatusCode::BAD_GATEWAY, &format!("upstream: {error}")),
    };
    let mut response = Response::builder().status(got.status());
    for (name, value) in got.headers() {
        if !matches!(
            name.as_str(),
            "connection" | "transfer-encoding" | "content-length"
        ) {
            response = response.header(name, value);
        }
    }
    let bytes = got.bytes().await.unwrap_or_default();
    response.body(Body::from(bytes)).unwrap()
}

fn plain(status: StatusCode, text: &str) -> Response {
    Response::builder()
        .status(status)
        .body(Body::from(text.to_owned()))
        .unwrap()
}

fn script(source: &'static str) -> Response {
    Response::builder()
        .header(http::header::CONTENT_TYPE, "text/javascript; charset=utf-8")
        .header(http::header::CACHE_CONTROL, "no-store")
        .body(Body::from(source))
        .unwrap()
}

/// Headless Chromium under chromedriver, with a fresh profile, every request sent to `proxy`.
pub struct Browser {
    pub client: Client,
    driver: Child,
    profile: PathBuf,
}

impl Browser {
    pub async fn start(proxy: SocketAddr) -> Browser {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start chromedriver ({e}): run scripts/ensure-chromium")
            });
        let profile =
            std::env::temp_dir().join(format!("room-page-chromium-{}", uuid::Uuid::new_v4()));
        let args = vec![
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            // Chromium's own background traffic (search-engine preconnect, network time, update
            // checks) would otherwise show up as off-loopback requests that the page never made.
            "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,MediaRouter,Translate,AutofillServerCommunication,PreconnectToSearch".to_owned(),
            "--disable-domain-reliability".to_owned(),
            "--disable-client-side-phishing-detection".to_owned(),
            "--disable-default-apps".to_owned(),
            "--disable-extensions".to_owned(),
            "--no-default-browser-check".to_owned(),
            "--no-pings".to_owned(),
            "--window-size=1280,800".to_owned(),
            format!("--user-data-dir={}", profile.display()),
            format!("--proxy-server=http://{proxy}"),
            "--proxy-bypass-list=<-loopback>".to_owned(),
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1".to_owned(),
        ];
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({
                "binary": chromium_binary(),
                "args": args,
                "prefs": {
                    "net": { "network_prediction_options": 2 },
                    "search": { "suggest_enabled": false },
                },
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            let connected =
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                    .capabilities(capabilities.clone())
                    .connect(&url)
                    .await;
            match connected {
                Ok(client) => break client,
                Err(error) if Instant::now() > deadline => {
                    panic!("no WebDriver session from chromedriver at {url}: {error}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        Browser {
            client,
            driver,
            profile,
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    pub async fn eval(&self, expression: &str) -> Value {
        self.client
            .execute(&format!("return ({expression});"), vec![])
            .await
            .unwrap_or_else(|e| panic!("evaluating {expression}: {e}"))
    }

    /// Waits until `expression` is truthy in the page, at most 10 s.
    pub async fn wait_until(&self, expression: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let value = self.eval(expression).await;
            if value.as_bool() == Some(true) {
                return;
            }
            if Instant::now() > deadline {
                let state = self
                    .eval("{view: document.body.dataset.view, calls: window.__calls || null, text: document.body.innerText}")
                    .await;
                panic!("timed out waiting for {expression}; page: {state:#}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Presses `keys` on whatever has the focus, as a user's keyboard would.
    pub async fn press(&self, keys: &[char]) {
        let mut actions = KeyActions::new("keyboard".to_owned());
        for &key in keys {
            actions = actions
                .then(KeyAction::Down { value: key })
                .then(KeyAction::Up { value: key });
        }
        self.client.perform_actions(actions).await.unwrap();
    }

    /// Saves a screenshot as `target/room-page-screenshots/<name>.png`.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// Ends the WebDriver session, which quits Chromium; dropping then stops chromedriver.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    // Also runs when a test fails before `close`, so no chromedriver outlives its test.
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("room-page-screenshots")
}

fn chromium_binary() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
