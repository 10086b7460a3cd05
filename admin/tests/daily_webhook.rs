//! `reflector-admin daily webhook ...` against a fake Daily API that expects exactly the
//! documented requests (video-platform-apis.md A4) and nothing else.

mod support;

use base64::Engine;
use serde_json::{json, Value};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use reflector_tests::platforms::DAILY_KEY;
use shared::webhook::daily::HANDLED_EVENT_TYPES;
use support::admin;

const UUID: &str = "0b4e4c7c-5eaf-46fe-990b-a3752f5684f5";
const HOOK_URL: &str = "https://api.example.com/v1/daily_webhook";

fn vars(daily: &MockServer) -> Vec<(String, String)> {
    vec![
        ("DAILY_API_URL".into(), format!("{}/v1", daily.uri())),
        ("DAILY_API_KEY".into(), DAILY_KEY.into()),
    ]
}

fn auth() -> wiremock::matchers::HeaderExactMatcher {
    header("authorization", format!("Bearer {DAILY_KEY}").as_str())
}

fn webhook(state: &str, hmac: &str, failed: u64) -> Value {
    json!({
        "uuid": UUID,
        "url": HOOK_URL,
        "hmac": hmac,
        "basicAuth": null,
        "retryType": "circuit-breaker",
        "eventTypes": HANDLED_EVENT_TYPES,
        "state": state,
        "failedCount": failed,
        "lastMomentPushed": null,
        "domainId": "dom",
        "createdAt": "2026-01-02T03:04:05.000Z",
        "updatedAt": "2026-01-02T03:04:05.000Z"
    })
}

/// The create request's body, as the fake received it.
async fn create_body(daily: &MockServer) -> Value {
    let requests: Vec<Request> = daily.received_requests().await.unwrap_or_default();
    let create = requests
        .iter()
        .find(|r| r.method.as_str() == "POST" && r.url.path() == "/v1/webhooks")
        .expect("a POST /v1/webhooks");
    serde_json::from_slice(&create.body).unwrap()
}

#[tokio::test]
async fn create_generates_a_secret_subscribes_to_the_handled_events_and_prints_it_once() {
    let daily = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/webhooks"))
        .and(auth())
        .respond_with(|r: &Request| {
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            ResponseTemplate::new(200).set_body_json(webhook(
                "ACTIVE",
                body["hmac"].as_str().unwrap_or(""),
                0,
            ))
        })
        .expect(1)
        .mount(&daily)
        .await;
    let run = admin(
        &vars(&daily),
        &["--json", "daily", "webhook", "create", "--url", HOOK_URL],
    )
    .await;
    let out = run.json();
    let sent = create_body(&daily).await;
    assert_eq!(sent["url"], HOOK_URL);
    assert_eq!(sent["eventTypes"], json!(HANDLED_EVENT_TYPES));
    let secret = sent["hmac"].as_str().unwrap();
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret)
        .expect("the secret is base64");
    assert_eq!(key.len(), 32);
    assert_eq!(out["hmac"], secret);
    assert_eq!(out["store_as"], "DAILY_WEBHOOK_SECRET");
    assert_eq!(out["uuid"], UUID);
    assert_eq!(out["state"], "ACTIVE");

    // In text, the secret is printed once, with where it goes.
    let daily_text = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/webhooks"))
        .and(auth())
        .respond_with(|r: &Request| {
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            ResponseTemplate::new(200).set_body_json(webhook(
                "ACTIVE",
                body["hmac"].as_str().unwrap_or(""),
                0,
            ))
        })
        .expect(1)
        .mount(&daily_text)
        .await;
    let run = admin(
        &vars(&daily_text),
        &["daily", "webhook", "create", "--url", HOOK_URL],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    let secret = create_body(&daily_text).await["hmac"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(run.stdout.matches(&secret).count(), 1, "{}", run.stdout);
    assert!(
        run.stdout.contains("DAILY_WEBHOOK_SECRET"),
        "{}",
        run.stdout
    );
    // Two runs, two different secrets.
    assert_ne!(out["hmac"], secret);
}

#[tokio::test]
async fn create_with_a_given_secret_and_types_sends_them_and_refuses_a_non_base64_one() {
    let daily = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/webhooks"))
        .and(auth())
        .and(body_json(json!({
            "url": HOOK_URL,
            "eventTypes": ["participant.joined", "participant.left"],
            "hmac": "c2VjcmV0",
            "retryType": "exponential",
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(webhook("ACTIVE", "c2VjcmV0", 0)))
        .expect(1)
        .mount(&daily)
        .await;
    let run = admin(
        &vars(&daily),
        &[
            "daily",
            "webhook",
            "create",
            "--url",
            HOOK_URL,
            "--hmac",
            "c2VjcmV0",
            "--event-types",
            "participant.joined,participant.left",
            "--retry-type",
            "exponential",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        !run.stdout.contains("c2VjcmV0"),
        "a given secret is not echoed"
    );

    let bad = admin(
        &vars(&daily),
        &[
            "daily",
            "webhook",
            "create",
            "--url",
            HOOK_URL,
            "--hmac",
            "not base64!",
        ],
    )
    .await;
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(bad.stderr.contains("--hmac"), "{}", bad.stderr);
}

#[tokio::test]
async fn list_rearm_and_delete_make_the_documented_requests_and_print_the_answers() {
    let daily = MockServer::start().await;
    // `list` once, and `rearm` without --uuid once to find the domain's webhook.
    Mock::given(method("GET"))
        .and(path("/v1/webhooks"))
        .and(auth())
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!([webhook("FAILED", "c2VjcmV0", 3)])),
        )
        .expect(2)
        .mount(&daily)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/v1/webhooks/{UUID}")))
        .and(auth())
        .and(body_json(json!({ "url": HOOK_URL })))
        .respond_with(ResponseTemplate::new(200).set_body_json(webhook("ACTIVE", "c2VjcmV0", 0)))
        .expect(1)
        .mount(&daily)
        .await;
    Mock::given(method("DELETE"))
        .and(path(format!("/v1/webhooks/{UUID}")))
        .and(auth())
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"deleted": true, "uuid": UUID})),
        )
        .expect(1)
        .mount(&daily)
        .await;
    let v = vars(&daily);

    let listed = admin(&v, &["--json", "daily", "webhook", "list"])
        .await
        .json();
    assert_eq!(
        listed,
        json!([{
            "uuid": UUID, "url": HOOK_URL, "state": "FAILED", "failedCount": 3,
            "eventTypes": HANDLED_EVENT_TYPES, "retryType": "circuit-breaker",
            "createdAt": "2026-01-02T03:04:05.000Z", "updatedAt": "2026-01-02T03:04:05.000Z",
        }])
    );
    assert!(
        !listed.to_string().contains("c2VjcmV0"),
        "the secret is never listed"
    );

    let rearmed = admin(&v, &["--json", "daily", "webhook", "rearm"])
        .await
        .json();
    assert_eq!(rearmed["state"], "ACTIVE");
    assert_eq!(rearmed["failedCount"], 0);

    let deleted = admin(&v, &["daily", "webhook", "delete", "--uuid", UUID]).await;
    assert_eq!(deleted.code, 0, "{deleted:?}");
    assert!(
        deleted.stdout.contains("\"deleted\":true"),
        "{}",
        deleted.stdout
    );
    // wiremock checks each `expect` when the server is dropped: no other request was made.
}

#[tokio::test]
async fn the_text_list_is_a_table_of_the_webhooks() {
    let daily = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/webhooks"))
        .and(auth())
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!([webhook("FAILED", "c2VjcmV0", 3)])),
        )
        .expect(1)
        .mount(&daily)
        .await;
    let run = admin(&vars(&daily), &["daily", "webhook", "list"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    for column in ["uuid", "url", "state", "failedCount", "eventTypes"] {
        assert!(lines[0].contains(column), "{}", run.stdout);
    }
    for cell in [UUID, HOOK_URL, "FAILED", " 3 ", "participant.joined"] {
        assert!(lines[1].contains(cell), "{cell}: {}", run.stdout);
    }
}

#[tokio::test]
async fn rearm_names_an_unknown_uuid_and_daily_errors_fail_with_its_words() {
    let daily = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/webhooks"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&daily)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/v1/webhooks/nope"))
        .respond_with(ResponseTemplate::new(403).set_body_json(
            json!({"error": "authorization-error", "info": "webhooks need a card on file"}),
        ))
        .mount(&daily)
        .await;
    let v = vars(&daily);
    let run = admin(&v, &["daily", "webhook", "rearm", "--uuid", "nope"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("nope"), "{}", run.stderr);
    let run = admin(&v, &["daily", "webhook", "rearm"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("no webhook"), "{}", run.stderr);
    let run = admin(&v, &["daily", "webhook", "delete", "--uuid", "nope"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("webhooks need a card on file"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn without_an_api_key_the_error_names_the_variable_and_exits_2() {
    let run = admin(&[], &["daily", "webhook", "list"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("DAILY_API_KEY"), "{}", run.stderr);
    let bad = admin(&[], &["daily", "webhook", "delete"]).await;
    assert_eq!(bad.code, 2, "a missing --uuid is a usage error: {bad:?}");
}
