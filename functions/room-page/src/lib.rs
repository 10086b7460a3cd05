//! The room page, `GET /{room_name}`: one HTML page whose small script gets the room, gets or
//! creates its meeting, joins it and mounts the call UI of the meeting's platform (DESIGN.md
//! section 12). Its static files, the vendored Daily and Whereby SDKs included, are embedded at
//! compile time from `static/` (the one copy) and served under `/assets/<version>/`, where the
//! version is a hash of all of them: a change to any file changes every asset URL, so assets can
//! be cached for a year while the page itself is never cached.
//!
//! The router needs no AWS clients and no configuration: the same [`router`] is served by
//! `lambda_http` in Lambda and merged into `reflector-local`.

use std::sync::LazyLock;

use axum::body::Body;
use axum::extract::Path;
use axum::routing::on;
use axum::Router;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Method, Response, StatusCode};
use sha2::{Digest, Sha256};
use shared::http::Route;

/// Limits what the page may load: scripts only from our origin (the SDKs are vendored), frames
/// only from Daily, Whereby and ourselves (the mock platform's placeholder). Inline styles are
/// allowed because both SDKs style the frames they create from script.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; media-src 'self' blob:; \
connect-src 'self' https://*.daily.co wss://*.daily.co; \
frame-src 'self' https://*.daily.co https://*.whereby.com; \
object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'";

/// Versioned assets never change under their URL.
pub const ASSET_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";
/// The page carries the current asset version and must be fetched fresh each time.
pub const PAGE_CACHE_CONTROL: &str = "no-store";

/// First path segments that belong to the API or to the assets, never to a room.
pub const RESERVED_NAMES: &[&str] = &["v1", "assets", "healthz", "openapi", "api", "static"];

struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $content_type:literal) => {
        Asset {
            path: $path,
            content_type: $content_type,
            body: include_bytes!(concat!("../static/", $path)),
        }
    };
}

const TEXT: &str = "text/plain; charset=utf-8";

static ASSETS: &[Asset] = &[
    asset!("room.js", "text/javascript; charset=utf-8"),
    asset!("room.css", "text/css; charset=utf-8"),
    asset!("mock-call.html", "text/html; charset=utf-8"),
    asset!("mock-call.js", "text/javascript; charset=utf-8"),
    asset!("vendor/daily-js/daily.js", "text/javascript; charset=utf-8"),
    asset!("vendor/daily-js/LICENSE", "text/plain; charset=utf-8"),
    asset!(
        "vendor/whereby-browser-sdk/v3-embed.js",
        "text/javascript; charset=utf-8"
    ),
    asset!(
        "vendor/whereby-browser-sdk/LICENSE",
        "text/plain; charset=utf-8"
    ),
];

/// The hash of every asset's path and bytes, shortened: the `<version>` in `/assets/<version>/`.
pub fn asset_version() -> &'static str {
    static VERSION: LazyLock<String> = LazyLock::new(|| {
        let mut hash = Sha256::new();
        for asset in ASSETS {
            hash.update(asset.path.as_bytes());
            hash.update([0]);
            hash.update((asset.body.len() as u64).to_le_bytes());
            hash.update(asset.body);
        }
        hex::encode(&hash.finalize()[..6])
    });
    &VERSION
}

/// Where the current assets are served, e.g. `/assets/3f2a9c01b7de`.
pub fn asset_base() -> String {
    format!("/assets/{}", asset_version())
}

fn with_asset_base(template: &str) -> String {
    template.replace("{{ASSETS}}", &asset_base())
}

static ROOM_PAGE: LazyLock<String> =
    LazyLock::new(|| with_asset_base(include_str!("../static/room.html")));
static NOT_FOUND_PAGE: LazyLock<String> =
    LazyLock::new(|| with_asset_base(include_str!("../static/not-found.html")));

/// Every route of the function, as API Gateway routes them to it (template.yaml's HttpApi
/// events). The assets route is greedy: API Gateway's `{proxy+}` is axum's `{*proxy}`.
pub const ROUTES: &[Route<()>] = &[
    Route {
        method: Method::GET,
        path: "/{room_name}",
        handler: |m| on(m, page),
    },
    Route {
        method: Method::GET,
        path: "/assets/{version}/{*proxy}",
        handler: |m| on(m, asset),
    },
];

/// The page and its assets. Carries no fallback, so it merges into a larger router.
pub fn router() -> Router {
    shared::http::router(ROUTES, ())
}

/// Whether `/{name}` is a room page: a valid room name that is not one of [`RESERVED_NAMES`].
/// Whether the room exists is the page's question to the API, answered in the browser.
pub fn is_room_path(name: &str) -> bool {
    !RESERVED_NAMES.contains(&name) && shared::domain::RoomName::parse(name).is_ok()
}

async fn page(Path(room_name): Path<String>) -> Response<Body> {
    if is_room_path(&room_name) {
        html(StatusCode::OK, ROOM_PAGE.as_str())
    } else {
        not_found_page()
    }
}

async fn asset(Path((version, path)): Path<(String, String)>) -> Response<Body> {
    let found = ASSETS.iter().find(|asset| asset.path == path);
    match found {
        Some(asset) if version == asset_version() => {
            let mut response = response(StatusCode::OK, asset.content_type, asset.body);
            set(&mut response, CACHE_CONTROL, ASSET_CACHE_CONTROL);
            if asset.content_type.starts_with("text/html") {
                set_page_security(&mut response);
            }
            response
        }
        // An old page asking for an asset of another version: not cached, so a fresh page works.
        _ => {
            let mut response = response(StatusCode::NOT_FOUND, TEXT, b"asset not found\n");
            set(&mut response, CACHE_CONTROL, PAGE_CACHE_CONTROL);
            response
        }
    }
}

/// The page shown for paths that cannot be a room (reserved or invalid names), status 404.
pub fn not_found_page() -> Response<Body> {
    html(StatusCode::NOT_FOUND, NOT_FOUND_PAGE.as_str())
}

fn html(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = response(status, "text/html; charset=utf-8", body.as_bytes());
    set(&mut response, CACHE_CONTROL, PAGE_CACHE_CONTROL);
    set_page_security(&mut response);
    response
}

fn set_page_security(response: &mut Response<Body>) {
    set(
        response,
        http::header::CONTENT_SECURITY_POLICY,
        CONTENT_SECURITY_POLICY,
    );
    set(
        response,
        http::header::REFERRER_POLICY,
        "strict-origin-when-cross-origin",
    );
}

fn response(status: StatusCode, content_type: &'static str, body: &'static [u8]) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    set(&mut response, CONTENT_TYPE, content_type);
    set(
        &mut response,
        http::header::X_CONTENT_TYPE_OPTIONS,
        "nosniff",
    );
    response
}

fn set(response: &mut Response<Body>, name: http::HeaderName, value: &'static str) {
    response
        .headers_mut()
        .insert(name, HeaderValue::from_static(value));
}

#[cfg(test)]
mod tests;
