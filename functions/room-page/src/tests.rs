use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::*;

struct Got {
    status: StatusCode,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

impl Got {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn get(path: &str) -> Got {
    let request = Request::get(path).body(Body::empty()).unwrap();
    let response = router().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    Got {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes().to_vec(),
    }
}

#[tokio::test]
async fn room_page_is_html_never_cached_with_the_csp() {
    let got = get("/team-standup-2").await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.header("content-type"), "text/html; charset=utf-8");
    assert_eq!(got.header("cache-control"), "no-store");
    assert_eq!(
        got.header("content-security-policy"),
        CONTENT_SECURITY_POLICY
    );
    assert!(got.text().contains(r#"<dialog id="consent""#));
}

#[tokio::test]
async fn page_links_its_script_and_styles_under_the_current_version() {
    let page = get("/standup").await.text();
    let base = asset_base();
    assert!(page.contains(&format!(r#"<script src="{base}/room.js" defer>"#)));
    assert!(page.contains(&format!(r#"href="{base}/room.css""#)));
    assert!(page.contains(&format!(r#"data-assets="{base}""#)));
    assert!(!page.contains("{{ASSETS}}"));
    let script = get(&format!("{base}/room.js")).await;
    assert_eq!(script.status, StatusCode::OK);
    assert_eq!(script.body, include_bytes!("../static/room.js"));
}

#[tokio::test]
async fn versioned_assets_are_cached_for_a_year_as_immutable() {
    let got = get(&format!("{}/room.css", asset_base())).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.header("content-type"), "text/css; charset=utf-8");
    assert_eq!(
        got.header("cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(got.header("x-content-type-options"), "nosniff");
}

#[tokio::test]
async fn assets_of_another_version_are_not_found_and_not_cached() {
    let got = get("/assets/000000000000/room.js").await;
    assert_eq!(got.status, StatusCode::NOT_FOUND);
    assert_eq!(got.header("cache-control"), "no-store");
}

#[tokio::test]
async fn unknown_asset_paths_are_not_found() {
    for path in ["nope.js", "../Cargo.toml", "vendor/daily-js"] {
        let got = get(&format!("{}/{path}", asset_base())).await;
        assert_eq!(got.status, StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn vendored_sdks_are_served_with_their_licences() {
    let base = asset_base();
    let daily = get(&format!("{base}/vendor/daily-js/daily.js")).await;
    assert_eq!(daily.status, StatusCode::OK);
    assert_eq!(
        daily.header("content-type"),
        "text/javascript; charset=utf-8"
    );
    assert!(daily.text().contains("DailyIframe"));
    let whereby = get(&format!("{base}/vendor/whereby-browser-sdk/v3-embed.js")).await;
    assert_eq!(whereby.status, StatusCode::OK);
    // The element name `whereby-embed` is derived from this class name.
    assert!(whereby.text().contains("\"WherebyEmbed\""));
    let daily_licence = get(&format!("{base}/vendor/daily-js/LICENSE")).await;
    assert!(daily_licence.text().contains("BSD 2-Clause"));
    let whereby_licence = get(&format!("{base}/vendor/whereby-browser-sdk/LICENSE")).await;
    assert!(whereby_licence.text().contains("MIT License"));
}

#[test]
fn vendored_sdks_match_the_committed_checksums() {
    let sums = include_str!("../static/vendor/SHA256SUMS");
    let mut checked = 0;
    for line in sums.lines() {
        let (want, path) = line.split_once("  ").unwrap();
        let asset = ASSETS
            .iter()
            .find(|asset| asset.path == format!("vendor/{path}"))
            .unwrap_or_else(|| panic!("{path} is in SHA256SUMS but not served"));
        assert_eq!(hex::encode(Sha256::digest(asset.body)), want, "{path}");
        checked += 1;
    }
    assert_eq!(checked, 4);
}

#[tokio::test]
async fn reserved_and_invalid_names_get_the_not_found_page() {
    for path in [
        "/v1",
        "/assets",
        "/healthz",
        "/Standup",
        "/a_b",
        "/-x",
        "/favicon.ico",
    ] {
        let got = get(path).await;
        assert_eq!(got.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(got.header("cache-control"), "no-store", "{path}");
        assert!(got.text().contains("Room not found"), "{path}");
    }
}

#[test]
fn csp_limits_frames_to_daily_whereby_and_our_origin() {
    let frame_src = CONTENT_SECURITY_POLICY
        .split(';')
        .map(str::trim)
        .find(|d| d.starts_with("frame-src"))
        .unwrap();
    assert_eq!(
        frame_src,
        "frame-src 'self' https://*.daily.co https://*.whereby.com"
    );
    assert!(CONTENT_SECURITY_POLICY.contains("script-src 'self';"));
}

#[tokio::test]
async fn mock_call_placeholder_is_served_with_the_csp() {
    let got = get(&format!("{}/mock-call.html", asset_base())).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(
        got.header("content-security-policy"),
        CONTENT_SECURITY_POLICY
    );
}
