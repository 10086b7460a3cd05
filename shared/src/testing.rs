//! Helpers for tests that run against the local AWS emulator (moto server). Compiled for this
//! crate's tests and, with the `testing` feature, for other crates' tests.
//!
//! Tests share one emulator; each isolates itself with uniquely named resources
//! ([`unique_prefix`], [`fresh_tables`]). A missing emulator is a failure with a clear message,
//! never a silent skip.

use aws_config::SdkConfig;
use aws_sdk_dynamodb::config::{Credentials, Region, SharedCredentialsProvider};

use crate::aws::{load_sdk_config, AwsClients};
use crate::config::TableNames;
use crate::provision::ensure_tables;

pub const NO_EMULATOR: &str =
    "AWS_ENDPOINT_URL is not set: run scripts/test, which starts the emulator";

/// The emulator's URL from `AWS_ENDPOINT_URL`; panics with [`NO_EMULATOR`] when unset.
pub fn endpoint_url() -> String {
    match endpoint_from(std::env::var("AWS_ENDPOINT_URL").ok()) {
        Some(url) => url,
        None => panic!("{NO_EMULATOR}"),
    }
}

/// An unset or blank value means "no emulator".
fn endpoint_from(value: Option<String>) -> Option<String> {
    value.filter(|url| !url.trim().is_empty())
}

/// The process's SDK configuration ([`load_sdk_config`]) pointed at the emulator, with static
/// test credentials (so the SDK never looks for real ones, e.g. on an instance metadata
/// address) and `us-east-1` unless `AWS_REGION` says otherwise.
pub async fn emulator_sdk_config() -> SdkConfig {
    endpoint_url();
    let sdk = load_sdk_config().await;
    let region = sdk
        .region()
        .cloned()
        .unwrap_or_else(|| Region::new("us-east-1"));
    sdk.to_builder()
        .region(region)
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "testing", "testing", None, None, "emulator",
        )))
        .build()
}

/// Clients for the emulator.
pub async fn emulator() -> AwsClients {
    AwsClients::new(&emulator_sdk_config().await)
}

/// A name prefix no other test uses: `t-<label>-<12 hex digits>`.
pub fn unique_prefix(label: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("t-{label}-{}", &id[..12])
}

/// Creates a uniquely prefixed set of all tables (from `infra/tables.yaml`) and returns their
/// names.
pub async fn fresh_tables(clients: &AwsClients) -> TableNames {
    let names = TableNames::with_prefix(&unique_prefix("tbl"));
    if let Err(e) = ensure_tables(&clients.dynamodb, &names).await {
        panic!("creating test tables in the emulator failed: {e}");
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_or_missing_endpoint_means_no_emulator() {
        assert_eq!(endpoint_from(None), None);
        assert_eq!(endpoint_from(Some("  ".into())), None);
        assert_eq!(
            endpoint_from(Some("http://127.0.0.1:5000".into())).as_deref(),
            Some("http://127.0.0.1:5000")
        );
        assert!(NO_EMULATOR.contains("AWS_ENDPOINT_URL is not set"));
    }

    #[test]
    fn unique_prefixes_differ_and_make_valid_table_names() {
        let (a, b) = (unique_prefix("x"), unique_prefix("x"));
        assert_ne!(a, b);
        let name = TableNames::with_prefix(&a).participant_sessions;
        assert!(name.len() <= 255);
        assert!(name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)));
    }
}
