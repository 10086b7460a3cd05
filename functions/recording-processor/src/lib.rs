//! Recording processor: SQS batches of recording jobs and S3 object-created notifications into
//! audio in the recordings bucket, transcripts and pipeline messages.

pub mod handler;
pub mod job;
pub mod links;

use shared::aws::AwsClients;
use shared::config::Config;

/// Builds the processor's dependencies from configuration, as `main` and the local stack do.
pub fn build(_config: &Config, _aws: &AwsClients) -> Result<handler::Deps, BuildError> {
    // The DynamoDB stores land with the store module; until then the function refuses to start.
    Err(BuildError::StoresMissing)
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("the DynamoDB stores are not wired yet")]
    StoresMissing,
    #[error(transparent)]
    Deps(#[from] handler::BuildError),
}
