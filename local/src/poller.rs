//! Feeds the recording processor from SQS the way a Lambda event source mapping does: batches
//! of up to 10, partial batch failures honoured (only successful messages are deleted), failed
//! messages left on the queue so that the redrive policy moves poison messages to the DLQ.

use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use serde_json::json;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::ProcessorFn;

pub struct Poller {
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub queue_arn: String,
    pub region: String,
    pub processor: ProcessorFn,
    /// How long a failed message stays invisible before redelivery. In AWS it is the queue's
    /// visibility timeout (90 min here); locally a few seconds keep retries observable.
    pub retry_delay: Duration,
}

impl Poller {
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            let received = tokio::select! {
                _ = shutdown.changed() => return,
                r = self.sqs.receive_message()
                    .queue_url(&self.queue_url)
                    .max_number_of_messages(10)
                    .wait_time_seconds(1)
                    .message_system_attribute_names(MessageSystemAttributeName::All)
                    .message_attribute_names("All")
                    .send() => r,
            };
            let messages = match received {
                Ok(out) => out.messages.unwrap_or_default(),
                Err(e) => {
                    warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(e), "receiving recording jobs failed");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    continue;
                }
            };
            if messages.is_empty() {
                continue;
            }
            self.deliver(messages).await;
        }
    }

    /// Hands one batch to the processor and settles each message by its result.
    pub async fn deliver(&self, messages: Vec<Message>) {
        let event = self.event(&messages);
        let failed: Vec<String> = match (self.processor)(event).await {
            Ok(response) => response
                .batch_item_failures
                .into_iter()
                .map(|f| f.item_identifier)
                .collect(),
            Err(e) => {
                warn!(error = %e, batch = messages.len(), "recording processor failed the whole batch");
                messages
                    .iter()
                    .filter_map(|m| m.message_id.clone())
                    .collect()
            }
        };
        let mut done = Vec::new();
        for m in &messages {
            let (Some(id), Some(receipt)) = (&m.message_id, &m.receipt_handle) else {
                continue;
            };
            if failed.contains(id) {
                let delay = i32::try_from(self.retry_delay.as_secs()).unwrap_or(i32::MAX);
                if let Err(e) = self
                    .sqs
                    .change_message_visibility()
                    .queue_url(&self.queue_url)
                    .receipt_handle(receipt)
                    .visibility_timeout(delay)
                    .send()
                    .await
                {
                    warn!(message_id = %id, error = %aws_sdk_sqs::error::DisplayErrorContext(e), "could not shorten visibility of a failed job");
                }
            } else if let Ok(entry) = DeleteMessageBatchRequestEntry::builder()
                .id(id)
                .receipt_handle(receipt)
                .build()
            {
                done.push(entry);
            }
        }
        info!(
            batch = messages.len(),
            failed = failed.len(),
            "recording jobs delivered"
        );
        if !done.is_empty() {
            if let Err(e) = self
                .sqs
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(done))
                .send()
                .await
            {
                warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(e), "deleting processed jobs failed; they will be redelivered");
            }
        }
    }

    fn event(&self, messages: &[Message]) -> SqsEvent {
        let records: Vec<_> = messages
            .iter()
            .map(|m| {
                let attributes: serde_json::Map<String, serde_json::Value> = m
                    .attributes()
                    .map(|a| {
                        a.iter()
                            .map(|(k, v)| (k.as_str().to_owned(), json!(v)))
                            .collect()
                    })
                    .unwrap_or_default();
                json!({
                    "messageId": m.message_id(),
                    "receiptHandle": m.receipt_handle(),
                    "body": m.body(),
                    "attributes": attributes,
                    "messageAttributes": {},
                    "md5OfBody": m.md5_of_body(),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.queue_arn,
                    "awsRegion": self.region,
                })
            })
            .collect();
        serde_json::from_value(json!({ "Records": records })).unwrap_or_default()
    }
}
