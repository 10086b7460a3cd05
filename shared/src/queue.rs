//! Queue ports: what handlers send, without SQS types in their signatures.

use async_trait::async_trait;

use crate::messages::RecordingJob;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("cannot encode the message: {0}")]
    Encode(String),
    /// SQS refused or could not be reached after the SDK's own retries; worth retrying later.
    #[error("sending to {queue} failed: {reason}")]
    Send { queue: String, reason: String },
}

/// The recordings queue (DESIGN.md section 7).
#[async_trait]
pub trait RecordingQueue: Send + Sync {
    /// Sends one job (one SQS request).
    async fn send(&self, job: &RecordingJob) -> Result<(), QueueError>;
}

/// [`RecordingQueue`] over SQS.
#[derive(Debug, Clone)]
pub struct SqsRecordingQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsRecordingQueue {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }
}

#[async_trait]
impl RecordingQueue for SqsRecordingQueue {
    async fn send(&self, job: &RecordingJob) -> Result<(), QueueError> {
        let body = serde_json::to_string(job).map_err(|e| QueueError::Encode(e.to_string()))?;
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| QueueError::Send {
                queue: self.queue_url.clone(),
                reason: aws_sdk_sqs::error::DisplayErrorContext(&e).to_string(),
            })?;
        Ok(())
    }
}
