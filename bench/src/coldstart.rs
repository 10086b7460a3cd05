//! One cold start: a fresh Runtime API and AWS proxy, the function's `bootstrap` spawned with the
//! environment Lambda gives it, timed from spawn to its first `GET /next` (init) and to its
//! answer (first invocation), then killed. The binary is in the page cache after the first run,
//! as it is on a warm Lambda host; the sandbox's own start is not part of the figure.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde::Serialize;
use serde_json::Value;

use crate::cases::{Case, CaseError, CaseFile, FunctionLimits};
use crate::platform::FakePlatform;
use crate::proxy::CountingProxy;
use crate::runtime::{Invocation, Outcome, Report, RuntimeApi};
use crate::stats::{median, percentile};

/// How long one run may take before it counts as "no response".
pub const RUN_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum ColdStartError {
    #[error(transparent)]
    Case(#[from] CaseError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("no bootstrap for {function} at {path} (build it with cargo lambda build --release)")]
    NoBinary { function: String, path: PathBuf },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ColdStartError {
    let what = what.into();
    move |source| ColdStartError::Io { what, source }
}

/// What one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    /// Spawn to first `GET /next`, ms; `None` when it never asked.
    pub init_ms: Option<f64>,
    /// Spawn to response or error, ms; `None` when it never answered.
    pub first_response_ms: Option<f64>,
    /// Peak resident memory (VmHWM) when it answered, KiB.
    pub peak_rss_kib: Option<u64>,
    /// `HTTP 501`, `error: ...`, `init error: ...`, `no response ...`.
    pub outcome: String,
    /// AWS operations the process made, in order.
    pub aws_calls: Vec<String>,
    /// Of `first_response_ms`, the time a request was waiting on the AWS emulator, ms.
    pub aws_wait_ms: f64,
    /// Video-platform requests it made (to [`FakePlatform`]), in order.
    pub platform_calls: Vec<String>,
}

/// The figures of one case over all its runs.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub function: String,
    pub case: String,
    pub exercises: String,
    pub runs: usize,
    pub init_median_ms: Option<f64>,
    pub init_p90_ms: Option<f64>,
    pub first_response_median_ms: Option<f64>,
    pub first_response_p90_ms: Option<f64>,
    pub peak_rss_median_kib: Option<f64>,
    /// Median time the first invocation waited on the AWS emulator (the rest is the function's).
    pub aws_wait_median_ms: Option<f64>,
    /// Median of each run's first response less its wait on the emulator: the function's own
    /// time (start-up, its code, the SDK, the loopback hops), whatever the emulator's speed.
    pub own_median_ms: Option<f64>,
    /// Outcome -> number of runs that ended that way.
    pub outcomes: BTreeMap<String, usize>,
    /// AWS operation -> count, from the first run (later runs of the same event are the same
    /// unless the function deduplicates; placeholders give each run fresh ids).
    pub aws_calls_first_run: BTreeMap<String, usize>,
    pub aws_calls_per_run_median: Option<f64>,
    /// Video-platform request -> count, from the first run.
    pub platform_calls_first_run: BTreeMap<String, usize>,
    /// The same case with the baseline build, run alternately with ours ([`run_case_against`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Box<CaseResult>>,
    /// What the baseline build is (a git revision).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_label: Option<String>,
}

pub struct Settings<'a> {
    pub root: &'a Path,
    pub bin_dir: &'a Path,
    pub emulator: &'a str,
    pub runs: usize,
    pub log: &'a Path,
}

pub async fn run_case(
    settings: &Settings<'_>,
    file: &CaseFile,
    case: &Case,
) -> Result<CaseResult, ColdStartError> {
    let bin = bootstrap(settings.bin_dir, case)?;
    let env = case.env(file, settings.emulator);
    let limits = case.limits(file)?;
    let mut runs = Vec::with_capacity(settings.runs);
    for _ in 0..settings.runs {
        runs.push(run_once(settings, case, limits, &bin, &env).await?);
    }
    Ok(summarise(case, &runs))
}

/// Runs the case with `baseline`'s binaries (an earlier build of the same functions) and with
/// ours, alternately run for run, so both meet the same machine load and the ratio of their
/// medians says which is faster even on a noisy machine. Ours carries the baseline's figures.
pub async fn run_case_against(
    settings: &Settings<'_>,
    baseline: &Baseline<'_>,
    file: &CaseFile,
    case: &Case,
) -> Result<CaseResult, ColdStartError> {
    let ours_bin = bootstrap(settings.bin_dir, case)?;
    let Ok(baseline_bin) = bootstrap(baseline.bin_dir, case) else {
        // A function the baseline did not have yet: nothing to compare with.
        let mut result = run_case(settings, file, case).await?;
        result.baseline_label = Some(baseline.label.to_owned());
        return Ok(result);
    };
    let env = case.env(file, settings.emulator);
    let limits = case.limits(file)?;
    let mut ours = Vec::with_capacity(settings.runs);
    let mut before = Vec::with_capacity(settings.runs);
    for _ in 0..settings.runs {
        before.push(run_once(settings, case, limits, &baseline_bin, &env).await?);
        ours.push(run_once(settings, case, limits, &ours_bin, &env).await?);
    }
    let mut result = summarise(case, &ours);
    result.baseline = Some(Box::new(summarise(case, &before)));
    result.baseline_label = Some(baseline.label.to_owned());
    Ok(result)
}

/// An earlier build to compare with: its bootstrap directory and what to call it in the report.
pub struct Baseline<'a> {
    pub bin_dir: &'a Path,
    pub label: &'a str,
}

fn bootstrap(bin_dir: &Path, case: &Case) -> Result<PathBuf, ColdStartError> {
    let bin = bin_dir.join(&case.function).join("bootstrap");
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(ColdStartError::NoBinary {
            function: case.function.clone(),
            path: bin,
        })
    }
}

async fn run_once(
    settings: &Settings<'_>,
    case: &Case,
    limits: FunctionLimits,
    bin: &Path,
    env: &BTreeMap<String, String>,
) -> Result<Run, ColdStartError> {
    let now = Utc::now();
    let event = case.event(settings.root, env, now)?;
    let proxy = CountingProxy::start(settings.emulator)
        .await
        .map_err(io("starting the AWS proxy"))?;
    let platform_key = env
        .get(PLATFORM_KEY_VAR)
        .map(String::as_str)
        .unwrap_or_default();
    let platform = FakePlatform::start(platform_key)
        .await
        .map_err(io("starting the fake video platform"))?;
    let platform_url = platform.url();
    let env = env
        .iter()
        .map(|(k, v)| (k.clone(), v.replace("{platform}", &platform_url)));
    let function_arn = format!(
        "arn:aws:lambda:us-east-1:123456789012:function:{}",
        case.function
    );
    let mut api = RuntimeApi::start(Invocation {
        request_id: uuid::Uuid::new_v4().to_string(),
        function_arn,
        // Lambda's deadline is the function's timeout from the invocation: the processor, for
        // one, starts no record with less than a minute left.
        deadline_ms: now.timestamp_millis() + (limits.timeout_seconds * 1000) as i64,
        trace_id: format!(
            "Root=1-{:08x}-{}",
            now.timestamp(),
            &uuid::Uuid::new_v4().simple().to_string()[..24]
        ),
        event,
    })
    .await
    .map_err(io("starting the Runtime API"))?;

    let log = File::options()
        .create(true)
        .append(true)
        .open(settings.log)
        .map_err(io(format!("opening {}", settings.log.display())))?;
    let log2 = log.try_clone().map_err(io("cloning the log handle"))?;
    let mut command = Command::new(bin);
    command
        .env_clear()
        .envs(lambda_env(&case.function, limits, api.addr, &proxy.url()))
        .envs(env)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);

    let t0 = Instant::now();
    let mut child = command
        .spawn()
        .map_err(io(format!("spawning {}", bin.display())))?;
    let pid = child.id();
    let mut init = None;
    let mut done = None;
    let deadline = tokio::time::Instant::now() + RUN_TIMEOUT;
    let mut exited = None;
    while done.is_none() && exited.is_none() {
        tokio::select! {
            report = api.reports.recv() => match report {
                Some(Report::Next(t)) => { init.get_or_insert(t - t0); }
                Some(Report::Done(t, outcome)) => done = Some((t - t0, outcome)),
                None => break,
            },
            // A process that dies during init never calls us: notice it instead of waiting.
            _ = tokio::time::sleep(Duration::from_millis(20)) => {
                if let Ok(Some(status)) = child.try_wait() { exited = Some(status); }
            },
            _ = tokio::time::sleep_until(deadline) => break,
        }
    }
    let peak_rss_kib = vm_hwm_kib(pid);
    let _ = child.kill();
    let _ = child.wait();
    let outcome = match (&done, exited) {
        (Some((_, o)), _) => describe(o),
        (None, Some(status)) => format!("exited ({status}) before answering"),
        (None, None) => format!("no response in {} s", RUN_TIMEOUT.as_secs()),
    };
    Ok(Run {
        init_ms: init.map(ms),
        first_response_ms: done.map(|(d, _)| ms(d)),
        peak_rss_kib,
        outcome,
        aws_calls: proxy.calls(),
        aws_wait_ms: ms(proxy.waited()),
        platform_calls: platform.calls(),
    })
}

/// The case variable whose value the fake platform expects as its bearer token.
const PLATFORM_KEY_VAR: &str = "WHEREBY_API_KEY";

/// What Lambda sets for a custom runtime (the subset the Rust runtime and SDK read).
fn lambda_env(
    function: &str,
    limits: FunctionLimits,
    api: std::net::SocketAddr,
    aws_endpoint: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_LAMBDA_RUNTIME_API", api.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME", function.to_owned()),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            limits.memory_mb.to_string(),
        ),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON".into()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{function}"),
        ),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "bench".into()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into()),
        ("AWS_EXECUTION_ENV", "AWS_Lambda_rust".into()),
        ("LAMBDA_TASK_ROOT", "/var/task".into()),
        ("_HANDLER", "bootstrap".into()),
        ("TZ", ":UTC".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_DEFAULT_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_SESSION_TOKEN", "testing".into()),
        ("AWS_ENDPOINT_URL", aws_endpoint.to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
    ]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Peak resident set of a live process, from `/proc/<pid>/status`.
pub fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_hwm(&status)
}

fn parse_vm_hwm(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// A short description of what the function answered.
pub fn describe(outcome: &Outcome) -> String {
    let json = |b: &[u8]| serde_json::from_slice::<Value>(b).ok();
    match outcome {
        Outcome::Response(body) => match json(body) {
            Some(v) if v.get("statusCode").is_some() => {
                format!("HTTP {}", v["statusCode"])
            }
            // The item identifiers are the runs' fresh message ids: count them, so equal
            // answers group together.
            Some(Value::Object(o)) if o.len() == 1 && o.contains_key("batchItemFailures") => {
                let n = o["batchItemFailures"].as_array().map_or(0, Vec::len);
                format!("SQS batch response, {n} item failure(s)")
            }
            _ => format!("response {}", truncate(&String::from_utf8_lossy(body), 160)),
        },
        Outcome::Error(body) => format!("error: {}", error_message(body)),
        Outcome::InitError(body) => format!("init error: {}", error_message(body)),
    }
}

fn error_message(body: &[u8]) -> String {
    let text = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| {
            v.get("errorMessage")
                .and_then(|m| m.as_str().map(str::to_owned))
        })
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    truncate(&text, 60)
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        format!("{}...", s.chars().take(n).collect::<String>())
    }
}

pub fn summarise(case: &Case, runs: &[Run]) -> CaseResult {
    let init: Vec<f64> = runs.iter().filter_map(|r| r.init_ms).collect();
    let first: Vec<f64> = runs.iter().filter_map(|r| r.first_response_ms).collect();
    let rss: Vec<f64> = runs
        .iter()
        .filter_map(|r| r.peak_rss_kib.map(|k| k as f64))
        .collect();
    let calls: Vec<f64> = runs.iter().map(|r| r.aws_calls.len() as f64).collect();
    let aws_wait: Vec<f64> = runs.iter().map(|r| r.aws_wait_ms).collect();
    let own: Vec<f64> = runs
        .iter()
        .filter_map(|r| r.first_response_ms.map(|t| t - r.aws_wait_ms))
        .collect();
    let mut outcomes = BTreeMap::new();
    for r in runs {
        *outcomes.entry(r.outcome.clone()).or_insert(0) += 1;
    }
    let count_first = |calls: fn(&Run) -> &[String]| {
        let mut counts = BTreeMap::new();
        for c in runs.first().map(calls).unwrap_or(&[]) {
            *counts.entry(c.clone()).or_insert(0) += 1;
        }
        counts
    };
    CaseResult {
        function: case.function.clone(),
        case: case.case.clone(),
        exercises: case.exercises.clone(),
        runs: runs.len(),
        init_median_ms: median(&init),
        init_p90_ms: percentile(&init, 90.0),
        first_response_median_ms: median(&first),
        first_response_p90_ms: percentile(&first, 90.0),
        peak_rss_median_kib: median(&rss),
        aws_wait_median_ms: median(&aws_wait),
        own_median_ms: median(&own),
        outcomes,
        aws_calls_first_run: count_first(|r| &r.aws_calls),
        aws_calls_per_run_median: median(&calls),
        platform_calls_first_run: count_first(|r| &r.platform_calls),
        baseline: None,
        baseline_label: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_hwm_is_read_in_kib() {
        let status =
            "Name:\tbootstrap\nVmPeak:\t  9000 kB\nVmHWM:\t    4321 kB\nVmRSS:\t 4000 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(4321));
        assert_eq!(parse_vm_hwm("Name: x\n"), None);
    }

    #[test]
    fn own_process_has_a_peak_rss() {
        assert!(vm_hwm_kib(std::process::id()).unwrap() > 0);
    }

    #[test]
    fn http_responses_are_described_by_status_and_errors_by_message() {
        let http = Outcome::Response(br#"{"statusCode":501,"body":"{}"}"#.to_vec());
        assert_eq!(describe(&http), "HTTP 501");
        let err = Outcome::Error(
            br#"{"errorType":"&str","errorMessage":"recording-processor: not implemented"}"#
                .to_vec(),
        );
        assert_eq!(
            describe(&err),
            "error: recording-processor: not implemented"
        );
        let batch = Outcome::Response(
            br#"{"batchItemFailures":[{"itemIdentifier":"2918cbe7-dc4f"}]}"#.to_vec(),
        );
        assert_eq!(describe(&batch), "SQS batch response, 1 item failure(s)");
        let empty = Outcome::Response(br#"{"batchItemFailures":[]}"#.to_vec());
        assert_eq!(describe(&empty), "SQS batch response, 0 item failure(s)");
        let other = Outcome::Response(br#"{"checked":2,"deactivated":0}"#.to_vec());
        assert_eq!(
            describe(&other),
            r#"response {"checked":2,"deactivated":0}"#
        );
        let init = Outcome::InitError(b"plain text".to_vec());
        assert_eq!(describe(&init), "init error: plain text");
    }

    #[test]
    fn the_functions_own_time_is_each_runs_response_less_its_wait_on_aws() {
        let case: Case = serde_json::from_value(serde_json::json!({
            "function": "f", "case": "aws", "exercises": "x", "event_file": "e.json"
        }))
        .unwrap();
        let run = |first: Option<f64>, wait: f64| Run {
            init_ms: Some(4.0),
            first_response_ms: first,
            peak_rss_kib: None,
            outcome: "HTTP 200".into(),
            aws_calls: vec!["DynamoDB.GetItem".into()],
            aws_wait_ms: wait,
            platform_calls: Vec::new(),
        };
        // Own: 8 and 16 (the run that never answered has none); waits 12, 14 and 2.
        let result = summarise(
            &case,
            &[run(Some(20.0), 12.0), run(Some(30.0), 14.0), run(None, 2.0)],
        );
        assert_eq!(result.own_median_ms, Some(12.0));
        assert_eq!(result.aws_wait_median_ms, Some(12.0));
    }
}
