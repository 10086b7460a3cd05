//! WherebyClient against a local fake of Whereby's API that checks path, method, bearer token,
//! query and body, and answers with Whereby's response and error shapes.

use std::time::{Duration, Instant};

use serde_json::json;
use wiremock::matchers::{body_json, header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;
use crate::domain::{RecordingTrigger, RoomMode};
use crate::platform::test_support::{fixed_now, key, reject_unexpected, room, settings};

const AUTH: (&str, &str) = ("authorization", "Bearer test-api-key");
const MEETING_ID: &str = "91726553";
const ROOM: &str = "team-standup-0c9f1ad7-4d12-4f5b-8a36-7c2f9b6e1d10";

async fn server() -> MockServer {
    let s = MockServer::start().await;
    reject_unexpected(&s, json!({"error": "Unauthorized"})).await;
    s
}

fn client(server: &MockServer) -> WherebyClient {
    WherebyClient::new(
        reqwest::Client::new(),
        &format!("{}/v1", server.uri()),
        key(),
        settings(),
    )
    .unwrap()
}

fn destination() -> WherebyRecordingDestination {
    WherebyRecordingDestination {
        bucket: "reflector-whereby/recordings".into(),
        access_key_id: "AKIAEXAMPLE".into(),
        access_key_secret: SecretString::from("s3-secret"),
    }
}

fn end_date() -> DateTime<Utc> {
    fixed_now() + chrono::Duration::hours(8)
}

fn meeting_response() -> serde_json::Value {
    json!({
        "meetingId": MEETING_ID,
        "roomName": format!("/{ROOM}"),
        "roomUrl": format!("https://reflector.whereby.com/{ROOM}"),
        "startDate": "2026-01-02T03:04:05.000Z",
        "endDate": "2026-01-02T11:04:05.000Z",
        "hostRoomUrl": format!("https://reflector.whereby.com/{ROOM}?roomKey=host-key")
    })
}

fn expected_create_body() -> serde_json::Value {
    json!({
        "isLocked": false,
        "roomNamePrefix": "team-standup-",
        "roomNamePattern": "uuid",
        "roomMode": "normal",
        "endDate": "2026-01-02T11:04:05Z",
        "fields": ["hostRoomUrl"],
        "recording": {
            "type": "cloud",
            "destination": {
                "provider": "s3",
                "authenticationType": "accessKey",
                "bucket": "reflector-whereby/recordings",
                "accessKeyId": "AKIAEXAMPLE",
                "accessKeySecret": "s3-secret",
                "fileFormat": "mp4"
            },
            "startTrigger": "automatic-2nd-participant"
        }
    })
}

async fn posted_bodies(server: &MockServer) -> Vec<serde_json::Value> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "POST")
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

fn create_mock(response: ResponseTemplate) -> Mock {
    Mock::given(method("POST"))
        .and(path("/v1/meetings"))
        .and(header(AUTH.0, AUTH.1))
        .respond_with(response)
}

#[tokio::test]
async fn create_meeting_sends_whereby_exactly_the_meeting_body_and_strips_the_slash() {
    let s = server().await;
    Mock::given(method("POST"))
        .and(path("/v1/meetings"))
        .and(header(AUTH.0, AUTH.1))
        .and(body_json(expected_create_body()))
        .respond_with(ResponseTemplate::new(201).set_body_json(meeting_response()))
        .expect(1)
        .mount(&s)
        .await;
    let wb = client(&s).with_recording_destination(Some(destination()));

    let m = wb
        .create_meeting("team-standup", end_date(), &room())
        .await
        .unwrap();

    assert_eq!(posted_bodies(&s).await, vec![expected_create_body()]);
    assert_eq!(m.meeting_id, MEETING_ID);
    assert_eq!(m.room_name, ROOM);
    assert_eq!(m.room_url, format!("https://reflector.whereby.com/{ROOM}"));
    assert_eq!(
        m.host_room_url,
        format!("https://reflector.whereby.com/{ROOM}?roomKey=host-key")
    );
    assert_eq!(m.platform, Platform::Whereby);
    assert_eq!(m.extra_data["meetingId"], MEETING_ID);
}

#[tokio::test]
async fn locked_group_room_without_cloud_recording_sends_no_recording() {
    let s = server().await;
    create_mock(ResponseTemplate::new(201).set_body_json(meeting_response()))
        .mount(&s)
        .await;
    let wb = client(&s).with_recording_destination(Some(destination()));
    let mut r = room();
    r.is_locked = true;
    r.room_mode = RoomMode::Group;
    r.recording_type = RecordingType::Local;
    r.recording_trigger = RecordingTrigger::Prompt;
    wb.create_meeting("Team Standup", end_date(), &r)
        .await
        .unwrap();
    let body = &posted_bodies(&s).await[0];
    assert_eq!(body["isLocked"], true);
    assert_eq!(body["roomMode"], "group");
    assert_eq!(body["roomNamePrefix"], "teamstandup-");
    assert!(body.get("recording").is_none(), "{body}");
}

#[tokio::test]
async fn cloud_room_without_bucket_is_created_without_recording() {
    let s = server().await;
    create_mock(ResponseTemplate::new(201).set_body_json(meeting_response()))
        .mount(&s)
        .await;
    client(&s)
        .create_meeting("team-standup", end_date(), &room())
        .await
        .unwrap();
    assert!(posted_bodies(&s).await[0].get("recording").is_none());
}

#[test]
fn room_name_prefix_is_lowercase_hyphen_terminated_and_at_most_39_chars() {
    assert_eq!(
        WherebyClient::room_name_prefix("Team-Standup"),
        "team-standup-"
    );
    let long = WherebyClient::room_name_prefix(&"a".repeat(80));
    assert_eq!(long.len(), MAX_PREFIX_LEN);
    assert!(long.ends_with('-'));
}

#[tokio::test]
async fn create_retries_after_503_and_429_because_nothing_was_created() {
    let s = server().await;
    create_mock(ResponseTemplate::new(503).set_body_json(json!({"error": "Service Unavailable"})))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&s)
        .await;
    create_mock(
        ResponseTemplate::new(429)
            .insert_header("retry-after", "0")
            .set_body_json(json!({"error": "Too Many Requests", "data": {"msLeft": 10}})),
    )
    .up_to_n_times(1)
    .with_priority(2)
    .mount(&s)
    .await;
    create_mock(ResponseTemplate::new(201).set_body_json(meeting_response()))
        .expect(1)
        .mount(&s)
        .await;
    let m = client(&s)
        .create_meeting("team-standup", end_date(), &room())
        .await
        .unwrap();
    assert_eq!(m.meeting_id, MEETING_ID);
    assert_eq!(posted_bodies(&s).await.len(), 3);
}

#[tokio::test]
async fn create_is_not_repeated_after_a_timeout_so_no_second_meeting_is_made() {
    let s = server().await;
    create_mock(
        ResponseTemplate::new(201)
            .set_body_json(meeting_response())
            .set_delay(Duration::from_millis(1500)),
    )
    .mount(&s)
    .await;
    let err = client(&s)
        .create_meeting("team-standup", end_date(), &room())
        .await
        .unwrap_err();
    // Whereby may have made it, and only its answer would say which meeting to delete.
    assert!(
        matches!(
            &err,
            PlatformError::Unconfirmed {
                platform: Platform::Whereby,
                room_name: None,
                cause,
                ..
            } if matches!(**cause, PlatformError::Transport { timed_out: true, .. })
        ),
        "{err:?}"
    );
    assert_eq!(posted_bodies(&s).await.len(), 1);
}

#[tokio::test]
async fn create_is_not_repeated_after_a_500() {
    let s = server().await;
    create_mock(
        ResponseTemplate::new(500).set_body_json(json!({"error": "Internal Server Error"})),
    )
    .expect(1)
    .mount(&s)
    .await;
    let err = client(&s)
        .create_meeting("team-standup", end_date(), &room())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(500));
}

#[tokio::test]
async fn unauthorized_is_a_typed_error_naming_whereby_and_is_not_retried() {
    let s = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/meetings"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"error": "Unauthorized"})))
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
            platform: Platform::Whereby,
            status: 401,
            error: "Unauthorized".into(),
            info: None,
        }
    );
    assert_eq!(
        err.to_string(),
        "whereby API error (HTTP 401): Unauthorized"
    );
}

#[tokio::test]
async fn bad_request_with_a_message_body_keeps_the_message() {
    let s = server().await;
    create_mock(
        ResponseTemplate::new(400)
            .set_body_json(json!({"message": "endDate must be in the future"})),
    )
    .expect(1)
    .mount(&s)
    .await;
    let err = client(&s)
        .create_meeting("team-standup", end_date(), &room())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("endDate must be in the future"),
        "{err}"
    );
}

fn session(id: &str, start: &str, end: Option<&str>) -> serde_json::Value {
    json!({
        "roomSessionId": id,
        "roomName": format!("/{ROOM}"),
        "startedAt": start,
        "endedAt": end,
        "totalParticipantMinutes": 12,
        "totalRecorderMinutes": 0,
        "totalStreamerMinutes": 0,
        "totalUniqueParticipants": 2,
        "totalUniqueRecorders": 0,
        "totalUniqueStreamers": 0
    })
}

#[tokio::test]
async fn room_sessions_follow_the_cursor_and_keep_open_sessions_open() {
    let s = server().await;
    let room_param = format!("/{ROOM}");
    Mock::given(method("GET"))
        .and(path("/v1/insights/room-sessions"))
        .and(header(AUTH.0, AUTH.1))
        .and(query_param("roomName", room_param.as_str()))
        .and(query_param_is_missing("cursor"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "cursor": "page-2",
            "results": [session("s1", "2026-01-02T03:04:05.000Z", Some("2026-01-02T03:34:05.000Z"))]
        })))
        .expect(1)
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/insights/room-sessions"))
        .and(header(AUTH.0, AUTH.1))
        .and(query_param("roomName", room_param.as_str()))
        .and(query_param("cursor", "page-2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "cursor": null,
            "results": [session("s2", "2026-01-02T04:00:00.000Z", None)]
        })))
        .expect(1)
        .mount(&s)
        .await;
    let sessions = client(&s).get_room_sessions(ROOM).await.unwrap();
    assert_eq!(
        sessions,
        vec![
            SessionData {
                session_id: "s1".into(),
                started_at: fixed_now(),
                ended_at: Some(fixed_now() + chrono::Duration::minutes(30)),
            },
            SessionData {
                session_id: "s2".into(),
                started_at: "2026-01-02T04:00:00Z".parse().unwrap(),
                ended_at: None,
            },
        ]
    );
}

#[tokio::test]
async fn room_sessions_retry_after_503_then_succeed() {
    let s = server().await;
    let sessions_mock = || {
        Mock::given(method("GET"))
            .and(path("/v1/insights/room-sessions"))
            .and(header(AUTH.0, AUTH.1))
    };
    sessions_mock()
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&s)
        .await;
    sessions_mock()
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"cursor": null, "results": []})),
        )
        .expect(1)
        .mount(&s)
        .await;
    assert!(client(&s).get_room_sessions(ROOM).await.unwrap().is_empty());
}

#[tokio::test]
async fn rate_limited_sessions_wait_for_retry_after() {
    let s = server().await;
    let sessions_mock = || {
        Mock::given(method("GET"))
            .and(path("/v1/insights/room-sessions"))
            .and(header(AUTH.0, AUTH.1))
    };
    sessions_mock()
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "1")
                .set_body_json(json!({"error": "Too Many Requests", "data": {"msLeft": 1000}})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&s)
        .await;
    sessions_mock()
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"cursor": null, "results": []})),
        )
        .expect(1)
        .mount(&s)
        .await;
    let started = Instant::now();
    client(&s).get_room_sessions(ROOM).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn delete_meeting_is_204_and_idempotent() {
    let s = server().await;
    Mock::given(method("DELETE"))
        .and(path(format!("/v1/meetings/{MEETING_ID}")))
        .and(header(AUTH.0, AUTH.1))
        .respond_with(ResponseTemplate::new(204))
        .expect(2)
        .mount(&s)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/v1/meetings/404404"))
        .and(header(AUTH.0, AUTH.1))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"error": "Not Found"})))
        .expect(1)
        .mount(&s)
        .await;
    let wb = client(&s);
    assert_eq!(wb.delete_room(ROOM, Some(MEETING_ID)).await, Ok(()));
    assert_eq!(wb.delete_room(ROOM, Some(MEETING_ID)).await, Ok(()));
    assert_eq!(wb.delete_room(ROOM, Some("404404")).await, Ok(()));
}

#[tokio::test]
async fn delete_without_meeting_id_is_unsupported_and_calls_nothing() {
    let s = server().await;
    let err = client(&s).delete_room(ROOM, None).await.unwrap_err();
    assert!(matches!(
        err,
        PlatformError::Unsupported {
            platform: Platform::Whereby,
            ..
        }
    ));
    assert!(s.received_requests().await.unwrap().is_empty());
}

#[test]
fn from_config_requires_the_api_key_and_complete_recording_credentials() {
    let mut cfg = crate::config::WherebyConfig {
        api_url: "http://127.0.0.1:9/v1".into(),
        ..Default::default()
    };
    let var = |cfg: &crate::config::WherebyConfig| match WherebyClient::from_config(
        cfg,
        reqwest::Client::new(),
        settings(),
    ) {
        Err(PlatformError::Config { var, .. }) => var,
        other => panic!("{other:?}"),
    };
    assert_eq!(var(&cfg), "WHEREBY_API_KEY");
    cfg.api_key = Some(key());
    cfg.s3_bucket = Some("b".into());
    assert_eq!(var(&cfg), "AWS_WHEREBY_ACCESS_KEY_ID");
    cfg.access_key_id = Some("AKIA".into());
    assert_eq!(var(&cfg), "AWS_WHEREBY_ACCESS_KEY_SECRET");
    cfg.access_key_secret = Some(SecretString::from("x"));
    let wb = WherebyClient::from_config(&cfg, reqwest::Client::new(), settings()).unwrap();
    assert!(!format!("{wb:?}").contains("test-api-key"));
}
