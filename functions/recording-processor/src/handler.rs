//! SQS batch handler. Until this function's issue lands it fails every invocation, so the
//! messages stay on the queue (and reach the DLQ after the redrive count) instead of being
//! acknowledged unprocessed.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent};

pub async fn handle(_event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    Err("recording-processor: not implemented".into())
}
