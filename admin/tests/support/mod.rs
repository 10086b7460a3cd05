//! Running `reflector-admin` as a process against the emulator and the fake platforms, beside
//! a local stack that shares its tables.

#![allow(dead_code)] // each test binary uses its own part of this module

use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use shared::config::TableNames;

use reflector_tests::platforms::PlatformFakes;
use reflector_tests::{clients_for, config_with, emulator_endpoint, unique_prefix};

/// `DAILY_DOMAIN_ID`, so Daily join tokens are signed without asking the fake.
pub const DAILY_DOMAIN: &str = "admin-test-domain";

/// What a finished `reflector-admin` run left.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Self {
        Self {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Stdout as JSON; fails the test when it is not.
    pub fn json(&self) -> Value {
        assert_eq!(self.code, 0, "{self:?}");
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }
}

/// The table variables of a stack whose tables carry `prefix`.
pub fn table_vars(prefix: &str) -> Vec<(String, String)> {
    let t = TableNames::with_prefix(prefix);
    [
        ("ROOMS_TABLE", t.rooms),
        ("MEETINGS_TABLE", t.meetings),
        ("PARTICIPANT_SESSIONS_TABLE", t.participant_sessions),
        ("RECORDINGS_TABLE", t.recordings),
        ("TRANSCRIPTS_TABLE", t.transcripts),
        ("MEETING_CONSENTS_TABLE", t.meeting_consents),
        ("WEBHOOK_EVENTS_TABLE", t.webhook_events),
        ("CONFIG_TABLE", t.config),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Runs `reflector-admin args` with exactly `vars` as its product configuration (the AWS
/// emulator's variables are inherited from the test process).
pub async fn admin(vars: &[(String, String)], args: &[&str]) -> Run {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_reflector-admin"));
    for (k, _) in std::env::vars() {
        if k.starts_with("DAILY_")
            || k.starts_with("WHEREBY_")
            || k.ends_with("_TABLE")
            || k == "DEFAULT_VIDEO_PLATFORM"
            || k == "FLAGS_CACHE_SECONDS"
        {
            cmd.env_remove(k);
        }
    }
    cmd.envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .args(args);
    // On a blocking thread, so the stack serving this test keeps running meanwhile.
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("the admin process is awaited")
        .expect("reflector-admin runs");
    Run::from(out)
}

/// A local stack on the emulator with both fake platforms, its own tables, and the runtime
/// flags cached for one second.
pub struct Stack {
    pub running: local::Running,
    pub http: reqwest::Client,
    pub base: String,
    pub fakes: PlatformFakes,
    /// The configuration the stack and `reflector-admin` share.
    pub vars: Vec<(String, String)>,
}

impl Stack {
    pub async fn start(test: &str) -> Self {
        let fakes = PlatformFakes::start().await;
        let endpoint = emulator_endpoint();
        let prefix = unique_prefix(test);
        let mut vars = fakes.vars();
        vars.push(("DAILY_DOMAIN_ID".into(), DAILY_DOMAIN.into()));
        vars.push(("FLAGS_CACHE_SECONDS".into(), "1".into()));
        let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let running = local::start(
            config_with(&prefix, &endpoint, &pairs),
            clients_for(&endpoint).await,
            local::Options {
                resource_prefix: prefix.clone(),
                background: false,
                ..Default::default()
            },
        )
        .await
        .expect("local stack starts");
        vars.extend(table_vars(&prefix));
        Self {
            base: format!("http://{}", running.addr),
            running,
            http: reqwest::Client::new(),
            fakes,
            vars,
        }
    }

    pub async fn admin(&self, args: &[&str]) -> Run {
        admin(&self.vars, args).await
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            request = request.json(&b);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn create_room(&self, name: &str) -> Value {
        let (s, room) = self
            .call(
                reqwest::Method::POST,
                "/v1/rooms",
                Some(json!({ "name": name })),
            )
            .await;
        assert_eq!(s, 200, "{room}");
        room
    }

    /// The room's active meeting, made now if it has none.
    pub async fn meeting(&self, room: &str) -> Value {
        let (s, m) = self
            .call(
                reqwest::Method::POST,
                &format!("/v1/rooms/{room}/meeting"),
                None,
            )
            .await;
        assert_eq!(s, 200, "{m}");
        m
    }

    /// Joins the meeting as an anonymous caller; the answered `room_url`.
    pub async fn join(&self, room: &str, meeting_id: &str) -> String {
        let (s, m) = self
            .call(
                reqwest::Method::POST,
                &format!("/v1/rooms/{room}/meetings/{meeting_id}/join"),
                None,
            )
            .await;
        assert_eq!(s, 200, "{m}");
        m["room_url"].as_str().unwrap().to_owned()
    }

    /// Polls the room until the API shows `platform` as its next meeting's: the rooms API
    /// reads the flags through the same cache as meeting creation.
    pub async fn wait_for_platform(&self, room: &str, platform: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (s, r) = self
                .call(
                    reqwest::Method::GET,
                    &format!("/v1/rooms/name/{room}"),
                    None,
                )
                .await;
            assert_eq!(s, 200, "{r}");
            if r["platform"] == platform {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "room {room} still shows {} instead of {platform}",
                r["platform"]
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn stop(self) {
        self.running.stop().await;
    }
}
