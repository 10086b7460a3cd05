//! Recording processor: SQS batches of recording jobs and S3 object-created notifications into
//! audio in the recordings bucket, transcripts and pipeline messages.

pub mod handler;
pub mod job;
pub mod links;

use std::sync::Arc;

use shared::aws::AwsClients;
use shared::config::Config;
use shared::platform::daily::DailyClient;
use shared::platform::http::HttpSettings;
use shared::platform::PlatformError;
use shared::store::dynamo::DynamoStores;

use crate::handler::{Deps, Stores};
use crate::links::{DailyLinks, NoRecordingLinks, RecordingLinks};

/// Builds the processor's dependencies from configuration, as `main` and the local stack do:
/// DynamoDB stores for the configured tables, Daily's access-link API when `DAILY_API_KEY` is
/// set, S3 and SQS from `aws`.
pub fn build(config: &Config, aws: &AwsClients) -> Result<Deps, BuildError> {
    let stores = DynamoStores::new(aws.dynamodb.clone(), &config.tables);
    let links: Arc<dyn RecordingLinks> = if config.daily.api_key.is_some() {
        let settings = HttpSettings::default();
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .build()
            .map_err(|e| BuildError::Http(e.to_string()))?;
        Arc::new(DailyLinks(DailyClient::from_config(
            &config.daily,
            http,
            settings,
        )?))
    } else {
        Arc::new(NoRecordingLinks)
    };
    let stores = Stores {
        meetings: Arc::new(stores.meetings),
        recordings: Arc::new(stores.recordings),
        transcripts: Arc::new(stores.transcripts),
    };
    Ok(Deps::new(config, aws, stores, links)?)
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
    #[error(transparent)]
    Platform(#[from] PlatformError),
    #[error(transparent)]
    Deps(#[from] handler::BuildError),
}
