//! Benchmark tools for `scripts/bench` (DESIGN.md section 11).
//!
//! - [`runtime`]: a local implementation of the Lambda Runtime API that hands out one event and
//!   records what the function answers, the way AWS's runtime interface emulator does.
//! - [`proxy`]: a counting pass-through in front of the AWS emulator, so a cold start also reports
//!   which AWS requests the first invocation made (the SDK clients' first request).
//! - [`platform`]: a fake Whereby API, so the sweeper's first run makes its platform request.
//! - [`recorder`]: a loopback server with a request log, what `proxy` and `platform` are built on.
//! - [`cases`]: the table of events per function (`bench/coldstart-cases.json`).
//! - [`coldstart`]: spawns a release `bootstrap` under both and times it.
//! - [`seed`]: the meetings the participant events refer to, written before the runs.
//! - [`stats`]: medians and percentiles.

pub mod cases;
pub mod coldstart;
pub mod platform;
pub mod proxy;
pub mod recorder;
pub mod runtime;
pub mod seed;
pub mod stats;
