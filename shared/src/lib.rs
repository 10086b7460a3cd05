//! Code shared by every Lambda function of the Reflector video-platform backend.

pub mod aws;
pub mod config;
pub mod domain;
pub mod http;
pub mod platform;
pub mod store;
pub mod telemetry;
