//! `load --oha PATH --local-bin PATH --emulator URL [--clients 50] [--rooms 10] [--seconds 30]
//!  [--out load.json] [--log load.log]`
//!
//! The HTTP API under load (issue 19): `reflector-local` (the whole stack in one process) over
//! the AWS emulator, its DynamoDB requests counted by [`CountingProxy`]. Makes `--rooms` rooms
//! and their active meetings, counts the DynamoDB requests of one get-or-create
//! (`POST /v1/rooms/{name}/meeting`) and one join (`POST .../meetings/{id}/join`), then runs
//! `oha` with `--clients` connections for `--seconds`, each request one of the two calls on one
//! of the rooms (uniformly, so half are each). Then the same `oha` run against the emulator
//! alone, one DynamoDB `GetItem` per request (the room by name, as both calls start), as the
//! ceiling. Writes the figures as JSON for `scripts/bench_report.py`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use serde::Serialize;
use serde_json::{json, Value};

use reflector_bench::proxy::CountingProxy;

#[derive(Parser)]
#[command(name = "load")]
struct Args {
    /// The `oha` binary (scripts/bench installs it, pinned).
    #[arg(long)]
    oha: PathBuf,
    /// The `reflector-local` binary.
    #[arg(long)]
    local_bin: PathBuf,
    /// AWS emulator endpoint [default: $AWS_ENDPOINT_URL].
    #[arg(long)]
    emulator: Option<String>,
    #[arg(long, default_value_t = 50)]
    clients: u32,
    #[arg(long, default_value_t = 10)]
    rooms: u32,
    #[arg(long, default_value_t = 30)]
    seconds: u32,
    #[arg(long)]
    out: Option<PathBuf>,
    /// reflector-local's log [default: reflector-load.log in the temp directory].
    #[arg(long)]
    log: Option<PathBuf>,
}

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// What one `oha` run measured.
#[derive(Debug, Serialize)]
struct LoadRun {
    requests: u64,
    requests_per_s: f64,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    /// HTTP status -> count.
    statuses: BTreeMap<String, u64>,
    /// Requests that got no HTTP answer (connection errors, timeouts) -> count.
    errors: BTreeMap<String, u64>,
    /// Answers other than 2xx plus requests without an answer.
    failed: u64,
    /// Requests in flight when the run's time ended (cut off by oha, counted nowhere else).
    cut_off_at_end: u64,
}

#[derive(Debug, Serialize)]
struct ApiRun {
    #[serde(flatten)]
    run: LoadRun,
    /// AWS requests reflector-local made during the run, by operation.
    aws_calls: BTreeMap<String, u64>,
    dynamodb_per_request: Option<f64>,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("load: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Res<()> {
    let emulator = args
        .emulator
        .clone()
        .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
        .ok_or("no AWS emulator: pass --emulator or set AWS_ENDPOINT_URL")?;
    let proxy = CountingProxy::start(&emulator).await?;
    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let log = args
        .log
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("reflector-load.log"));
    let mut local = LocalStack::spawn(&args.local_bin, &proxy.url(), port, &log)?;
    let http = reqwest::Client::new();
    wait_healthy(&http, &base, &mut local.child).await?;

    // Rooms and their meetings, made before the run: the run's get-or-create finds them.
    let tag = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let mut targets = Vec::new();
    for i in 0..args.rooms {
        let name = format!("load-{tag}-{i}");
        post(&http, &format!("{base}/v1/rooms"), json!({ "name": name })).await?;
        let meeting = post(&http, &format!("{base}/v1/rooms/{name}/meeting"), json!({})).await?;
        let id = meeting["id"]
            .as_str()
            .ok_or_else(|| format!("no meeting id in {meeting}"))?
            .to_owned();
        targets.push((name, id));
    }
    let (name, id) = &targets[0];
    let get_or_create =
        counted_post(&proxy, &http, &format!("{base}/v1/rooms/{name}/meeting")).await?;
    let join = counted_post(
        &proxy,
        &http,
        &format!("{base}/v1/rooms/{name}/meetings/{id}/join"),
    )
    .await?;

    // One URL per call and room; oha's rand_regex picks among the alternatives uniformly.
    let alternatives: Vec<String> = targets
        .iter()
        .flat_map(|(name, id)| {
            [
                format!("{name}/meeting"),
                format!("{name}/meetings/{id}/join"),
            ]
        })
        .collect();
    // A host name without dots: oha's URL regex does not take `\.` as a literal dot.
    let regex = format!(
        "http://localhost:{port}/v1/rooms/({})",
        alternatives.join("|")
    );
    let before = proxy.calls().len();
    eprintln!(
        "load: {} clients for {} s against reflector-local ({} rooms)",
        args.clients, args.seconds, args.rooms
    );
    let api = oha(
        &args,
        &[
            "--ipv4",
            "--rand-regex-url",
            "-m",
            "POST",
            "-T",
            "application/json",
            "-d",
            "{}",
            &regex,
        ],
    )?;
    let during = &proxy.calls()[before..];
    let aws_calls = tally(during);
    let dynamodb: u64 = aws_calls
        .iter()
        .filter(|(k, _)| k.starts_with("DynamoDB."))
        .map(|(_, v)| v)
        .sum();
    let dynamodb_per_request = (api.requests > 0).then(|| dynamodb as f64 / api.requests as f64);
    drop(local);

    // The emulator alone: the same clients and time, one GetItem each, unsigned (moto does not
    // check signatures; the Authorization header only names the service and region).
    let table = std::env::var("ROOMS_TABLE").unwrap_or_else(|_| "reflector-rooms".into());
    let body = json!({
        "TableName": table,
        "Key": { "pk": { "S": format!("name#{}", targets[0].0) } },
        "ConsistentRead": true,
    })
    .to_string();
    eprintln!(
        "load: {} clients for {} s against the emulator alone (DynamoDB GetItem)",
        args.clients, args.seconds
    );
    let ceiling = oha(
        &args,
        &[
            "-m",
            "POST",
            "-H",
            "X-Amz-Target: DynamoDB_20120810.GetItem",
            "-H",
            "Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
            "-T",
            "application/x-amz-json-1.0",
            "-d",
            &body,
            &format!("{}/", emulator.trim_end_matches('/')),
        ],
    )?;

    let result = json!({
        "clients": args.clients,
        "rooms": args.rooms,
        "seconds": args.seconds,
        "local_bin": args.local_bin,
        "per_call": { "get_or_create": get_or_create, "join": join },
        "api": ApiRun { run: api, aws_calls, dynamodb_per_request },
        "emulator": ceiling,
    });
    let text = serde_json::to_string_pretty(&result)?;
    match &args.out {
        Some(path) => std::fs::write(path, text)?,
        None => println!("{text}"),
    }
    Ok(())
}

/// reflector-local, killed when dropped.
struct LocalStack {
    child: Child,
}

impl LocalStack {
    fn spawn(bin: &Path, aws: &str, port: u16, log: &Path) -> Res<Self> {
        let out = std::fs::File::create(log)?;
        let child = Command::new(bin)
            .env("AWS_ENDPOINT_URL", aws)
            .env("LOCAL_LISTEN_ADDR", format!("127.0.0.1:{port}"))
            // No platform key and no DEFAULT_VIDEO_PLATFORM: the local stack's mock platform.
            .env_remove("DEFAULT_VIDEO_PLATFORM")
            .env_remove("WHEREBY_API_KEY")
            .env_remove("DAILY_API_KEY")
            .env("AUTH_BACKEND", "none")
            // The sweeper's timer would add its own requests to the count.
            .env("LOCAL_SWEEP_SECONDS", "86400")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .map_err(|e| format!("spawning {}: {e}", bin.display()))?;
        Ok(Self { child })
    }
}

impl Drop for LocalStack {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Res<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn wait_healthy(http: &reqwest::Client, base: &str, child: &mut Child) -> Res<()> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(120) {
        if let Ok(r) = http.get(format!("{base}/healthz")).send().await {
            if r.status().is_success() {
                return Ok(());
            }
        }
        if let Some(status) = child.try_wait()? {
            return Err(format!("reflector-local exited during start: {status}").into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err("reflector-local did not become healthy within 120 s".into())
}

async fn post(http: &reqwest::Client, url: &str, body: Value) -> Res<Value> {
    let r = http.post(url).json(&body).send().await?;
    let status = r.status();
    let text = r.text().await?;
    if !status.is_success() {
        return Err(format!("POST {url}: HTTP {status}: {text}").into());
    }
    Ok(serde_json::from_str(&text)?)
}

/// The AWS requests one `POST url` made, by operation.
async fn counted_post(
    proxy: &CountingProxy,
    http: &reqwest::Client,
    url: &str,
) -> Res<BTreeMap<String, u64>> {
    let before = proxy.calls().len();
    post(http, url, json!({})).await?;
    Ok(tally(&proxy.calls()[before..]))
}

fn tally(calls: &[String]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for c in calls {
        *out.entry(c.clone()).or_insert(0) += 1;
    }
    out
}

/// Runs oha with the common arguments plus `extra`, and reads its JSON summary.
fn oha(args: &Args, extra: &[&str]) -> Res<LoadRun> {
    let output = Command::new(&args.oha)
        .args([
            "--no-tui",
            "--output-format",
            "json",
            "-c",
            &args.clients.to_string(),
            "-z",
            &format!("{}s", args.seconds),
        ])
        .args(extra)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("running {}: {e}", args.oha.display()))?;
    if !output.status.success() {
        return Err(format!("oha failed: {}", String::from_utf8_lossy(&output.stdout)).into());
    }
    let v: Value = serde_json::from_slice(&output.stdout)?;
    let counts = |key: &str| -> BTreeMap<String, u64> {
        v[key]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, n)| (k.clone(), n.as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default()
    };
    let statuses = counts("statusCodeDistribution");
    // Requests still in flight when `-z` ends are cut off by oha itself: not the server's errors.
    let mut errors = counts("errorDistribution");
    let cut_off = errors.remove("aborted due to deadline").unwrap_or(0);
    let requests = statuses.values().sum::<u64>() + errors.values().sum::<u64>();
    let failed = statuses
        .iter()
        .filter(|(code, _)| !code.starts_with('2'))
        .map(|(_, n)| n)
        .sum::<u64>()
        + errors.values().sum::<u64>();
    let ms = |p: &str| v["latencyPercentiles"][p].as_f64().map(|s| s * 1000.0);
    Ok(LoadRun {
        cut_off_at_end: cut_off,
        requests,
        requests_per_s: v["summary"]["requestsPerSec"].as_f64().unwrap_or(0.0),
        p50_ms: ms("p50"),
        p99_ms: ms("p99"),
        statuses,
        errors,
        failed,
    })
}
