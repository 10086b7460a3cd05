//! Code shared by every Lambda function of the Reflector video-platform backend.

pub mod aws;
pub mod blob;
pub mod config;
pub mod deadline;
pub mod domain;
pub mod download;
#[cfg(any(test, feature = "fakes"))]
pub mod fakes;
pub mod flags;
pub mod http;
pub mod http_client;
pub mod media;
pub mod meeting_open;
pub mod messages;
pub mod metrics;
pub mod platform;
pub mod provision;
pub mod queue;
pub mod recording_intake;
pub mod recording_start;
pub mod retry;
pub mod secrets;
pub mod store;
pub mod telemetry;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod webhook;
