//! Operational metrics, in one place: every metric's name and unit ([`Metric`]), the dimensions
//! ([`Function`], the platform, a [`Detail`]) and where the figures go ([`Sink`]).
//!
//! In Lambda each sample is one line of CloudWatch Embedded Metric Format on stdout
//! ([`EmfStdout`]): CloudWatch Logs turns the line into metrics, so recording one costs no API
//! call and no wait, only the log line. `reflector-local` aggregates the same samples in memory
//! ([`Registry`]) and serves them at `GET /metrics`. Handlers hold a [`Metrics`] handle in their
//! dependencies, so a test or the local stack chooses the sink per stack.
//!
//! Dimension sets: `[Function]`, or `[Function, Platform]` when the platform is known; a sample
//! with a [`Detail`] (a rejection's reason, a failure's kind) is also published with that
//! dimension added, so alarms read the total and the dashboard the breakdown.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::domain::Platform;

/// The CloudWatch namespace of every metric (the alarms and the dashboard in template.yaml
/// read this namespace; a test checks them against [`Metric::ALL`]).
pub const NAMESPACE: &str = "Reflector";

/// The dimension naming the function that emitted a sample.
pub const FUNCTION_DIMENSION: &str = "Function";
/// The dimension naming the video platform a sample is about.
pub const PLATFORM_DIMENSION: &str = "Platform";

/// CloudWatch units used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Unit {
    Count,
    Bytes,
    Seconds,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Bytes => "Bytes",
            Unit::Seconds => "Seconds",
        }
    }
}

macro_rules! metrics {
    ($($variant:ident => $name:literal, $unit:ident, $what:literal;)*) => {
        /// Every metric the code emits. The README's table lists the same names, units and
        /// meanings.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Metric {
            $(#[doc = $what] $variant,)*
        }

        impl Metric {
            /// All metrics, in the README's order.
            pub const ALL: &'static [Metric] = &[$(Metric::$variant,)*];

            /// The CloudWatch metric name.
            pub fn name(self) -> &'static str {
                match self { $(Metric::$variant => $name,)* }
            }

            pub fn unit(self) -> Unit {
                match self { $(Metric::$variant => Unit::$unit,)* }
            }

            /// What one sample counts or measures.
            pub fn description(self) -> &'static str {
                match self { $(Metric::$variant => $what,)* }
            }
        }
    };
}

metrics! {
    WebhookAccepted => "WebhookAccepted", Count,
        "a verified webhook event answered 200 (applied, or of a type we do not act on)";
    WebhookDuplicate => "WebhookDuplicate", Count,
        "a verified webhook event already handled before (a retry or replay), answered 200 without effect";
    WebhookRejected => "WebhookRejected", Count,
        "a webhook refused; Reason: missing, invalid, stale (timestamp outside the tolerance), malformed (signed but unparsable, 422), unconfigured (secret unset), too_large (413)";
    WebhookFailed => "WebhookFailed", Count,
        "a verified webhook event our own dependencies failed on, answered 503 so the platform retries";
    WebhookInProgress => "WebhookInProgress", Count,
        "a verified webhook event another delivery holds a live lease on, answered 503 with Retry-After so the platform asks again later";
    MeetingCreated => "MeetingCreated", Count,
        "a meeting created on a platform (the migration's progress, by Platform)";
    PlatformError => "PlatformError", Count,
        "a platform API call that failed (meeting creation, recording start)";
    PlatformRoomLeftBehind => "PlatformRoomLeftBehind", Count,
        "a platform room a meeting creation may have made and could not delete (its answer came too late, or the deletion failed): it expires at the meeting's end date; the warning log line names it when known";
    ParticipantJoined => "ParticipantJoined", Count,
        "a participant join recorded from a platform webhook";
    RecordingStarted => "RecordingStarted", Count,
        "a Daily recording the server started (by the processor, or by the manual start route)";
    RecordingQueued => "RecordingQueued", Count,
        "a finished recording queued for processing by the Daily webhook";
    RecordingUploaded => "RecordingUploaded", Count,
        "a recording's audio stored in the recordings bucket";
    RecordingFailed => "RecordingFailed", Count,
        "a recording job that failed; Failure: permanent (recorded, not retried) or transient (redelivered)";
    RecordingBytes => "RecordingBytes", Bytes,
        "bytes of audio moved into the recordings bucket, per recording";
    RecordingSeconds => "RecordingSeconds", Seconds,
        "seconds taken to store one recording's audio (download or copy, media check, upload)";
    PipelineMessageSent => "PipelineMessageSent", Count,
        "a hand-off message sent to the transcription pipeline queue";
    SweeperDeactivated => "SweeperDeactivated", Count,
        "meetings the sweeper ended";
    SweeperRequeued => "SweeperRequeued", Count,
        "recordings the sweeper queued again for processing";
    SweeperReconciled => "SweeperReconciled", Count,
        "meetings or recordings the sweeper corrected from Daily's own records (presence, recording list)";
    WebhookRearmed => "WebhookRearmed", Count,
        "the platform's webhook endpoint found FAILED and re-armed by the sweeper (events were lost meanwhile)";
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The function a sample comes from: the `Function` dimension, stable across deployments
/// (the binary's name, not the generated Lambda function name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Function {
    RoomsApi,
    DailyWebhook,
    WherebyWebhook,
    RecordingProcessor,
    MeetingSweeper,
}

impl Function {
    pub const ALL: &'static [Function] = &[
        Function::RoomsApi,
        Function::DailyWebhook,
        Function::WherebyWebhook,
        Function::RecordingProcessor,
        Function::MeetingSweeper,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Function::RoomsApi => "rooms-api",
            Function::DailyWebhook => "daily-webhook",
            Function::WherebyWebhook => "whereby-webhook",
            Function::RecordingProcessor => "recording-processor",
            Function::MeetingSweeper => "meeting-sweeper",
        }
    }
}

/// Why a webhook was rejected (the `Reason` dimension of [`Metric::WebhookRejected`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RejectReason {
    Missing,
    Invalid,
    Stale,
    Malformed,
    Unconfigured,
    TooLarge,
}

impl RejectReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::Missing => "missing",
            RejectReason::Invalid => "invalid",
            RejectReason::Stale => "stale",
            RejectReason::Malformed => "malformed",
            RejectReason::Unconfigured => "unconfigured",
            RejectReason::TooLarge => "too_large",
        }
    }
}

/// How a recording job failed (the `Failure` dimension of [`Metric::RecordingFailed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FailureKind {
    Permanent,
    Transient,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Permanent => "permanent",
            FailureKind::Transient => "transient",
        }
    }
}

/// A third dimension some samples carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Detail {
    Reason(RejectReason),
    Failure(FailureKind),
}

impl Detail {
    /// The dimension's name and value.
    pub fn dimension(self) -> (&'static str, &'static str) {
        match self {
            Detail::Reason(r) => ("Reason", r.as_str()),
            Detail::Failure(f) => ("Failure", f.as_str()),
        }
    }
}

/// One or more values recorded together, with their dimensions.
#[derive(Debug, Clone, Copy)]
pub struct Sample<'a> {
    pub function: Function,
    pub platform: Option<Platform>,
    pub detail: Option<Detail>,
    pub values: &'a [(Metric, f64)],
}

/// Where samples go. Implementations must not block on I/O beyond writing one line.
pub trait Sink: Send + Sync {
    fn record(&self, sample: &Sample<'_>);
}

/// A function's handle on a sink: what handlers call.
#[derive(Clone)]
pub struct Metrics {
    function: Function,
    sink: Arc<dyn Sink>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("function", &self.function)
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// The production handle: EMF lines on stdout inside Lambda, nothing elsewhere (unit tests,
    /// tools). `reflector-local` replaces it with a [`Registry`] of its own.
    pub fn standard(function: Function) -> Self {
        if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
            Self::new(function, Arc::new(EmfStdout))
        } else {
            Self::new(function, Arc::new(Discard))
        }
    }

    pub fn new(function: Function, sink: Arc<dyn Sink>) -> Self {
        Self { function, sink }
    }

    pub fn function(&self) -> Function {
        self.function
    }

    /// Records `values` together (one EMF line).
    pub fn record(
        &self,
        platform: Option<Platform>,
        detail: Option<Detail>,
        values: &[(Metric, f64)],
    ) {
        self.sink.record(&Sample {
            function: self.function,
            platform,
            detail,
            values,
        });
    }

    /// Adds one to `metric`.
    pub fn count(&self, metric: Metric, platform: Option<Platform>) {
        self.record(platform, None, &[(metric, 1.0)]);
    }

    /// Adds `n` to `metric`; nothing is recorded for 0 (an absent datapoint reads as 0 in the
    /// alarms, which fill missing data).
    pub fn add(&self, metric: Metric, platform: Option<Platform>, n: u64) {
        if n > 0 {
            self.record(platform, None, &[(metric, n as f64)]);
        }
    }

    /// A webhook refused for `reason`.
    pub fn webhook_rejected(&self, platform: Platform, reason: RejectReason) {
        self.record(
            Some(platform),
            Some(Detail::Reason(reason)),
            &[(Metric::WebhookRejected, 1.0)],
        );
    }

    /// A recording job that failed, permanently or not.
    pub fn recording_failed(&self, platform: Option<Platform>, kind: FailureKind) {
        self.record(
            platform,
            Some(Detail::Failure(kind)),
            &[(Metric::RecordingFailed, 1.0)],
        );
    }

    /// A recording's audio stored: the count, the bytes and the time it took, in one line.
    pub fn recording_uploaded(&self, platform: Platform, bytes: u64, seconds: f64) {
        self.record(
            Some(platform),
            None,
            &[
                (Metric::RecordingUploaded, 1.0),
                (Metric::RecordingBytes, bytes as f64),
                (Metric::RecordingSeconds, seconds),
            ],
        );
    }

    /// What one sweeper run did, in one line. `reconciled` and `rearmed` come from the Daily
    /// reconciliation; a zero is recorded too, so a run's line always says what it did.
    pub fn sweeper_run(&self, counts: SweeperCounts) {
        self.record(
            None,
            None,
            &[
                (Metric::SweeperDeactivated, f64::from(counts.deactivated)),
                (Metric::SweeperRequeued, f64::from(counts.requeued)),
                (Metric::SweeperReconciled, f64::from(counts.reconciled)),
            ],
        );
        if counts.webhooks_rearmed > 0 {
            self.record(
                Some(Platform::Daily),
                None,
                &[(Metric::WebhookRearmed, f64::from(counts.webhooks_rearmed))],
            );
        }
    }
}

/// The figures of one sweeper run ([`Metrics::sweeper_run`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweeperCounts {
    pub deactivated: u32,
    pub requeued: u32,
    pub reconciled: u32,
    /// Daily webhook endpoints found `FAILED` and re-armed.
    pub webhooks_rearmed: u32,
}

/// Drops every sample.
pub struct Discard;

impl Sink for Discard {
    fn record(&self, _: &Sample<'_>) {}
}

/// One EMF line per sample on stdout, where Lambda sends it to CloudWatch Logs.
pub struct EmfStdout;

impl Sink for EmfStdout {
    fn record(&self, sample: &Sample<'_>) {
        let line = emf_line(sample, chrono::Utc::now().timestamp_millis());
        let mut out = std::io::stdout().lock();
        // A metric is never worth failing a request for.
        let _ = writeln!(out, "{line}");
    }
}

/// The sample as one CloudWatch Embedded Metric Format document.
pub fn emf_line(sample: &Sample<'_>, timestamp_ms: i64) -> String {
    let mut root = Map::new();
    let mut base = vec![FUNCTION_DIMENSION];
    root.insert(FUNCTION_DIMENSION.into(), sample.function.as_str().into());
    if let Some(p) = sample.platform {
        base.push(PLATFORM_DIMENSION);
        root.insert(PLATFORM_DIMENSION.into(), p.to_string().into());
    }
    let mut sets = vec![base.clone()];
    if let Some(detail) = sample.detail {
        let (name, value) = detail.dimension();
        root.insert(name.into(), value.into());
        let mut with_detail = base;
        with_detail.push(name);
        sets.push(with_detail);
    }
    let definitions: Vec<Value> = sample
        .values
        .iter()
        .map(|(m, _)| json!({"Name": m.name(), "Unit": m.unit().as_str()}))
        .collect();
    for (metric, value) in sample.values {
        root.insert(metric.name().into(), json!(value));
    }
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": sets,
                "Metrics": definitions,
            }],
        }),
    );
    Value::Object(root).to_string()
}

/// The identity of one aggregated series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeriesKey {
    pub metric: Metric,
    pub function: Function,
    pub platform: Option<Platform>,
    pub detail: Option<Detail>,
}

/// A series' aggregate: how many samples and their sum.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Aggregate {
    pub samples: u64,
    pub sum: f64,
}

/// In-memory aggregation of samples (`reflector-local`, tests): one series per metric and
/// dimension values.
#[derive(Default)]
pub struct Registry {
    series: Mutex<BTreeMap<SeriesKey, Aggregate>>,
}

impl Sink for Registry {
    fn record(&self, sample: &Sample<'_>) {
        let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        for (metric, value) in sample.values {
            let entry = series
                .entry(SeriesKey {
                    metric: *metric,
                    function: sample.function,
                    platform: sample.platform,
                    detail: sample.detail,
                })
                .or_default();
            entry.samples += 1;
            entry.sum += value;
        }
    }
}

impl Registry {
    /// Every series, in a stable order.
    pub fn snapshot(&self) -> Vec<(SeriesKey, Aggregate)> {
        let series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        series.iter().map(|(k, v)| (*k, *v)).collect()
    }

    /// The sum of `metric` over the series `filter` keeps.
    pub fn sum_where(&self, metric: Metric, filter: impl Fn(&SeriesKey) -> bool) -> f64 {
        self.snapshot()
            .into_iter()
            .filter(|(k, _)| k.metric == metric && filter(k))
            .map(|(_, a)| a.sum)
            .fold(0.0, |a, b| a + b)
    }

    /// The JSON summary `GET /metrics?format=json` answers: the namespace, each series with its
    /// dimensions, and each metric's total over all series.
    pub fn to_json(&self) -> Value {
        let snapshot = self.snapshot();
        let mut totals = Map::new();
        for metric in Metric::ALL {
            // A fold from +0.0: an empty `sum()` of floats is -0.0.
            let sum = snapshot
                .iter()
                .filter(|(k, _)| k.metric == *metric)
                .map(|(_, a)| a.sum)
                .fold(0.0, |a, b| a + b);
            totals.insert(metric.name().into(), json!(sum));
        }
        let series: Vec<Value> = snapshot
            .iter()
            .map(|(k, a)| {
                let mut dimensions = Map::new();
                dimensions.insert(FUNCTION_DIMENSION.into(), k.function.as_str().into());
                if let Some(p) = k.platform {
                    dimensions.insert(PLATFORM_DIMENSION.into(), p.to_string().into());
                }
                if let Some(d) = k.detail {
                    let (name, value) = d.dimension();
                    dimensions.insert(name.into(), value.into());
                }
                json!({
                    "name": k.metric.name(),
                    "unit": k.metric.unit().as_str(),
                    "dimensions": dimensions,
                    "samples": a.samples,
                    "sum": a.sum,
                })
            })
            .collect();
        json!({"namespace": NAMESPACE, "totals": totals, "series": series})
    }

    /// Prometheus text exposition: counts as `reflector_<name>_total` counters, bytes and
    /// seconds as summaries (`_sum`, `_count`).
    pub fn to_prometheus(&self) -> String {
        let snapshot = self.snapshot();
        let mut out = String::new();
        for metric in Metric::ALL {
            let rows: Vec<_> = snapshot
                .iter()
                .filter(|(k, _)| k.metric == *metric)
                .collect();
            let base = format!("reflector_{}", snake_case(metric.name()));
            let counter = metric.unit() == Unit::Count;
            let name = if counter {
                format!("{base}_total")
            } else {
                base.clone()
            };
            out.push_str(&format!("# HELP {name} {}\n", metric.description()));
            out.push_str(&format!(
                "# TYPE {name} {}\n",
                if counter { "counter" } else { "summary" }
            ));
            for (k, a) in rows {
                let labels = prometheus_labels(k);
                if counter {
                    out.push_str(&format!("{name}{{{labels}}} {}\n", a.sum));
                } else {
                    out.push_str(&format!("{base}_sum{{{labels}}} {}\n", a.sum));
                    out.push_str(&format!("{base}_count{{{labels}}} {}\n", a.samples));
                }
            }
        }
        out
    }
}

fn prometheus_labels(k: &SeriesKey) -> String {
    let mut labels = vec![format!("function=\"{}\"", k.function.as_str())];
    if let Some(p) = k.platform {
        labels.push(format!("platform=\"{p}\""));
    }
    if let Some(d) = k.detail {
        let (name, value) = d.dimension();
        labels.push(format!("{}=\"{value}\"", name.to_ascii_lowercase()));
    }
    labels.join(",")
}

/// `PipelineMessageSent` -> `pipeline_message_sent`.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
