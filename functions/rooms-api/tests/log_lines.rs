//! What a platform failure tells the caller and what it tells the log. Its own test binary:
//! tracing caches, per call site, whether any subscriber is interested, and a test thread of a
//! larger binary can hit a call site before this test's subscriber exists and leave it cached
//! as "never".

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::DateTime;
use serde_json::Value;
use tower::ServiceExt;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use rooms_api::handler::{router, Deps};
use shared::config::Config;
use shared::domain::{Platform, RecordingTrigger, RecordingType, Room, RoomMode, RoomName};
use shared::fakes::{MemoryConsents, MemoryMeetings, MemoryRooms};
use shared::platform::{HttpSettings, PlatformRegistry, RegistryOptions};

/// What Daily says when it fails; the caller must never read it, the log must.
const DAILY_TEXT: &str = "replica db-7 lost quorum";

/// A log writer that keeps every line.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn config(vars: &[(&str, String)]) -> Config {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    Config::from_vars(&vars).unwrap()
}

/// The room of the `room-meeting.json` fixture.
fn standup() -> Room {
    Room {
        skip_consent: false,
        id: "r1".into(),
        name: RoomName::parse("team-standup").unwrap(),
        user_id: None,
        created_at: DateTime::from_timestamp(1, 0).unwrap(),
        zulip_auto_post: false,
        zulip_stream: String::new(),
        zulip_topic: String::new(),
        is_locked: false,
        room_mode: RoomMode::Normal,
        recording_type: RecordingType::Cloud,
        recording_trigger: RecordingTrigger::Automatic2ndParticipant,
        is_shared: false,
        platform: Platform::Daily,
    }
}

/// The meeting get-or-create of the fixture against a rooms API over `config`: the status, the
/// answer's detail, and every JSON log line written meanwhile.
fn get_or_create(config: Config) -> (u16, String, Vec<Value>) {
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    let event = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../events/rooms-api/room-meeting.json"
    ))
    .unwrap();
    let (status, body) = tracing::subscriber::with_default(subscriber, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let rooms = Arc::new(MemoryRooms::default());
            rooms.rooms.lock().unwrap().push(standup());
            let registry = PlatformRegistry::from_config(
                &config,
                RegistryOptions {
                    http: HttpSettings::fast_for_tests(),
                    ..Default::default()
                },
            );
            let deps = Deps::new(
                Arc::new(config),
                rooms,
                Arc::new(MemoryMeetings::default()),
                Arc::new(MemoryConsents::default()),
                Arc::new(registry),
            )
            .unwrap();
            let app = shared::http::standalone(router(Arc::new(deps)));
            let request = lambda_http::request::from_str(&event).unwrap();
            let response = match app.oneshot(request).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            let status = response.status().as_u16();
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            (status, serde_json::from_slice::<Value>(&bytes).unwrap())
        })
    });
    let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
    let logged = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (status, body["detail"].as_str().unwrap().to_owned(), logged)
}

fn failure_line(logged: &[Value]) -> &Value {
    logged
        .iter()
        .find(|l| l["fields"]["message"] == "platform failure")
        .unwrap_or_else(|| panic!("no platform failure logged: {logged:?}"))
}

#[test]
fn a_platform_failure_answers_what_failed_and_logs_the_platforms_words_with_the_detail() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let daily =
        runtime.block_on(async {
            let daily = MockServer::start().await;
            Mock::given(method("POST"))
                .and(path("/v1/rooms"))
                .respond_with(ResponseTemplate::new(500).set_body_json(
                    serde_json::json!({"error": "server-error", "info": DAILY_TEXT}),
                ))
                .mount(&daily)
                .await;
            daily
        });
    let (status, detail, logged) = get_or_create(config(&[
        ("DAILY_API_URL", format!("{}/v1", daily.uri())),
        ("DAILY_API_KEY", "log-test-key".into()),
        ("DAILY_MIGRATION_ENABLED", "true".into()),
        ("DEFAULT_VIDEO_PLATFORM", "daily".into()),
    ]));
    assert_eq!(status, 502);
    assert_eq!(detail, "Daily could not create the room; try again");
    let line = failure_line(&logged);
    assert_eq!(line["fields"]["detail"], detail.as_str(), "{line}");
    assert_eq!(line["fields"]["status"], 502, "{line}");
    let error = line["fields"]["error"].as_str().unwrap();
    assert!(error.contains(DAILY_TEXT), "{error}");
    assert!(!logged
        .iter()
        .any(|l| l.to_string().contains("log-test-key")));
    drop(daily);
}

#[test]
fn a_misconfigured_platform_answers_without_the_variable_and_logs_it() {
    // Whereby is the platform with the migration off, and it has no key here.
    let (status, detail, logged) = get_or_create(config(&[]));
    assert_eq!(status, 502);
    assert_eq!(
        detail,
        "Whereby could not create the room: this service is not set up for Whereby"
    );
    let line = failure_line(&logged);
    assert_eq!(line["fields"]["detail"], detail.as_str(), "{line}");
    let error = line["fields"]["error"].as_str().unwrap();
    assert!(error.contains("WHEREBY_API_KEY"), "{error}");
}
