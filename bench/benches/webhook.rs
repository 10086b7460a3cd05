//! The webhook CPU path without I/O (DESIGN.md section 11: verify + parse + dispatch under 50 us),
//! for each format (Daily real, Daily seed, Whereby) over the participant-joined bodies in
//! `bench/events/`:
//! - `webhook/verify/<format>`: signature verification of the raw bytes alone;
//! - `webhook/full/<format>`: what the handler does before its first I/O, in its order: the
//!   Daily probe check, verification, parsing into the typed event, and the dispatch decision
//!   (which handler the event kind goes to).
//!
//! - `token/join/daily`: the Daily meeting token of a join (claims, HS256 signature, URL).
//!
//! Run: `cargo bench -p reflector-bench --bench webhook -- --warm-up-time 1 --measurement-time 3`.
//! Names are `webhook/<step>/<scheme>`; `scripts/bench_report.py` reads criterion's estimates.

use std::hint::black_box;

use chrono::{DateTime, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use http::HeaderMap;
use secrecy::SecretString;
use shared::domain::RecordingType;
use shared::platform::daily::token::{
    join_url, MeetingTokenClaims, MeetingTokenSigner, TokenRequest,
};
use shared::webhook::signature::{
    header_map, sign_daily, sign_daily_seed, sign_whereby, verify_daily, verify_whereby,
};
use shared::webhook::{daily, whereby};

const DAILY_SECRET: &str = "YmVuY2gtZGFpbHktd2ViaG9vay1zZWNyZXQ=";
const WHEREBY_SECRET: &str = "bench-whereby-webhook-secret";

/// A fixture with its placeholders filled, as the function would receive it at `now` (the seed
/// scheme's signed `ts` must be within the tolerance of the verifier's clock).
fn body(file: &str, now: DateTime<Utc>) -> Vec<u8> {
    let path = format!("{}/events/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    reflector_bench::cases::fill(&text, now).into_bytes()
}

/// Which handler a Daily event goes to, as `functions/daily-webhook` decides it.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Probe,
    Rejected,
    Unprocessable,
    Accepted,
    Participant,
    Recording,
}

fn daily_path(
    secret: &SecretString,
    headers: &HeaderMap,
    body: &[u8],
    now: chrono::DateTime<Utc>,
) -> Route {
    if daily::is_probe(body) {
        return Route::Probe;
    }
    if verify_daily(Some(secret), headers, body, now).is_err() {
        return Route::Rejected;
    }
    let Ok(event) = daily::parse(body) else {
        return Route::Unprocessable;
    };
    match event.kind {
        daily::EventKind::ParticipantJoined(_) | daily::EventKind::ParticipantLeft(_) => {
            Route::Participant
        }
        daily::EventKind::RecordingStarted { .. }
        | daily::EventKind::RecordingReady(_)
        | daily::EventKind::RecordingError { .. } => Route::Recording,
        daily::EventKind::MeetingStarted { .. }
        | daily::EventKind::MeetingEnded { .. }
        | daily::EventKind::Unknown => Route::Accepted,
    }
}

fn whereby_path(
    secret: &SecretString,
    headers: &HeaderMap,
    body: &[u8],
    now: chrono::DateTime<Utc>,
) -> Route {
    if verify_whereby(Some(secret), headers, body, now).is_err() {
        return Route::Rejected;
    }
    let Ok(event) = whereby::parse(body) else {
        return Route::Unprocessable;
    };
    match event.kind {
        whereby::EventKind::ClientJoined(_) | whereby::EventKind::ClientLeft(_) => {
            Route::Participant
        }
        whereby::EventKind::Unknown => Route::Accepted,
    }
}

fn webhook(c: &mut Criterion) {
    let now = Utc::now();
    let ts = now.timestamp();

    let daily = body("daily-participant-joined.json", now);
    let daily_headers = header_map(&sign_daily(DAILY_SECRET, ts, &daily).expect("base64 secret"));
    let daily_seed = body("daily-seed-participant-joined.json", now);
    let seed_headers = header_map(&sign_daily_seed(DAILY_SECRET, &daily_seed));
    let whereby = body("whereby-room-client-joined.json", now);
    let whereby_headers = header_map(&sign_whereby(WHEREBY_SECRET, ts, &whereby));
    let daily_secret = SecretString::from(DAILY_SECRET.to_owned());
    let whereby_secret = SecretString::from(WHEREBY_SECRET.to_owned());

    // The benches must measure the accepting path, not an early rejection.
    assert!(verify_daily(Some(&daily_secret), &daily_headers, &daily, now).is_ok());
    assert!(verify_daily(Some(&daily_secret), &seed_headers, &daily_seed, now).is_ok());
    assert!(verify_whereby(Some(&whereby_secret), &whereby_headers, &whereby, now).is_ok());

    assert_eq!(
        daily_path(&daily_secret, &daily_headers, &daily, now),
        Route::Participant
    );
    assert_eq!(
        daily_path(&daily_secret, &seed_headers, &daily_seed, now),
        Route::Participant
    );
    assert_eq!(
        whereby_path(&whereby_secret, &whereby_headers, &whereby, now),
        Route::Participant
    );

    let mut g = c.benchmark_group("webhook");
    g.bench_function("full/daily-real", |b| {
        b.iter(|| {
            daily_path(
                &daily_secret,
                black_box(&daily_headers),
                black_box(&daily),
                now,
            )
        })
    });
    g.bench_function("full/daily-seed", |b| {
        b.iter(|| {
            daily_path(
                &daily_secret,
                black_box(&seed_headers),
                black_box(&daily_seed),
                now,
            )
        })
    });
    g.bench_function("full/whereby", |b| {
        b.iter(|| {
            whereby_path(
                &whereby_secret,
                black_box(&whereby_headers),
                black_box(&whereby),
                now,
            )
        })
    });
    g.bench_function("verify/daily-real", |b| {
        b.iter(|| {
            verify_daily(
                Some(&daily_secret),
                black_box(&daily_headers),
                black_box(&daily),
                now,
            )
        })
    });
    g.bench_function("verify/daily-seed", |b| {
        b.iter(|| {
            verify_daily(
                Some(&daily_secret),
                black_box(&seed_headers),
                black_box(&daily_seed),
                now,
            )
        })
    });
    g.bench_function("verify/whereby", |b| {
        b.iter(|| {
            verify_whereby(
                Some(&whereby_secret),
                black_box(&whereby_headers),
                black_box(&whereby),
                now,
            )
        })
    });
    g.finish();
}

/// The join's CPU work on Daily (issue 14: "the token costs microseconds"): the claims, the
/// HS256 signature with the client's prepared key, and the URL carrying the token.
fn join_token(c: &mut Criterion) {
    let now = Utc::now();
    let signer = MeetingTokenSigner::new(&SecretString::from("bench-daily-api-key".to_owned()));
    let request = TokenRequest {
        room_name: "standup-20261202114751",
        user_id: Some("user-1"),
        is_owner: false,
        recording_type: RecordingType::Cloud,
        skip_consent: false,
        expires_at: now + chrono::Duration::hours(8),
    };
    let room_url = "https://reflector.daily.co/standup-20261202114751";
    let join = |request: &TokenRequest<'_>| {
        let claims = MeetingTokenClaims::new(request, "bench-domain-id", now);
        signer.sign(&claims).map(|token| join_url(room_url, &token))
    };
    // Measure the signing path, not an early error.
    assert!(join(&request).expect("signs").contains("?t="));
    let mut g = c.benchmark_group("token");
    g.bench_function("join/daily", |b| b.iter(|| join(black_box(&request))));
    g.finish();
}

criterion_group!(benches, webhook, join_token);
criterion_main!(benches);
