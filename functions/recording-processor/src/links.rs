//! The one platform call the processor makes: a download URL for a Daily recording.

use async_trait::async_trait;

#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct LinkError {
    pub message: String,
    /// Whether asking again later may succeed (429, 5xx, network).
    pub transient: bool,
}

/// Turns a platform recording id into a URL to download it from.
#[async_trait]
pub trait RecordingLinks: Send + Sync {
    async fn access_link(&self, recording_id: &str) -> Result<String, LinkError>;
}

/// Used when no Daily API key is configured: every lookup fails permanently, saying why.
pub struct NoRecordingLinks;

#[async_trait]
impl RecordingLinks for NoRecordingLinks {
    async fn access_link(&self, recording_id: &str) -> Result<String, LinkError> {
        Err(LinkError {
            message: format!(
                "cannot get a download link for Daily recording {recording_id}: DAILY_API_KEY is not set"
            ),
            transient: false,
        })
    }
}
