//! SQS producers behind narrow traits.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::error::DisplayErrorContext;

use crate::messages::{PipelineMessage, RecordingJob, StartRecording};

/// SQS's longest per-message delay (`DelaySeconds`, 15 minutes).
pub const MAX_DELAY: Duration = Duration::from_secs(900);

#[derive(Debug, thiserror::Error)]
#[error("sending to {queue} failed: {message}")]
pub struct QueueError {
    pub queue: String,
    pub message: String,
}

/// The transcription pipeline's queue.
#[async_trait]
pub trait PipelineQueue: Send + Sync {
    async fn send(&self, message: &PipelineMessage) -> Result<(), QueueError>;
}

/// The recordings queue (DESIGN.md section 7), fed by the Daily webhook, and by the recording
/// processor for its own delayed retries of a [`StartRecording`].
#[async_trait]
pub trait RecordingQueue: Send + Sync {
    /// Sends one job (one SQS request).
    async fn send(&self, job: &RecordingJob) -> Result<(), QueueError>;

    /// Sends one recording start, delivered no sooner than `delay` from now (at most
    /// [`MAX_DELAY`]; longer is cut to it). One SQS request.
    async fn send_start(&self, start: &StartRecording, delay: Duration) -> Result<(), QueueError>;
}

/// A queue by URL. On a FIFO queue (`.fifo`) messages carry a deduplication id, so SQS itself
/// drops a second copy sent within its 5-minute window.
#[derive(Clone, Debug)]
pub struct SqsQueue {
    sqs: aws_sdk_sqs::Client,
    url: String,
}

impl SqsQueue {
    pub fn new(sqs: aws_sdk_sqs::Client, url: impl Into<String>) -> Self {
        Self {
            sqs,
            url: url.into(),
        }
    }

    /// Sends `body` as JSON; `dedup_id` and `group_id` are used on FIFO queues only.
    pub async fn send_json<T: serde::Serialize + Sync>(
        &self,
        body: &T,
        dedup_id: &str,
        group_id: &str,
    ) -> Result<(), QueueError> {
        self.send_json_delayed(body, dedup_id, group_id, Duration::ZERO)
            .await
    }

    /// [`Self::send_json`] with SQS's per-message `DelaySeconds` (whole seconds, at most
    /// [`MAX_DELAY`]). FIFO queues accept no per-message delay, so there it is not sent.
    pub async fn send_json_delayed<T: serde::Serialize + Sync>(
        &self,
        body: &T,
        dedup_id: &str,
        group_id: &str,
        delay: Duration,
    ) -> Result<(), QueueError> {
        let text = serde_json::to_string(body).map_err(|e| QueueError {
            queue: self.url.clone(),
            message: format!("cannot serialize the message: {e}"),
        })?;
        let fifo = self.url.ends_with(".fifo");
        // At most 900, so the cast cannot truncate.
        let delay_seconds = delay.min(MAX_DELAY).as_secs() as i32;
        self.sqs
            .send_message()
            .queue_url(&self.url)
            .message_body(text)
            .set_delay_seconds((!fifo && delay_seconds > 0).then_some(delay_seconds))
            .set_message_deduplication_id(fifo.then(|| dedup_id.to_owned()))
            .set_message_group_id(fifo.then(|| group_id.to_owned()))
            .send()
            .await
            .map_err(|e| QueueError {
                queue: self.url.clone(),
                message: DisplayErrorContext(&e).to_string(),
            })?;
        Ok(())
    }
}

#[async_trait]
impl PipelineQueue for SqsQueue {
    async fn send(&self, message: &PipelineMessage) -> Result<(), QueueError> {
        self.send_json(message, &message.transcript_id, &message.meeting_id)
            .await
    }
}

#[async_trait]
impl RecordingQueue for SqsQueue {
    async fn send(&self, job: &RecordingJob) -> Result<(), QueueError> {
        // On a FIFO queue one job per recording within SQS's window; per meeting ordering.
        self.send_json(job, &job.recording_id, &job.meeting_id)
            .await
    }

    async fn send_start(&self, start: &StartRecording, delay: Duration) -> Result<(), QueueError> {
        // On a FIFO queue one message per kind and attempt within SQS's window.
        let dedup_id = format!(
            "start-{}-{}-{}",
            start.meeting_id, start.kind, start.attempt
        );
        self.send_json_delayed(start, &dedup_id, &start.meeting_id, delay)
            .await
    }
}
