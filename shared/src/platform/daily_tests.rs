//! DailyClient against a local fake of Daily's API that checks path, method, bearer token and
//! JSON body, and answers with Daily's response and error shapes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;
use crate::platform::test_support::{fixed_now, key, reject_unexpected, room, settings};

const AUTH: (&str, &str) = ("authorization", "Bearer test-api-key");
const ROOM_NAME: &str = "team-standup-20260102030405";

async fn server() -> MockServer {
    let s = MockServer::start().await;
    reject_unexpected(
        &s,
        json!({"error": "authentication-error", "info": "unexpected request in test"}),
    )
    .await;
    s
}

fn client(server: &MockServer) -> DailyClient {
    DailyClient::new(
        reqwest::Client::new(),
        &format!("{}/v1", server.uri()),
        key(),
        settings(),
    )
    .unwrap()
    .with_clock(fixed_now)
}

fn bucket() -> DailyRecordingsBucket {
    DailyRecordingsBucket {
        bucket_name: "reflector-daily".into(),
        bucket_region: "eu-west-1".into(),
        assume_role_arn: "arn:aws:iam::123456789012:role/daily".into(),
    }
}

fn room_response(name: &str) -> serde_json::Value {
    json!({
        "id": "d61cd7b2-a273-42b4-89bd-be763fd562c1",
        "name": name,
        "api_created": true,
        "privacy": "public",
        "url": format!("https://reflector.daily.co/{name}"),
        "created_at": "2026-01-02T03:04:05.000Z",
        "config": {"exp": 1767351845}
    })
}

fn end_date() -> DateTime<Utc> {
    fixed_now() + chrono::Duration::hours(8)
}

fn expected_create_body() -> serde_json::Value {
    json!({
        "name": ROOM_NAME,
        "privacy": "public",
        "properties": {
            "exp": end_date().timestamp(),
            "enable_chat": true,
            "enable_screenshare": true,
            "start_video_off": false,
            "start_audio_off": false,
            "enable_recording": "cloud",
            "recordings_bucket": {
                "bucket_name": "reflector-daily",
                "bucket_region": "eu-west-1",
                "assume_role_arn": "arn:aws:iam::123456789012:role/daily",
                "allow_api_access": true
            }
        }
    })
}

async fn received_json(server: &MockServer, http_method: &str) -> Vec<serde_json::Value> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == http_method)
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

#[tokio::test]
async fn create_meeting_sends_daily_exactly_the_room_body_and_returns_its_urls() {
    let s = server().await;
    Mock::given(method("POST"))
        .and(path("/v1/rooms"))
        .and(header(AUTH.0, AUTH.1))
        .and(body_json(expected_create_body()))
        .respond_with(ResponseTemplate::new(200).set_body_json(room_response(ROOM_NAME)))
        .expect(1)
        .mount(&s)
        .await;
    let daily = client(&s).with_recordings_bucket(Some(bucket()));

    let m = daily
        .create_meeting("team-standup", end_date(), &room())
        .await
        .unwrap();

    assert_eq!(
        received_json(&s, "POST").await,
        vec![expected_create_body()]
    );
    assert_eq!(m.room_name, ROOM_NAME);
    assert_eq!(m.meeting_id, "d61cd7b2-a273-42b4-89bd-be763fd562c1");
    assert_eq!(
        m.room_url,
        format!("https://reflector.daily.co/{ROOM_NAME}")
    );
    assert_eq!(m.host_room_url, m.room_url);
    assert_eq!(m.platform, Platform::Daily);
    assert_eq!(m.extra_data, room_response(ROOM_NAME));
}

#[tokio::test]
async fn locked_room_is_private_and_recording_follows_the_room_type() {
    let s = server().await;
    Mock::given(method("POST"))
        .and(path("/v1/rooms"))
        .and(header(AUTH.0, AUTH.1))
        .respond_with(ResponseTemplate::new(200).set_body_json(room_response(ROOM_NAME)))
        .mount(&s)
        .await;
    let daily = client(&s).with_recordings_bucket(Some(bucket()));
    for (locked, recording) in [
        (true, RecordingType::None),
        (false, RecordingType::Local),
        (true, RecordingType::Cloud),
    ] {
        let mut r = room();
        r.is_locked = locked;
        r.recording_type = recording;
        daily
            .create_meeting("team-standup", end_date(), &r)
            .await
            .unwrap();
    }
    let bodies = received_json(&s, "POST").await;
    assert_eq!(bodies[0]["privacy"], "private");
    assert!(bodies[0]["properties"].get("enable_recording").is_none());
    assert!(bodies[0]["properties"].get("recordings_bucket").is_none());
    assert_eq!(bodies[1]["privacy"], "public");
    assert_eq!(bodies[1]["properties"]["enable_recording"], "local");
    assert!(bodies[1]["properties"].get("recordings_bucket").is_none());
    assert_eq!(bodies[2]["privacy"], "private");
    assert_eq!(bodies[2]["properties"]["enable_recording"], "cloud");
    assert_eq!(
        bodies[2]["properties"]["recordings_bucket"]["bucket_name"],
        "reflector-daily"
    );
}

#[tokio::test]
async fn cloud_room_without_bucket_records_to_daily_storage() {
    let s = server().await;
    Mock::given(method("POST"))
        .and(path("/v1/rooms"))
        .and(header(AUTH.0, AUTH.1))
        .respond_with(ResponseTemplate::new(200).set_body_json(room_response(ROOM_NAME)))
        .mount(&s)
        .await;
    client(&s)
        .create_meeting("team-standup", end_date(), &room())
        .await
        .unwrap();
    let body = &received_json(&s, "POST").await[0];
    assert_eq!(body["properties"]["enable_recording"], "cloud");
    assert!(body["properties"].get("recordings_bucket").is_none());
}

#[test]
fn room_names_follow_daily_rules() {
    let ok = |n: &str| {
        n.len() <= MAX_ROOM_NAME_LEN
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    assert_eq!(
        DailyClient::room_name("team", fixed_now()),
        "team-20260102030405"
    );
    let weird = DailyClient::room_name("a b/c.d", fixed_now());
    assert_eq!(weird, "a-b-c-d-20260102030405");
    let long = DailyClient::room_name(&"x".repeat(300), fixed_now());
    assert_eq!(long.len(), MAX_ROOM_NAME_LEN);
    assert!(long.ends_with("-20260102030405"));
    for n in [weird, long, DailyClient::room_name("", fixed_now())] {
        assert!(ok(&n), "{n}");
    }
}

#[tokio::test]
async fn create_retries_after_503_and_creates_one_room() {
    let s = server().await;
    Mock::given(method("POST"))
        .and(path("/v1/rooms"))
        .and(header(AUTH.0, AUTH.1))
        .respond_with(
            ResponseTemplate::new(503)
                .set_body_json(json!({"error": "server-error", "info": "try again"})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&s)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/rooms"))
        .and(header(AUTH.0, AUTH.1))
        .respond_with(ResponseTemplate::new(200).set_body_json(room_response(ROOM_NAME)))
        .expect(1)
        .mount(&s)
        .await;
    let m = client(&s)
        .create_meeting("team-standup", end_date(), &room())
        .await
        .unwrap();
    assert_eq!(m.room_name, ROOM_NAME);
    assert_eq!(received_json(&s, "POST").await.len(), 2);
}

#[tokio::test]
async fn create_retried_after_a_timeout_that_succeeded_fetches_the_room_instead_of_a_second() {
    let s = server().await;
    // The first attempt creates the room but answers too late for the client.
    Mock::given(method("POST"))
        .and(path("/v1/rooms"))
        .and(header(AUTH.0, AUTH.1))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(room_response(ROOM_NAME))
                .set_delay(Duration::from_millis(1500)),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&s)
        .await;
    // The retry is told the name is taken, as Daily does.
    Mock::given(method("POST"))
        .and(path("/v1/rooms"))
        .and(header(AUTH.0, AUTH.1))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": "invalid-request-error",
            "info": format!("a room named {ROOM_NAME} already exists")
        })))
        .expect(1)
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/rooms/{ROOM_NAME}")))
        .and(header(AUTH.0, AUTH.1))
        .respond_with(ResponseTemplate::new(200).set_body_json(room_response(ROOM_NAME)))
        .expect(1)
        .mount(&s)
        .await;

    let m = client(&s)
        .create_meeting("team-standup", end_date(), &room())
        .await
        .unwrap();

    assert_eq!(m.room_name, ROOM_NAME);
    assert_eq!(m.meeting_id, "d61cd7b2-a273-42b4-89bd-be763fd562c1");
    // Both POSTs asked for the same name, so Daily holds one room.
    let names: Vec<_> = received_json(&s, "POST")
        .await
        .iter()
        .map(|b| b["name"].clone())
        .collect();
    assert_eq!(names, vec![json!(ROOM_NAME), json!(ROOM_NAME)]);
}

#[tokio::test]
async fn name_taken_on_the_first_attempt_is_a_conflict_not_someone_elses_room() {
    let s = server().await;
    Mock::given(method("POST"))
        .and(path("/v1/rooms"))
        .and(header(AUTH.0, AUTH.1))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": "invalid-request-error",
            "info": format!("a room named {ROOM_NAME} already exists")
        })))
        .expect(1)
        .mount(&s)
        .await;
    let err = client(&s)
        .create_meeting("team-standup", end_date(), &room())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert!(err.to_string().contains("already exists"), "{err}");
}

#[tokio::test]
async fn unauthorized_is_a_typed_error_keeping_error_and_info_and_is_not_retried() {
    let s = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/rooms"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": "authentication-error",
            "info": "Invalid API key"
        })))
        .expect(1)
        .mount(&s)
        .await;
    let err = client(&s)
        .create_meeting("team-standup", end_date(), &room())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        PlatformError::Api {
            platform: Platform::Daily,
            status: 401,
            error: "authentication-error".into(),
            info: Some("Invalid API key".into()),
        }
    );
    assert_eq!(
        err.to_string(),
        "daily API error (HTTP 401): authentication-error: Invalid API key"
    );
}

#[tokio::test]
async fn wrong_api_key_is_refused_by_the_fake_like_daily_would() {
    let s = server().await;
    Mock::given(method("DELETE"))
        .and(path(format!("/v1/rooms/{ROOM_NAME}")))
        .and(header(AUTH.0, AUTH.1))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&s)
        .await;
    let daily = DailyClient::new(
        reqwest::Client::new(),
        &format!("{}/v1", s.uri()),
        SecretString::from("wrong-key"),
        settings(),
    )
    .unwrap();
    let err = daily.delete_room(ROOM_NAME, None).await.unwrap_err();
    assert_eq!(err.status(), Some(401));
}

#[tokio::test]
async fn delete_room_succeeds_and_404_counts_as_already_deleted() {
    let s = server().await;
    Mock::given(method("DELETE"))
        .and(path(format!("/v1/rooms/{ROOM_NAME}")))
        .and(header(AUTH.0, AUTH.1))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"deleted": true, "name": ROOM_NAME})),
        )
        .expect(1)
        .mount(&s)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/v1/rooms/gone-room"))
        .and(header(AUTH.0, AUTH.1))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({
            "error": "not-found", "info": "room gone-room was not found"
        })))
        .expect(1)
        .mount(&s)
        .await;
    let daily = client(&s);
    assert_eq!(daily.delete_room(ROOM_NAME, None).await, Ok(()));
    assert_eq!(daily.delete_room("gone-room", None).await, Ok(()));
}

#[tokio::test]
async fn delete_room_gives_up_after_repeated_server_errors() {
    let s = server().await;
    Mock::given(method("DELETE"))
        .and(path(format!("/v1/rooms/{ROOM_NAME}")))
        .and(header(AUTH.0, AUTH.1))
        .respond_with(
            ResponseTemplate::new(500)
                .set_body_json(json!({"error": "server-error", "info": "boom"})),
        )
        .expect(3)
        .mount(&s)
        .await;
    let err = client(&s).delete_room(ROOM_NAME, None).await.unwrap_err();
    assert_eq!(err.status(), Some(500));
}

#[tokio::test]
async fn rate_limited_call_waits_for_retry_after_then_succeeds() {
    let s = server().await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/rooms/{ROOM_NAME}/presence")))
        .and(header(AUTH.0, AUTH.1))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "1")
                .set_body_json(json!({"error": "rate-limit-error", "info": "slow down"})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/rooms/{ROOM_NAME}/presence")))
        .and(header(AUTH.0, AUTH.1))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "total_count": 1,
            "data": [{
                "room": ROOM_NAME,
                "id": "d61cd7b2-a273-42b4-89bd-be763fd562c1",
                "userId": "user-1",
                "userName": "Ada",
                "joinTime": "2026-01-02T03:05:00.000Z",
                "duration": 42
            }]
        })))
        .expect(1)
        .mount(&s)
        .await;
    let started = Instant::now();
    let presence = client(&s).get_presence(ROOM_NAME).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(presence.total_count, 1);
    assert_eq!(presence.data[0].user_id.as_deref(), Some("user-1"));
    assert_eq!(presence.data[0].user_name.as_deref(), Some("Ada"));
    assert_eq!(presence.data[0].duration, Some(42));
}

#[tokio::test]
async fn idempotent_call_retries_after_a_timeout() {
    let s = server().await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/rooms/{ROOM_NAME}/presence")))
        .and(header(AUTH.0, AUTH.1))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"total_count": 0, "data": []}))
                .set_delay(Duration::from_millis(1500)),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/rooms/{ROOM_NAME}/presence")))
        .and(header(AUTH.0, AUTH.1))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"total_count": 0, "data": []})),
        )
        .expect(1)
        .mount(&s)
        .await;
    let presence = client(&s).get_presence(ROOM_NAME).await.unwrap();
    assert_eq!(presence.total_count, 0);
}

#[tokio::test]
async fn unreachable_api_is_a_transport_error_naming_daily() {
    // A loopback port with nothing listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let daily = DailyClient::new(
        reqwest::Client::new(),
        &format!("http://127.0.0.1:{port}/v1"),
        key(),
        settings(),
    )
    .unwrap();
    let err = daily.get_presence(ROOM_NAME).await.unwrap_err();
    assert!(
        matches!(
            err,
            PlatformError::Transport {
                platform: Platform::Daily,
                timed_out: false,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().starts_with("daily API unreachable"),
        "{err}"
    );
}

#[tokio::test]
async fn unexpected_response_shape_is_a_decode_error() {
    let s = server().await;
    Mock::given(method("POST"))
        .and(path("/v1/rooms"))
        .and(header(AUTH.0, AUTH.1))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
        .mount(&s)
        .await;
    let err = client(&s)
        .create_meeting("team-standup", end_date(), &room())
        .await
        .unwrap_err();
    // A 2xx we cannot read still created the room: the error names it for deletion.
    let PlatformError::Unconfirmed {
        room_name, cause, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(room_name.as_deref(), Some(ROOM_NAME));
    assert!(
        matches!(
            **cause,
            PlatformError::Decode {
                platform: Platform::Daily,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_create_cut_off_by_the_request_deadline_is_unconfirmed_naming_its_room() {
    let s = server().await;
    Mock::given(method("POST"))
        .and(path("/v1/rooms"))
        .and(header(AUTH.0, AUTH.1))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(room_response(ROOM_NAME))
                .set_delay(Duration::from_secs(30)),
        )
        .mount(&s)
        .await;
    // The client's own timeout is far longer: only the deadline can end this call.
    let mut patient = settings();
    patient.timeout = Duration::from_secs(60);
    let daily = DailyClient::new(
        reqwest::Client::new(),
        &format!("{}/v1", s.uri()),
        key(),
        patient,
    )
    .unwrap()
    .with_clock(fixed_now);
    let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
    let err = crate::deadline::within(
        deadline,
        daily.create_meeting("team-standup", end_date(), &room()),
    )
    .await
    .unwrap_err();
    assert!(err.timed_out(), "{err:?}");
    assert!(
        matches!(&err, PlatformError::Unconfirmed { room_name: Some(n), .. } if n == ROOM_NAME),
        "{err:?}"
    );
    // No retry was started past the deadline.
    assert_eq!(s.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_refused_create_made_nothing_and_is_a_plain_api_error() {
    let s = server().await;
    Mock::given(method("POST"))
        .and(path("/v1/rooms"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"error": "invalid-request-error", "info": "exp must be in the future"}),
        ))
        .mount(&s)
        .await;
    let err = client(&s)
        .create_meeting("team-standup", end_date(), &room())
        .await
        .unwrap_err();
    assert!(
        matches!(err, PlatformError::Api { status: 400, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn no_request_is_made_once_the_deadline_has_passed() {
    let s = server().await;
    let past = tokio::time::Instant::now() - Duration::from_millis(1);
    let err = crate::deadline::within(past, client(&s).delete_room(ROOM_NAME, None))
        .await
        .unwrap_err();
    assert!(err.timed_out(), "{err:?}");
    assert!(s.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn recording_access_link_is_fetched_with_its_validity() {
    let s = server().await;
    Mock::given(method("GET"))
        .and(path(
            "/v1/recordings/08fa0b24-9220-44c5-846c-3f116cf8e738/access-link",
        ))
        .and(query_param("valid_for_secs", "900"))
        .and(header(AUTH.0, AUTH.1))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "download_link": "https://daily-recordings.s3.amazonaws.com/x.mp4?sig=1",
            "expires": 1767352745
        })))
        .expect(1)
        .mount(&s)
        .await;
    let link = client(&s)
        .get_recording_access_link("08fa0b24-9220-44c5-846c-3f116cf8e738", Some(900))
        .await
        .unwrap();
    assert_eq!(
        link.download_link,
        "https://daily-recordings.s3.amazonaws.com/x.mp4?sig=1"
    );
    assert_eq!(link.expires, 1767352745);
}

#[tokio::test]
async fn missing_recording_link_is_a_404_api_error() {
    let s = server().await;
    Mock::given(method("GET"))
        .and(path("/v1/recordings/nope/access-link"))
        .and(header(AUTH.0, AUTH.1))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({
            "error": "not-found", "info": "recording nope not found"
        })))
        .expect(1)
        .mount(&s)
        .await;
    let err = client(&s)
        .get_recording_access_link("nope", None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PlatformError::Api { status: 404, error, info: Some(_), .. } if error == "not-found"),
        "{err:?}"
    );
}

fn webhook_json(state: &str, url: &str) -> serde_json::Value {
    json!({
        "uuid": "0b4e4c7c-5eaf-46fe-990b-a3752f5684f5",
        "url": url,
        "hmac": "c2VjcmV0",
        "basicAuth": null,
        "retryType": "circuit-breaker",
        "eventTypes": ["participant.joined", "participant.left"],
        "state": state,
        "failedCount": if state == "FAILED" { 3 } else { 0 },
        "lastMomentPushed": null,
        "domainId": "dom",
        "createdAt": "2026-01-02T03:04:05.000Z",
        "updatedAt": "2026-01-02T03:04:05.000Z"
    })
}

const HOOK_URL: &str = "https://api.example.com/v1/daily_webhook";

fn new_webhook() -> NewWebhook {
    NewWebhook {
        url: HOOK_URL.into(),
        event_types: vec!["participant.joined".into(), "participant.left".into()],
        hmac: None,
        retry_type: Some("circuit-breaker".into()),
    }
}

#[tokio::test]
async fn create_webhook_sends_camel_case_body_and_returns_the_secret() {
    let s = server().await;
    Mock::given(method("POST"))
        .and(path("/v1/webhooks"))
        .and(header(AUTH.0, AUTH.1))
        .and(body_json(json!({
            "url": HOOK_URL,
            "eventTypes": ["participant.joined", "participant.left"],
            "retryType": "circuit-breaker"
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(webhook_json("ACTIVE", HOOK_URL)))
        .expect(1)
        .mount(&s)
        .await;
    let w = client(&s).create_webhook(&new_webhook()).await.unwrap();
    assert_eq!(w.state, WebhookState::Active);
    assert_eq!(w.hmac.as_deref(), Some("c2VjcmV0"));
    assert!(!format!("{w:?}").contains("c2VjcmV0"), "secret in Debug");
}

#[tokio::test]
async fn list_webhooks_accepts_a_bare_array_or_a_data_wrapper() {
    for body in [
        json!([webhook_json("FAILED", HOOK_URL)]),
        json!({"data": [webhook_json("FAILED", HOOK_URL)]}),
    ] {
        let s = server().await;
        Mock::given(method("GET"))
            .and(path("/v1/webhooks"))
            .and(header(AUTH.0, AUTH.1))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .expect(1)
            .mount(&s)
            .await;
        let hooks = client(&s).list_webhooks().await.unwrap();
        assert_eq!(hooks.len(), 1);
        assert_eq!(hooks[0].state, WebhookState::Failed);
        assert_eq!(hooks[0].failed_count, 3);
    }
}

#[tokio::test]
async fn delete_webhook_treats_404_as_deleted() {
    let s = server().await;
    Mock::given(method("DELETE"))
        .and(path("/v1/webhooks/0b4e4c7c-5eaf-46fe-990b-a3752f5684f5"))
        .and(header(AUTH.0, AUTH.1))
        .respond_with(ResponseTemplate::new(200).set_body_json(webhook_json("INACTIVE", HOOK_URL)))
        .expect(1)
        .mount(&s)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/v1/webhooks/unknown"))
        .and(header(AUTH.0, AUTH.1))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_json(json!({"error": "not-found", "info": "no such webhook"})),
        )
        .expect(1)
        .mount(&s)
        .await;
    let daily = client(&s);
    assert_eq!(
        daily
            .delete_webhook("0b4e4c7c-5eaf-46fe-990b-a3752f5684f5")
            .await,
        Ok(Some(webhook_json("INACTIVE", HOOK_URL)))
    );
    assert_eq!(daily.delete_webhook("unknown").await, Ok(None));
}

#[tokio::test]
async fn failed_webhook_is_reactivated_with_post_to_its_uuid() {
    let s = server().await;
    Mock::given(method("GET"))
        .and(path("/v1/webhooks"))
        .and(header(AUTH.0, AUTH.1))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!([webhook_json("FAILED", HOOK_URL)])),
        )
        .expect(1)
        .mount(&s)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/webhooks/0b4e4c7c-5eaf-46fe-990b-a3752f5684f5"))
        .and(header(AUTH.0, AUTH.1))
        .and(body_json(json!({
            "url": HOOK_URL,
            "eventTypes": ["participant.joined", "participant.left"]
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(webhook_json("ACTIVE", HOOK_URL)))
        .expect(1)
        .mount(&s)
        .await;
    let w = client(&s).ensure_webhook(&new_webhook()).await.unwrap();
    assert_eq!(w.state, WebhookState::Active);
}

#[tokio::test]
async fn ensure_webhook_leaves_an_active_one_and_creates_a_missing_one() {
    let s = server().await;
    Mock::given(method("GET"))
        .and(path("/v1/webhooks"))
        .and(header(AUTH.0, AUTH.1))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!([webhook_json("ACTIVE", HOOK_URL)])),
        )
        .expect(1)
        .mount(&s)
        .await;
    let w = client(&s).ensure_webhook(&new_webhook()).await.unwrap();
    assert_eq!(w.state, WebhookState::Active);
    // No POST was made (the fake would have answered 401 and failed the call).

    let s = server().await;
    Mock::given(method("GET"))
        .and(path("/v1/webhooks"))
        .and(header(AUTH.0, AUTH.1))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(1)
        .mount(&s)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/webhooks"))
        .and(header(AUTH.0, AUTH.1))
        .respond_with(ResponseTemplate::new(200).set_body_json(webhook_json("ACTIVE", HOOK_URL)))
        .expect(1)
        .mount(&s)
        .await;
    let w = client(&s).ensure_webhook(&new_webhook()).await.unwrap();
    assert_eq!(w.url, HOOK_URL);
}

struct InMemorySessions(Vec<(String, SessionData)>);

#[async_trait]
impl RoomSessionSource for InMemorySessions {
    async fn sessions_for_room(&self, room_name: &str) -> Result<Vec<SessionData>, PlatformError> {
        Ok(self
            .0
            .iter()
            .filter(|(r, _)| r == room_name)
            .map(|(_, s)| s.clone())
            .collect())
    }
}

#[tokio::test]
async fn room_sessions_come_from_stored_participant_sessions() {
    let s = server().await;
    let session = SessionData {
        session_id: "p1".into(),
        started_at: fixed_now(),
        ended_at: Some(fixed_now() + chrono::Duration::minutes(30)),
    };
    let source = InMemorySessions(vec![
        (ROOM_NAME.into(), session.clone()),
        ("other".into(), session.clone()),
    ]);
    let daily = client(&s).with_session_source(Arc::new(source));
    assert_eq!(
        daily.get_room_sessions(ROOM_NAME).await.unwrap(),
        vec![session]
    );
    assert!(daily.get_room_sessions("empty").await.unwrap().is_empty());
    // Nothing was asked of Daily.
    assert!(s.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn room_sessions_without_a_source_are_unsupported() {
    let s = server().await;
    let err = client(&s).get_room_sessions(ROOM_NAME).await.unwrap_err();
    assert!(matches!(
        err,
        PlatformError::Unsupported {
            platform: Platform::Daily,
            ..
        }
    ));
}

#[test]
fn from_config_requires_the_api_key_and_complete_bucket_settings() {
    let mut cfg = crate::config::DailyConfig {
        api_url: "http://127.0.0.1:9/v1".into(),
        ..Default::default()
    };
    let var = |cfg: &crate::config::DailyConfig| match DailyClient::from_config(
        cfg,
        reqwest::Client::new(),
        settings(),
    ) {
        Err(PlatformError::Config { var, .. }) => var,
        other => panic!("{other:?}"),
    };
    assert_eq!(var(&cfg), "DAILY_API_KEY");
    cfg.api_key = Some(key());
    cfg.s3_bucket = Some("b".into());
    assert_eq!(var(&cfg), "AWS_DAILY_S3_REGION");
    cfg.s3_region = Some("eu-west-1".into());
    assert_eq!(var(&cfg), "AWS_DAILY_ROLE_ARN");
    cfg.role_arn = Some("arn:aws:iam::123456789012:role/daily".into());
    let d = DailyClient::from_config(&cfg, reqwest::Client::new(), settings()).unwrap();
    assert_eq!(
        d.recordings_bucket.as_ref().unwrap().bucket_region,
        "eu-west-1"
    );
}

#[tokio::test]
async fn a_very_long_retry_after_is_capped() {
    let s = server().await;
    Mock::given(method("DELETE"))
        .and(path(format!("/v1/rooms/{ROOM_NAME}")))
        .and(header(AUTH.0, AUTH.1))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "3600")
                .set_body_json(json!({"error": "rate-limit-error", "info": "slow down"})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&s)
        .await;
    Mock::given(method("DELETE"))
        .and(path(format!("/v1/rooms/{ROOM_NAME}")))
        .and(header(AUTH.0, AUTH.1))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"deleted": true, "name": ROOM_NAME})),
        )
        .expect(1)
        .mount(&s)
        .await;
    let started = Instant::now();
    assert_eq!(client(&s).delete_room(ROOM_NAME, None).await, Ok(()));
    // The test policy caps Retry-After at 1.5 s.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

// --- recordings started by the server, domain id, meeting tokens ---

const START_PATH: &str = "/v1/rooms/team-standup-20260102030405/recordings/start";

#[tokio::test]
async fn start_recording_posts_type_and_instance_id_to_the_room() {
    let s = server().await;
    let instance_id = recording_instance_id("meeting-1", RecordingKind::RawTracks);
    Mock::given(method("POST"))
        .and(path(START_PATH))
        .and(header(AUTH.0, AUTH.1))
        .and(body_json(
            json!({"type": "raw-tracks", "instanceId": instance_id.to_string()}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "ok"})))
        .expect(1)
        .mount(&s)
        .await;
    assert_eq!(
        client(&s)
            .start_recording(ROOM_NAME, RecordingKind::RawTracks, instance_id)
            .await,
        Ok(RecordingStart::Started)
    );
}

#[tokio::test]
async fn start_recording_503_is_one_attempt_and_a_transient_error() {
    let s = server().await;
    Mock::given(method("POST"))
        .and(path(START_PATH))
        .and(header(AUTH.0, AUTH.1))
        .respond_with(ResponseTemplate::new(503).set_body_json(
            json!({"error": "server-error", "info": "no recording workers available"}),
        ))
        .expect(1)
        .mount(&s)
        .await;
    let err = client(&s)
        .start_recording(
            ROOM_NAME,
            RecordingKind::Cloud,
            recording_instance_id("meeting-1", RecordingKind::Cloud),
        )
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert!(crate::retry::Transient::is_transient(&err), "{err}");
}

#[tokio::test]
async fn start_recording_already_recording_answers_are_already_active_other_4xx_are_errors() {
    for (status, body, want_already) in [
        (
            400,
            json!({"error": "invalid-request-error", "info": "recording already started"}),
            true,
        ),
        (
            409,
            json!({"error": "already-recording", "info": "instance is active"}),
            true,
        ),
        (
            400,
            json!({"error": "invalid-request-error", "info": "recording is not enabled for this room"}),
            false,
        ),
        (
            404,
            json!({"error": "not-found", "info": "room does not exist"}),
            false,
        ),
    ] {
        let s = server().await;
        Mock::given(method("POST"))
            .and(path(START_PATH))
            .and(header(AUTH.0, AUTH.1))
            .respond_with(ResponseTemplate::new(status).set_body_json(body.clone()))
            .mount(&s)
            .await;
        let got = client(&s)
            .start_recording(
                ROOM_NAME,
                RecordingKind::Cloud,
                recording_instance_id("m", RecordingKind::Cloud),
            )
            .await;
        if want_already {
            assert_eq!(got, Ok(RecordingStart::AlreadyActive), "{body}");
        } else {
            let err = got.unwrap_err();
            assert_eq!(err.status(), Some(status), "{body}");
            assert!(!crate::retry::Transient::is_transient(&err));
        }
    }
}

#[test]
fn instance_ids_are_stable_per_meeting_and_kind_and_never_daily_reserved_one() {
    use RecordingKind::*;
    let a = recording_instance_id("meeting-1", Cloud);
    assert_eq!(a, recording_instance_id("meeting-1", Cloud));
    assert_eq!(a.get_version_num(), 5);
    assert_ne!(a, recording_instance_id("meeting-1", RawTracks));
    assert_ne!(a, recording_instance_id("meeting-2", Cloud));
    for i in 0..1000 {
        for kind in [Cloud, RawTracks] {
            assert_ne!(
                recording_instance_id(&format!("m{i}"), kind),
                RESERVED_INSTANCE_ID
            );
        }
    }
    // Should v5 ever hit the reserved id, another deterministic id is used.
    let replaced = avoid_reserved(RESERVED_INSTANCE_ID, "meeting-1", Cloud);
    assert_ne!(replaced, RESERVED_INSTANCE_ID);
    assert_eq!(
        replaced,
        avoid_reserved(RESERVED_INSTANCE_ID, "meeting-1", Cloud)
    );
    assert_eq!(avoid_reserved(a, "meeting-1", Cloud), a);
}

#[tokio::test]
async fn domain_id_is_read_once_and_then_cached() {
    let s = server().await;
    Mock::given(method("GET"))
        .and(path("/v1/"))
        .and(header(AUTH.0, AUTH.1))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "domain_name": "reflector",
            "domain_id": "5b5bbd25-2c0f-4e8e-a1f3-6a1b5b5bbd25",
            "config": {"enable_recording": "cloud"}
        })))
        .expect(1)
        .mount(&s)
        .await;
    let daily = client(&s);
    let (a, b) = tokio::join!(daily.domain_id(), daily.domain_id());
    assert_eq!(a, Ok("5b5bbd25-2c0f-4e8e-a1f3-6a1b5b5bbd25"));
    assert_eq!(b, a);
    assert_eq!(
        daily.domain_id().await,
        Ok("5b5bbd25-2c0f-4e8e-a1f3-6a1b5b5bbd25")
    );
    assert_eq!(s.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_failed_domain_read_is_not_cached() {
    let s = server().await;
    Mock::given(method("GET"))
        .and(path("/v1/"))
        .and(header(AUTH.0, AUTH.1))
        .respond_with(
            ResponseTemplate::new(403)
                .set_body_json(json!({"error": "forbidden-error", "info": "nope"})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/"))
        .and(header(AUTH.0, AUTH.1))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"domain_id": "dom-2"})))
        .mount(&s)
        .await;
    let daily = client(&s);
    assert_eq!(daily.domain_id().await.unwrap_err().status(), Some(403));
    assert_eq!(daily.domain_id().await, Ok("dom-2"));
}

#[tokio::test]
async fn configured_domain_id_and_meeting_tokens_make_no_request() {
    let s = server().await;
    let mut cfg = crate::config::DailyConfig {
        api_url: format!("{}/v1", s.uri()),
        api_key: Some(key()),
        domain_id: Some("dom-from-env".into()),
        ..Default::default()
    };
    cfg.webhook_secret = None;
    let daily = DailyClient::from_config(&cfg, reqwest::Client::new(), settings()).unwrap();
    assert_eq!(daily.domain_id().await, Ok("dom-from-env"));
    let request = token::TokenRequest {
        room_name: ROOM_NAME,
        user_id: Some("user-1"),
        is_owner: true,
        recording_type: RecordingType::Cloud,
        skip_consent: true,
        expires_at: end_date(),
    };
    let token = daily.meeting_token(&request, fixed_now()).await.unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.validate_exp = false;
    let claims = jsonwebtoken::decode::<token::MeetingTokenClaims>(
        &token,
        &jsonwebtoken::DecodingKey::from_secret(b"test-api-key"),
        &validation,
    )
    .unwrap()
    .claims;
    assert_eq!(
        claims,
        token::MeetingTokenClaims {
            r: ROOM_NAME.into(),
            d: "dom-from-env".into(),
            iat: fixed_now().timestamp(),
            exp: end_date().timestamp(),
            ud: Some("user-1".into()),
            o: true,
            erui: true,
        }
    );
    assert!(s.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn recordings_are_listed_by_page_and_read_with_their_tracks_in_either_key_spelling() {
    let s = server().await;
    Mock::given(method("GET"))
        .and(path("/v1/recordings"))
        .and(header(AUTH.0, AUTH.1))
        .and(query_param("limit", "100"))
        .and(query_param("starting_after", "rec-9"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"total_count": 1, "data": [
            {"id": "rec-8", "room_name": ROOM_NAME, "start_ts": 1700000000, "status": "finished",
             "max_participants": 1, "duration": 9, "s3key": "dom/room/1700000000000", "tracks": []}
        ]})))
        .expect(1)
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/recordings/rec-7"))
        .and(header(AUTH.0, AUTH.1))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "rec-7", "room_name": ROOM_NAME, "start_ts": 1700000000, "status": "finished",
            "s3key": null, "mtgSessionId": "x", "tracks": [
                {"type": "audio", "s3Key": "dom/room/1-a-cam-audio-2", "size": 5},
                {"type": "video", "s3Key": "dom/room/1-a-cam-video-2", "size": 5},
                {"type": "audio", "s3key": "dom/room/1-b-cam-audio-3", "size": 5}]})))
        .expect(1)
        .mount(&s)
        .await;
    let c = client(&s);
    let page = c.list_recordings(None, Some("rec-9"), 500).await.unwrap();
    assert_eq!(page.data.len(), 1);
    assert!(page.data[0].is_finished() && !page.data[0].is_multitrack());
    assert_eq!(
        page.data[0].s3key.as_deref(),
        Some("dom/room/1700000000000")
    );
    let multi = c.get_recording("rec-7").await.unwrap();
    assert!(multi.is_multitrack());
    assert_eq!(
        multi.audio_track_keys(),
        ["dom/room/1-a-cam-audio-2", "dom/room/1-b-cam-audio-3"]
    );
}

#[test]
fn raw_track_keys_give_the_session_id_and_the_track_start() {
    assert_eq!(
        parse_track_key(
            "dom/room/1700000000000-0c0d2dda-f21d-4cf9-ab56-86bf3c407ffa-cam-audio-1700000004321"
        ),
        Some(TrackKey {
            session_id: "0c0d2dda-f21d-4cf9-ab56-86bf3c407ffa".into(),
            track_start_ms: 1_700_000_004_321,
        })
    );
    assert_eq!(
        parse_track_key("1-s-screen-audio-5").map(|k| k.session_id),
        Some("s".into())
    );
    for bad in [
        "dom/room/1700000000000",
        "dom/room/x-s-cam-audio-5",
        "dom/room/1--cam-audio-5",
        "dom/room/1-s-cam-audio-",
        "dom/room/1-s-mic-audio-5",
    ] {
        assert_eq!(parse_track_key(bad), None, "{bad}");
    }
}
