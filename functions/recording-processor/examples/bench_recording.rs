//! Benchmark (not a test): throughput and peak RSS of the recording processor for large files.
//!
//! `cargo run -p recording-processor --example bench_recording -- [SIZE_MIB...]` (default
//! 64 512 2048) with `AWS_ENDPOINT_URL` pointing at the emulator. The parent process starts a
//! file server in a child process (so its memory is not counted) that serves generated mp4
//! files (audio track, `moov` last, so the whole file passes through the media check); then
//! each size runs in a fresh child process that processes one recording job, with in-memory
//! stores, into an emulator bucket and reports its own peak RSS (`VmHWM`).
//!
//! Two modes serve `scripts/bench_recording.py`, which runs ours and the Python baseline on the
//! same files:
//! - `gen BYTES PATH`: writes an mp4 of exactly BYTES bytes that the media check accepts (audio
//!   track, `moov` last); the filler is a hole, so a 2 GiB file costs no disk.
//! - `job URL BUCKET BYTES`: processes one recording job for URL (the allow-list is URL's http
//!   origin) into BUCKET, checks the stored object has BYTES bytes, and prints
//!   `STORED <bucket> <key>` and `RESULT <seconds> <VmHWM KiB>`.
//! - `upload BUCKET BYTES`: the upload half alone: BYTES bytes made in memory go through the
//!   same multipart uploader and settings into BUCKET, with no download and no media check, so
//!   it measures how fast the emulator takes the bytes. Prints the same two lines.
//! - `copy BUCKET BYTES HOW`: the server-side copy path. An mp4 of BYTES bytes is put into a
//!   bucket first (not timed), then one job whose audio is already in S3 is processed: `s3-key`
//!   (a Daily `s3_key` recording in Daily's bucket: media check by range reads, then CopyObject
//!   into BUCKET), `part-copy` (the same with UploadPartCopy, as objects over 5 GiB are copied)
//!   or `in-place` (a Whereby recording's S3 notification for an object already in BUCKET:
//!   media check only). Prints `STORED`, `RESULT` and `MOVED <bytes>`: the request and
//!   response bodies of every S3 call the job made (their Content-Length, counted by an SDK
//!   interceptor), which for a server-side copy is the media check's range reads.

#[path = "../tests/support/mod.rs"]
#[allow(unused_imports)]
mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use clap::{Parser, Subcommand};
use recording_processor::handler::{handle, Deps};
use shared::blob::{BlobSettings, Blobs, NoInspect, UploadTarget};
use shared::config::AllowedHost;
use shared::domain::Platform;
use shared::download::HttpDownloader;
use shared::fakes::{MemoryMeetings, MemoryPipelineQueue, MemoryRecordings, MemoryTranscripts};
use shared::media::samples;

const MIB: u64 = 1024 * 1024;
const CHUNK: usize = 256 * 1024;

/// An mp4 (audio track, `moov` last) of an exact size: its head, `payload` filler bytes, its tail.
struct Mp4Parts {
    head: Vec<u8>,
    payload: u64,
    tail: Vec<u8>,
}

impl Mp4Parts {
    /// The parts of an mp4 of exactly `total` bytes; `None` when `total` is too small for one.
    fn of_size(total: u64) -> Option<Self> {
        let (head, tail) = samples::mp4_audio_moov_last(0);
        let payload = total.checked_sub((head.len() + tail.len()) as u64)?;
        let (head, tail) = samples::mp4_audio_moov_last(payload);
        Some(Self {
            head,
            payload,
            tail,
        })
    }

    /// The whole file as a stream of pieces of at most [`CHUNK`] bytes, the filler as `fill`.
    fn stream(
        self,
        fill: u8,
    ) -> impl futures::Stream<Item = Result<Bytes, std::convert::Infallible>> {
        use futures::StreamExt;
        let filler = Bytes::from(vec![fill; CHUNK]);
        futures::stream::iter([Bytes::from(self.head)])
            .chain(futures::stream::unfold(self.payload, move |left| {
                let filler = filler.clone();
                async move {
                    (left > 0).then(|| {
                        let n = left.min(CHUNK as u64);
                        (filler.slice(..n as usize), left - n)
                    })
                }
            }))
            .chain(futures::stream::iter([Bytes::from(self.tail)]))
            .map(Ok)
    }
}

/// Throughput and peak RSS of the recording processor for large files (see the module doc).
#[derive(Parser)]
#[command(name = "bench_recording", args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    mode: Option<Mode>,
    /// Sizes to measure, in MiB, when no subcommand is given.
    #[arg(default_values_t = [64, 512, 2048])]
    sizes_mib: Vec<u64>,
}

#[derive(Subcommand)]
enum Mode {
    /// Serve generated mp4 files on a loopback port; prints `PORT <port>` (internal).
    Serve,
    /// Process one file of BYTES bytes from the `serve` child on PORT (internal).
    Run { port: u16, bytes: u64 },
    /// Write an mp4 of exactly BYTES bytes to PATH.
    Gen { bytes: u64, path: String },
    /// Process one recording job for URL into BUCKET and check it stored BYTES bytes.
    Job {
        url: String,
        bucket: String,
        bytes: u64,
    },
    /// Upload BYTES generated bytes into BUCKET: the upload half alone.
    Upload { bucket: String, bytes: u64 },
    /// Put an mp4 of BYTES bytes in S3, then process one job that copies it server-side.
    Copy {
        bucket: String,
        bytes: u64,
        #[arg(value_enum)]
        how: CopyHow,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum CopyHow {
    /// A Daily `s3_key` recording in Daily's bucket: CopyObject.
    S3Key,
    /// The same, copied part by part (UploadPartCopy), as objects over 5 GiB are.
    PartCopy,
    /// A Whereby recording already in our bucket: referenced in place.
    InPlace,
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.mode {
        Some(Mode::Serve) => serve(),
        Some(Mode::Run { port, bytes }) => run_one(port, bytes),
        Some(Mode::Gen { bytes, path }) => generate(bytes, &path),
        Some(Mode::Job { url, bucket, bytes }) => job_for_url(&url, bucket, bytes),
        Some(Mode::Upload { bucket, bytes }) => upload_only(bucket, bytes),
        Some(Mode::Copy { bucket, bytes, how }) => copy_job(bucket, bytes, how),
        None => orchestrate(&cli.sizes_mib),
    };
    if let Err(e) = result {
        eprintln!("bench_recording: {e}");
        std::process::exit(1);
    }
}

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn orchestrate(sizes: &[u64]) -> Res<()> {
    if std::env::var("AWS_ENDPOINT_URL").is_err() {
        return Err("AWS_ENDPOINT_URL is not set: start the emulator (scripts/bench does)".into());
    }
    let exe = std::env::current_exe()?;
    let mut server = Command::new(&exe)
        .arg("serve")
        .stdout(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(server.stdout.take().ok_or("no server stdout")?).read_line(&mut line)?;
    let port = line
        .trim()
        .strip_prefix("PORT ")
        .ok_or("server did not start")?
        .to_owned();
    println!(
        "{:>10} {:>9} {:>10} {:>14}",
        "size", "seconds", "MiB/s", "peak RSS MiB"
    );
    let mut results = Vec::new();
    for &size in sizes {
        let out = Command::new(&exe)
            .args(["run", &port, &(size * MIB).to_string()])
            .stderr(Stdio::inherit())
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let Some(result) = text.lines().find_map(|l| l.strip_prefix("RESULT ")) else {
            let _ = server.kill();
            return Err(format!("run for {size} MiB failed: {text}").into());
        };
        let f: Vec<f64> = result
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        let (secs, rss_kib) = (f[0], f[1]);
        println!(
            "{:>6} MiB {:>9.2} {:>10.1} {:>14.1}",
            size,
            secs,
            size as f64 / secs,
            rss_kib / 1024.0
        );
        results.push((size, rss_kib / 1024.0));
    }
    let _ = server.kill();
    let _ = server.wait();
    if let (Some(first), Some(last)) = (results.first(), results.last()) {
        println!(
            "peak RSS ratio {} MiB / {} MiB: {:.2}",
            last.0,
            first.0,
            last.1 / first.1
        );
    }
    Ok(())
}

/// Serves `/file/<bytes>.mp4`: an mp4 of exactly that many bytes, generated as it is sent.
fn serve() -> Res<()> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let app = axum::Router::new().route(
            "/file/{name}",
            axum::routing::get(
                |axum::extract::Path(name): axum::extract::Path<String>| async move {
                    let total: u64 = name.trim_end_matches(".mp4").parse().unwrap_or(0);
                    let Some(parts) = Mp4Parts::of_size(total) else {
                        return axum::response::Response::builder()
                            .status(400)
                            .body(axum::body::Body::from("size too small for an mp4"))
                            .unwrap_or_default();
                    };
                    axum::response::Response::builder()
                        .header("content-type", "video/mp4")
                        .header("content-length", total)
                        .body(axum::body::Body::from_stream(parts.stream(0x55)))
                        .unwrap_or_default()
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("PORT {}", listener.local_addr()?.port());
        axum::serve(listener, app).await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}

/// Processes one job for a file of `bytes` bytes and prints `RESULT <seconds> <VmHWM KiB>`.
fn run_one(port: u16, bytes: u64) -> Res<()> {
    let url = format!("http://127.0.0.1:{port}/file/{bytes}.mp4");
    let (secs, _, _) = process(&url, None, bytes, true)?;
    println!("RESULT {secs:.3} {}", vm_hwm_kib()?);
    Ok(())
}

/// `job URL BUCKET BYTES`: one job into an existing bucket; the stored object is left for the
/// caller to check and delete.
fn job_for_url(url: &str, bucket: String, bytes: u64) -> Res<()> {
    let (secs, bucket, key) = process(url, Some(bucket), bytes, false)?;
    println!("STORED {bucket} {key}");
    println!("RESULT {secs:.3} {}", vm_hwm_kib()?);
    Ok(())
}

/// `upload BUCKET BYTES`: the emulator's side of the ceiling (see the module doc).
fn upload_only(bucket: String, bytes: u64) -> Res<()> {
    let target_bucket = bucket.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (secs, key) = rt.block_on(async move {
        let s3 = support::s3_client().await;
        let blobs = Blobs::new(&s3, BlobSettings::default());
        let key = format!("upload-only/{}.bin", uuid::Uuid::new_v4());
        let target = UploadTarget {
            bucket: target_bucket,
            key: key.clone(),
            content_type: Some("video/mp4".into()),
            metadata: Default::default(),
        };
        let filler = Bytes::from(vec![0u8; CHUNK]);
        let body = futures::stream::unfold(bytes, move |left| {
            let filler = filler.clone();
            async move {
                (left > 0).then(|| {
                    let n = left.min(CHUNK as u64);
                    (
                        Ok::<_, std::convert::Infallible>(filler.slice(..n as usize)),
                        left - n,
                    )
                })
            }
        });
        let started = Instant::now();
        let uploaded = blobs
            .upload_stream(&target, body, Some(bytes), &mut NoInspect)
            .await
            .map_err(|e| e.to_string())?;
        let secs = started.elapsed().as_secs_f64();
        if uploaded.bytes != bytes {
            return Err(format!("uploaded {} bytes, expected {bytes}", uploaded.bytes).into());
        }
        Ok::<_, Box<dyn std::error::Error>>((secs, key))
    })?;
    println!("STORED {bucket} {key}");
    println!("RESULT {secs:.3} {}", vm_hwm_kib()?);
    Ok(())
}

/// `copy BUCKET BYTES HOW`: see the module doc.
fn copy_job(bucket: String, bytes: u64, how: CopyHow) -> Res<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (secs, moved, stored) = rt.block_on(async move {
        let s3 = support::s3_client().await;
        let mut settings = BlobSettings::default();
        if matches!(how, CopyHow::PartCopy) {
            settings.single_copy_limit = 0;
        }
        let counter = BodyBytes::default();
        let counted = aws_sdk_s3::Client::from_conf(
            s3.config()
                .to_builder()
                .interceptor(counter.clone())
                .build(),
        );
        let blobs = Blobs::new(&counted, settings);
        // The source: Daily's bucket, or ours for a recording already there.
        let source_bucket = match how {
            CopyHow::InPlace => bucket.clone(),
            CopyHow::S3Key | CopyHow::PartCopy => support::bucket(&s3, "bench-daily").await,
        };
        let meeting = support::meeting_for_bench("bench-room", Platform::Whereby);
        // A Whereby recording's key: `[folder/]<room name>-<ISO start>.<ext>`.
        let source_key = format!(
            "{}/bench-room-2026-01-15T10:30:00Z.mp4",
            uuid::Uuid::new_v4()
        );
        put_mp4(&blobs, &source_bucket, &source_key, bytes).await?;

        let BenchDeps {
            deps,
            meetings,
            transcripts,
            pipeline,
        } = bench_deps(
            blobs,
            HttpDownloader::new(Vec::new()),
            &bucket,
            Some(source_bucket.clone()),
        );
        meetings.insert(meeting.clone());
        let body = match how {
            CopyHow::InPlace => support::s3_notification(&source_bucket, &source_key, bytes),
            CopyHow::S3Key | CopyHow::PartCopy => support::job(
                &meeting,
                "rec-bench",
                serde_json::json!({ "s3": { "bucket": source_bucket, "key": source_key } }),
            ),
        };
        let before = counter.total();
        let started = Instant::now();
        let response = handle(&deps, support::sqs_event(&[("bench", body)])).await;
        let secs = started.elapsed().as_secs_f64();
        let moved = counter.total() - before;
        if !response.batch_item_failures.is_empty() || pipeline.sent().len() != 1 {
            return Err("processing failed".into());
        }
        let stored = transcripts
            .all()
            .first()
            .and_then(|t| t.audio.clone())
            .ok_or("no audio stored")?;
        if !matches!(how, CopyHow::InPlace) {
            // Only the copy is left for the caller to check and delete.
            s3.delete_object()
                .bucket(&source_bucket)
                .key(&source_key)
                .send()
                .await?;
            s3.delete_bucket().bucket(&source_bucket).send().await?;
        }
        Ok::<_, Box<dyn std::error::Error>>((secs, moved, stored))
    })?;
    println!("STORED {} {}", stored.bucket, stored.key);
    println!("RESULT {secs:.3} {}", vm_hwm_kib()?);
    println!("MOVED {moved}");
    Ok(())
}

/// An mp4 of `bytes` bytes (audio track, `moov` last) streamed into `bucket`/`key`.
async fn put_mp4(blobs: &Blobs, bucket: &str, key: &str, bytes: u64) -> Res<()> {
    let body = Mp4Parts::of_size(bytes)
        .ok_or("size too small for an mp4")?
        .stream(0);
    let target = UploadTarget {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        content_type: Some("video/mp4".into()),
        metadata: Default::default(),
    };
    blobs
        .upload_stream(&target, body, Some(bytes), &mut NoInspect)
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Request and response body bytes of every S3 call made through a client (their
/// Content-Length: the SDK sets it on every request it sends, S3 on every answer).
#[derive(Debug, Clone, Default)]
struct BodyBytes(Arc<std::sync::atomic::AtomicU64>);

impl BodyBytes {
    fn total(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn add(&self, content_length: Option<&str>) {
        let n = content_length
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        self.0.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }
}

impl aws_sdk_s3::config::Intercept for BodyBytes {
    fn name(&self) -> &'static str {
        "BodyBytes"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _: &aws_sdk_s3::config::RuntimeComponents,
        _: &mut aws_sdk_s3::config::ConfigBag,
    ) -> Result<(), aws_sdk_s3::error::BoxError> {
        self.add(context.request().headers().get("content-length"));
        Ok(())
    }

    fn read_before_deserialization(
        &self,
        context: &aws_sdk_s3::config::interceptors::BeforeDeserializationInterceptorContextRef<'_>,
        _: &aws_sdk_s3::config::RuntimeComponents,
        _: &mut aws_sdk_s3::config::ConfigBag,
    ) -> Result<(), aws_sdk_s3::error::BoxError> {
        // The body's own length, not the header: a HEAD answer announces the object's length
        // but carries no body.
        let body = context.response().body().content_length().unwrap_or(0);
        self.0.fetch_add(body, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

/// `gen BYTES PATH`: an mp4 of exactly BYTES bytes, filler left as a hole (reads as zeros).
fn generate(total: u64, path: &str) -> Res<()> {
    use std::io::{Seek, SeekFrom, Write};
    let Mp4Parts {
        head,
        payload,
        tail,
    } = Mp4Parts::of_size(total).ok_or("size too small for an mp4")?;
    let mut file = std::fs::File::create(path)?;
    file.write_all(&head)?;
    file.seek(SeekFrom::Start(head.len() as u64 + payload))?;
    file.write_all(&tail)?;
    file.flush()?;
    Ok(())
}

/// The processor's handler as the bench runs it: in-memory stores and queues, the real S3
/// `blobs` and `downloader`, one record at a time, metrics discarded.
struct BenchDeps {
    deps: Deps,
    meetings: Arc<MemoryMeetings>,
    transcripts: Arc<MemoryTranscripts>,
    pipeline: Arc<MemoryPipelineQueue>,
}

fn bench_deps(
    blobs: Blobs,
    downloader: HttpDownloader,
    bucket: &str,
    daily_bucket: Option<String>,
) -> BenchDeps {
    let meetings = Arc::new(MemoryMeetings::default());
    let transcripts = Arc::new(MemoryTranscripts::default());
    let pipeline = Arc::new(MemoryPipelineQueue::default());
    let deps = Deps {
        meetings: meetings.clone(),
        recordings: Arc::new(MemoryRecordings::default()),
        transcripts: transcripts.clone(),
        pipeline: pipeline.clone(),
        links: Arc::new(support::FakeLinks::default()),
        blobs: Arc::new(blobs),
        downloader: Arc::new(downloader),
        bucket: bucket.to_owned(),
        daily_bucket,
        concurrency: 1,
        starter: Arc::new(shared::fakes::MemoryRecordingStarter::default()),
        recordings_queue: Arc::new(shared::fakes::MemoryRecordingQueue::default()),
        start_retry_base: shared::recording_start::BASE_RETRY_DELAY,
        metrics: shared::metrics::Metrics::new(
            shared::metrics::Function::RecordingProcessor,
            Arc::new(shared::metrics::Discard),
        ),
    };
    BenchDeps {
        deps,
        meetings,
        transcripts,
        pipeline,
    }
}

/// Runs one recording job for `url` with in-memory stores and the emulator's S3; returns the
/// handler's wall time and where the audio was stored, after checking its size is `bytes`.
fn process(
    url: &str,
    bucket: Option<String>,
    bytes: u64,
    delete_after: bool,
) -> Res<(f64, String, String)> {
    let parsed = url::Url::parse(url)?;
    let host = parsed.host_str().ok_or("url has no host")?.to_owned();
    let port = parsed.port_or_known_default().ok_or("url has no port")?;
    // Lambda gives a small function about one vCPU: two worker threads are generous.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let s3 = support::s3_client().await;
        let bucket = match bucket {
            Some(b) => b,
            None => support::bucket(&s3, "bench").await,
        };
        let BenchDeps {
            deps,
            meetings,
            transcripts,
            pipeline,
        } = bench_deps(
            Blobs::new(&s3, BlobSettings::default()),
            HttpDownloader::new(vec![AllowedHost::HttpOrigin { host, port }]),
            &bucket,
            None,
        );
        let meeting = support::meeting_for_bench("bench-room", Platform::Daily);
        meetings.insert(meeting.clone());
        let body = support::job(&meeting, "rec-bench", serde_json::json!({ "url": url }));
        let started = Instant::now();
        let response = handle(&deps, support::sqs_event(&[("bench", body)])).await;
        let secs = started.elapsed().as_secs_f64();
        let uploaded = transcripts
            .all()
            .first()
            .and_then(|t| t.audio.clone())
            .ok_or("no audio stored")?;
        if !response.batch_item_failures.is_empty() || pipeline.sent().len() != 1 {
            return Err("processing failed".into());
        }
        let head = s3
            .head_object()
            .bucket(&uploaded.bucket)
            .key(&uploaded.key)
            .send()
            .await?;
        if head.content_length() != Some(bytes as i64) {
            return Err(
                format!("stored {:?} bytes, expected {bytes}", head.content_length()).into(),
            );
        }
        if delete_after {
            // Free the emulator's storage before the next size.
            s3.delete_object()
                .bucket(&uploaded.bucket)
                .key(&uploaded.key)
                .send()
                .await?;
        }
        Ok::<_, Box<dyn std::error::Error>>((secs, uploaded.bucket, uploaded.key))
    })
}

fn vm_hwm_kib() -> Res<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .ok_or("no VmHWM in /proc/self/status")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .ok_or("bad VmHWM line")?
        .parse()?)
}
