//! Recording processor: SQS batches of recording jobs and S3 object-created notifications into
//! audio in the recordings bucket, transcripts and pipeline messages.

pub mod handler;
pub mod job;
pub mod links;

/// The secrets this function reads at cold start (`shared::secrets`): Daily's API key, for
/// access links and recording starts. A test checks template.yaml against this list.
pub const SECRETS: &[shared::secrets::Secret] = &[shared::secrets::Secret::DailyApiKey];

use std::sync::Arc;

use shared::aws::AwsClients;
use shared::config::Config;
use shared::domain::{Platform, RecordingKind};
use shared::http_client::LazyClient;
use shared::platform::daily::{DailyClient, RecordingStart};
use shared::platform::http::HttpSettings;
use shared::platform::PlatformError;
use shared::recording_start::RecordingStarter;
use shared::store::dynamo::DynamoStores;

use crate::handler::{Deps, Stores};
use crate::links::{DailyLinks, NoRecordingLinks, RecordingLinks};

/// Builds the processor's dependencies from configuration, as `main` and the local stack do:
/// DynamoDB stores for the configured tables, Daily's access-link API when `DAILY_API_KEY` is
/// set, S3 and SQS from `aws`.
pub fn build(config: &Config, aws: &AwsClients) -> Result<Deps, BuildError> {
    let stores = DynamoStores::new(aws.dynamodb.clone(), &config.tables);
    let (links, starter): (Arc<dyn RecordingLinks>, Arc<dyn RecordingStarter>) =
        if config.daily.api_key.is_some() {
            let settings = HttpSettings::default();
            // Built at Daily's first request: a job that needs no access link (a copy, an
            // unknown meeting) loads no TLS roots.
            let timeout = settings.timeout;
            let http = LazyClient::new(move || reqwest::Client::builder().timeout(timeout).build());
            let daily = Arc::new(DailyClient::from_config(&config.daily, http, settings)?);
            (Arc::new(DailyLinks(daily.clone())), daily)
        } else {
            (Arc::new(NoRecordingLinks), Arc::new(NoRecordingStarter))
        };
    let stores = Stores {
        meetings: Arc::new(stores.meetings),
        recordings: Arc::new(stores.recordings),
        transcripts: Arc::new(stores.transcripts),
    };
    Ok(Deps::new(config, aws, stores, links, starter)?)
}

/// Used when no Daily API key is configured: every start fails permanently, saying why.
pub struct NoRecordingStarter;

#[async_trait::async_trait]
impl RecordingStarter for NoRecordingStarter {
    async fn start_recording(
        &self,
        _room_name: &str,
        _kind: RecordingKind,
        _instance_id: uuid::Uuid,
    ) -> Result<RecordingStart, PlatformError> {
        Err(PlatformError::Config {
            platform: Platform::Daily,
            var: "DAILY_API_KEY",
            reason: "is not set: cannot start a Daily recording".into(),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Platform(#[from] PlatformError),
    #[error(transparent)]
    Deps(#[from] handler::BuildError),
}
