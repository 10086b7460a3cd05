//! The cold-start event table (`bench/coldstart-cases.json`): per function, one event that is
//! answered before any AWS call (`no-aws`) and one that makes the SDK clients' first request
//! (`aws`), each with a sentence saying what it exercises. The file is data, so the events can
//! follow the functions as they are implemented without touching the harness.
//!
//! Placeholders, replaced on every run so that deduplication never turns a run into a replay:
//! `{uuid}` (a fresh id), `{now_s}`, `{now_ms}`, `{now_iso}` (RFC 3339, ms) in bodies and events; `{emulator}` (the AWS
//! emulator's endpoint) and `{platform}` (the run's fake video platform, see
//! [`crate::platform`]) in env values. HTTP events are wrapped in an API Gateway HTTP API
//! (payload 2.0) event; `sign` adds a valid webhook signature with the secret from the env.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use shared::webhook::signature::{sign_daily, sign_daily_seed, sign_whereby};

#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid case file: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("case {function}/{case}: {reason}")]
    Invalid {
        function: String,
        case: String,
        reason: String,
    },
}

#[derive(Debug, Clone, Deserialize)]
pub struct CaseFile {
    /// Env for every function (per-case `env` overrides it).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Meetings to create before the runs (see [`crate::seed`]).
    #[serde(default)]
    pub seed_meetings: Vec<crate::seed::SeedMeeting>,
    /// Each function's timeout and memory as template.yaml gives them (a template check keeps
    /// them equal): the invocation's deadline and `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` of a run.
    pub functions: BTreeMap<String, FunctionLimits>,
    pub cases: Vec<Case>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub struct FunctionLimits {
    pub timeout_seconds: u64,
    pub memory_mb: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Case {
    pub function: String,
    /// `no-aws` or `aws`.
    pub case: String,
    /// What the event exercises today, printed with the figures.
    pub exercises: String,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// An API Gateway request (HTTP functions).
    pub http: Option<HttpSpec>,
    /// A raw event file (SQS, schedule), relative to the workspace root.
    pub event_file: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HttpSpec {
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub query: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub body: Option<String>,
    /// A body file relative to the workspace root (wins over `body`).
    pub body_file: Option<String>,
    /// `daily`, `daily-seed` or `whereby`: sign the body with `DAILY_WEBHOOK_SECRET` /
    /// `WHEREBY_WEBHOOK_SECRET` from the case's env.
    pub sign: Option<String>,
}

impl CaseFile {
    pub fn load(path: &Path) -> Result<Self, CaseError> {
        let text = std::fs::read_to_string(path).map_err(|source| CaseError::Read {
            path: path.to_owned(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| CaseError::Parse {
            path: path.to_owned(),
            source,
        })
    }
}

impl Case {
    /// The limits of this case's function, from the file's `functions`.
    pub fn limits(&self, file: &CaseFile) -> Result<FunctionLimits, CaseError> {
        file.functions
            .get(&self.function)
            .copied()
            .ok_or_else(|| self.invalid("the file's `functions` has no timeout for it"))
    }

    fn invalid(&self, reason: impl Into<String>) -> CaseError {
        CaseError::Invalid {
            function: self.function.clone(),
            case: self.case.clone(),
            reason: reason.into(),
        }
    }

    /// The environment of this case: the file's, then the case's, `{emulator}` substituted.
    pub fn env(&self, file: &CaseFile, emulator: &str) -> BTreeMap<String, String> {
        file.env
            .iter()
            .chain(self.env.iter())
            .map(|(k, v)| (k.clone(), v.replace("{emulator}", emulator)))
            .collect()
    }

    /// The event bytes of one run, with fresh placeholders and, for HTTP, fresh signatures.
    pub fn event(
        &self,
        root: &Path,
        env: &BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> Result<Vec<u8>, CaseError> {
        match (&self.http, &self.event_file) {
            (Some(spec), None) => self.http_event(spec, root, env, now),
            (None, Some(file)) => {
                let text = self.read(root, file)?;
                Ok(fill(&text, now).into_bytes())
            }
            _ => Err(self.invalid("give exactly one of `http` and `event_file`")),
        }
    }

    fn read(&self, root: &Path, file: &str) -> Result<String, CaseError> {
        let path = root.join(file);
        std::fs::read_to_string(&path).map_err(|source| CaseError::Read { path, source })
    }

    fn http_event(
        &self,
        spec: &HttpSpec,
        root: &Path,
        env: &BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> Result<Vec<u8>, CaseError> {
        let body = match (&spec.body_file, &spec.body) {
            (Some(file), _) => Some(fill(&self.read(root, file)?, now)),
            (None, Some(b)) => Some(fill(b, now)),
            (None, None) => None,
        };
        let mut headers: BTreeMap<String, String> = spec
            .headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect();
        if let Some(scheme) = &spec.sign {
            let raw = body.as_deref().unwrap_or("").as_bytes();
            let secret = |var: &str| {
                env.get(var)
                    .cloned()
                    .ok_or_else(|| self.invalid(format!("sign={scheme} needs {var} in env")))
            };
            let signed = match scheme.as_str() {
                "daily" => sign_daily(&secret("DAILY_WEBHOOK_SECRET")?, now.timestamp(), raw)
                    .map_err(|e| self.invalid(e.to_string()))?,
                "daily-seed" => sign_daily_seed(&secret("DAILY_WEBHOOK_SECRET")?, raw),
                "whereby" => sign_whereby(&secret("WHEREBY_WEBHOOK_SECRET")?, now.timestamp(), raw),
                other => return Err(self.invalid(format!("unknown sign scheme {other:?}"))),
            };
            headers.extend(signed.into_iter().map(|(k, v)| (k.to_owned(), v)));
        }
        if body.is_some() {
            headers
                .entry("content-type".into())
                .or_insert_with(|| "application/json".into());
        }
        let event = apigw_v2(&spec.method, &spec.path, &spec.query, &headers, body, now);
        serde_json::to_vec(&event).map_err(|e| self.invalid(e.to_string()))
    }
}

/// `text` with the placeholders of the module doc filled in for a run at `now`.
pub fn fill(text: &str, now: DateTime<Utc>) -> String {
    let mut out = text
        .replace("{now_ms}", &now.timestamp_millis().to_string())
        .replace("{now_s}", &now.timestamp().to_string())
        .replace(
            "{now_iso}",
            &now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        );
    // Each `{uuid}` gets its own id.
    while let Some(i) = out.find("{uuid}") {
        out.replace_range(i..i + 6, &uuid::Uuid::new_v4().to_string());
    }
    out
}

/// An API Gateway HTTP API (payload format 2.0) event, as Lambda delivers it to `lambda_http`.
pub fn apigw_v2(
    method: &str,
    path: &str,
    query: &str,
    headers: &BTreeMap<String, String>,
    body: Option<String>,
    now: DateTime<Utc>,
) -> Value {
    let route_key = format!("{method} {path}");
    json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "bench",
            "domainName": "bench.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "bench",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "reflector-bench"
            },
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": route_key,
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S +0000").to_string(),
            "timeEpoch": now.timestamp_millis()
        },
        "isBase64Encoded": false,
        "body": body
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;
    use shared::webhook::signature::{verify_daily, verify_whereby};

    fn case(json: Value) -> Case {
        serde_json::from_value(json).unwrap()
    }

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    fn headers_of(event: &Value) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in event["headers"].as_object().unwrap() {
            h.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.as_str().unwrap().parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn uuid_placeholders_get_distinct_fresh_ids() {
        let out = fill(r#"{"a":"{uuid}","b":"{uuid}","t":{now_s}}"#, Utc::now());
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_ne!(v["a"], v["b"]);
        assert!(uuid::Uuid::parse_str(v["a"].as_str().unwrap()).is_ok());
        assert!(v["t"].is_i64());
    }

    #[test]
    fn the_iso_placeholder_is_the_run_time_whereby_parses_as_created_at() {
        let now = Utc::now();
        let out = fill(r#"{"createdAt":"{now_iso}"}"#, now);
        let v: Value = serde_json::from_str(&out).unwrap();
        let at = DateTime::parse_from_rfc3339(v["createdAt"].as_str().unwrap()).unwrap();
        assert_eq!(at.timestamp_millis(), now.timestamp_millis());
    }

    #[test]
    fn signed_daily_event_verifies_with_the_env_secret() {
        let secret = "c2VjcmV0LWtleS1mb3ItYmVuY2g=";
        let c = case(json!({
            "function": "daily-webhook", "case": "no-aws", "exercises": "x",
            "http": {"method": "POST", "path": "/v1/daily_webhook",
                     "body": "{\"id\":\"{uuid}\"}", "sign": "daily"}
        }));
        let now = Utc::now();
        let bytes = c
            .event(
                Path::new("."),
                &env(&[("DAILY_WEBHOOK_SECRET", secret)]),
                now,
            )
            .unwrap();
        let event: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(event["version"], "2.0");
        assert_eq!(event["requestContext"]["http"]["method"], "POST");
        let body = event["body"].as_str().unwrap();
        assert!(!body.contains("{uuid}"));
        let secret = SecretString::from(secret.to_owned());
        verify_daily(Some(&secret), &headers_of(&event), body.as_bytes(), now).unwrap();
    }

    #[test]
    fn signed_whereby_event_verifies_and_a_tampered_one_does_not() {
        let c = case(json!({
            "function": "whereby-webhook", "case": "aws", "exercises": "x",
            "http": {"method": "POST", "path": "/v1/whereby", "body": "{}", "sign": "whereby"}
        }));
        let now = Utc::now();
        let bytes = c
            .event(
                Path::new("."),
                &env(&[("WHEREBY_WEBHOOK_SECRET", "s")]),
                now,
            )
            .unwrap();
        let event: Value = serde_json::from_slice(&bytes).unwrap();
        let secret = SecretString::from("s".to_owned());
        let headers = headers_of(&event);
        verify_whereby(Some(&secret), &headers, b"{}", now).unwrap();
        assert!(verify_whereby(Some(&secret), &headers, b"{ }", now).is_err());
    }

    #[test]
    fn signing_without_the_secret_is_a_case_error_naming_the_variable() {
        let c = case(json!({
            "function": "whereby-webhook", "case": "aws", "exercises": "x",
            "http": {"method": "POST", "path": "/v1/whereby", "body": "{}", "sign": "whereby"}
        }));
        let err = c
            .event(Path::new("."), &BTreeMap::new(), Utc::now())
            .unwrap_err();
        assert!(err.to_string().contains("WHEREBY_WEBHOOK_SECRET"), "{err}");
    }

    #[test]
    fn env_values_get_the_emulator_endpoint() {
        let file: CaseFile = serde_json::from_value(json!({
            "env": {"Q": "{emulator}/123456789012/q", "A": "1"},
            "functions": {"f": {"timeout_seconds": 10, "memory_mb": 128}},
            "cases": [{"function": "f", "case": "aws", "exercises": "x",
                       "env": {"A": "2"}, "event_file": "e.json"}]
        }))
        .unwrap();
        let e = file.cases[0].env(&file, "http://127.0.0.1:9");
        assert_eq!(e["Q"], "http://127.0.0.1:9/123456789012/q");
        assert_eq!(e["A"], "2");
    }

    #[test]
    fn a_case_of_a_function_without_limits_is_refused_by_name() {
        let file: CaseFile = serde_json::from_value(json!({
            "functions": {"f": {"timeout_seconds": 900, "memory_mb": 256}},
            "cases": [{"function": "f", "case": "aws", "exercises": "x", "event_file": "e.json"},
                      {"function": "g", "case": "aws", "exercises": "x", "event_file": "e.json"}]
        }))
        .unwrap();
        assert_eq!(
            file.cases[0].limits(&file).unwrap(),
            FunctionLimits {
                timeout_seconds: 900,
                memory_mb: 256
            }
        );
        let err = file.cases[1].limits(&file).unwrap_err().to_string();
        assert!(err.contains("g/aws") && err.contains("timeout"), "{err}");
    }

    #[test]
    fn the_shipped_case_file_loads_and_every_event_builds() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let file = CaseFile::load(&root.join("bench/coldstart-cases.json")).unwrap();
        assert!(!file.cases.is_empty());
        for c in &file.cases {
            c.limits(&file).unwrap();
            let e = c.env(&file, "http://127.0.0.1:9");
            let bytes = c.event(&root, &e, Utc::now()).unwrap();
            let _: Value = serde_json::from_slice(&bytes)
                .unwrap_or_else(|err| panic!("{}/{}: {err}", c.function, c.case));
        }
    }
}
