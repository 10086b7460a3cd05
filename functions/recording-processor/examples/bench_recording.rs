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

#[path = "../tests/support/mod.rs"]
#[allow(unused_imports)]
mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use recording_processor::handler::{handle, Deps};
use shared::blob::{BlobSettings, Blobs, NoInspect, UploadTarget};
use shared::config::AllowedHost;
use shared::domain::Platform;
use shared::download::HttpDownloader;
use shared::fakes::{MemoryMeetings, MemoryPipelineQueue, MemoryRecordings, MemoryTranscripts};
use shared::media::samples;

const MIB: u64 = 1024 * 1024;
const CHUNK: usize = 256 * 1024;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("serve") => serve(),
        Some("run") => run_one(&args[1..]),
        Some("gen") => generate(&args[1..]),
        Some("job") => job_for_url(&args[1..]),
        Some("upload") => upload_only(&args[1..]),
        _ => orchestrate(&args),
    };
    if let Err(e) = result {
        eprintln!("bench_recording: {e}");
        std::process::exit(1);
    }
}

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn orchestrate(args: &[String]) -> Res<()> {
    if std::env::var("AWS_ENDPOINT_URL").is_err() {
        return Err("AWS_ENDPOINT_URL is not set: start the emulator (scripts/bench does)".into());
    }
    let sizes: Vec<u64> = if args.is_empty() {
        vec![64, 512, 2048]
    } else {
        args.iter().map(|a| a.parse()).collect::<Result<_, _>>()?
    };
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
    for size in sizes {
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
                    let (head, tail) = samples::mp4_audio_moov_last(0);
                    let payload = total.saturating_sub((head.len() + tail.len()) as u64);
                    let (head, tail) = samples::mp4_audio_moov_last(payload);
                    let filler = Bytes::from(vec![0x55u8; CHUNK]);
                    let body = futures::stream::iter([Bytes::from(head)])
                        .chain(futures::stream::unfold(payload, move |left| {
                            let filler = filler.clone();
                            async move {
                                (left > 0).then(|| {
                                    let n = left.min(CHUNK as u64);
                                    (filler.slice(..n as usize), left - n)
                                })
                            }
                        }))
                        .chain(futures::stream::iter([Bytes::from(tail)]))
                        .map(Ok::<_, std::convert::Infallible>);
                    axum::response::Response::builder()
                        .header("content-type", "video/mp4")
                        .header("content-length", payload + (total - payload))
                        .body(axum::body::Body::from_stream(body))
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

use futures::StreamExt;

/// Processes one job for a file of `bytes` bytes and prints `RESULT <seconds> <VmHWM KiB>`.
fn run_one(args: &[String]) -> Res<()> {
    let port: u16 = args.first().ok_or("port")?.parse()?;
    let bytes: u64 = args.get(1).ok_or("bytes")?.parse()?;
    let url = format!("http://127.0.0.1:{port}/file/{bytes}.mp4");
    let (secs, _, _) = process(&url, None, bytes, true)?;
    println!("RESULT {secs:.3} {}", vm_hwm_kib()?);
    Ok(())
}

/// `job URL BUCKET BYTES`: one job into an existing bucket; the stored object is left for the
/// caller to check and delete.
fn job_for_url(args: &[String]) -> Res<()> {
    let url = args.first().ok_or("url")?;
    let bucket = args.get(1).ok_or("bucket")?;
    let bytes: u64 = args.get(2).ok_or("bytes")?.parse()?;
    let (secs, bucket, key) = process(url, Some(bucket.clone()), bytes, false)?;
    println!("STORED {bucket} {key}");
    println!("RESULT {secs:.3} {}", vm_hwm_kib()?);
    Ok(())
}

/// `upload BUCKET BYTES`: the emulator's side of the ceiling (see the module doc).
fn upload_only(args: &[String]) -> Res<()> {
    let bucket = args.first().ok_or("bucket")?.clone();
    let bytes: u64 = args.get(1).ok_or("bytes")?.parse()?;
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

/// `gen BYTES PATH`: an mp4 of exactly BYTES bytes, filler left as a hole (reads as zeros).
fn generate(args: &[String]) -> Res<()> {
    use std::io::{Seek, SeekFrom, Write};
    let total: u64 = args.first().ok_or("bytes")?.parse()?;
    let path = args.get(1).ok_or("path")?;
    let (head, tail) = samples::mp4_audio_moov_last(0);
    let payload = total
        .checked_sub((head.len() + tail.len()) as u64)
        .ok_or("size too small for an mp4")?;
    let (head, tail) = samples::mp4_audio_moov_last(payload);
    let mut file = std::fs::File::create(path)?;
    file.write_all(&head)?;
    file.seek(SeekFrom::Start(head.len() as u64 + payload))?;
    file.write_all(&tail)?;
    file.flush()?;
    Ok(())
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
        let meetings = Arc::new(MemoryMeetings::default());
        let transcripts = Arc::new(MemoryTranscripts::default());
        let pipeline = Arc::new(MemoryPipelineQueue::default());
        let deps = Deps {
            meetings: meetings.clone(),
            recordings: Arc::new(MemoryRecordings::default()),
            transcripts: transcripts.clone(),
            pipeline: pipeline.clone(),
            links: Arc::new(support::FakeLinks::default()),
            blobs: Arc::new(Blobs::new(&s3, BlobSettings::default())),
            downloader: Arc::new(HttpDownloader::new(vec![AllowedHost::HttpOrigin {
                host,
                port,
            }])?),
            bucket: bucket.clone(),
            concurrency: 1,
            starter: Arc::new(shared::fakes::MemoryRecordingStarter::default()),
            recordings_queue: Arc::new(shared::fakes::MemoryRecordingQueue::default()),
            start_retry_base: shared::recording_start::BASE_RETRY_DELAY,
        };
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
