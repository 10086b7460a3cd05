//! `GET /healthz`: 200 when DynamoDB, SQS and S3 answer; 503 naming what does not.

use std::time::Duration;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use serde_json::json;

use crate::Stack;

const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// Probes the three services at once, each bounded by a timeout so a dead emulator gives a
/// prompt 503 rather than a hang.
pub async fn check(stack: &Stack) -> (u16, serde_json::Value) {
    let aws = &stack.aws;
    let dynamo = async {
        aws.dynamodb
            .describe_table()
            .table_name(&stack.config.tables.rooms)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| describe(&e))
    };
    let sqs = async {
        aws.sqs
            .get_queue_attributes()
            .queue_url(&stack.queues.recordings)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| describe(&e))
    };
    let s3 = async {
        aws.s3
            .head_bucket()
            .bucket(&stack.config.recordings_bucket)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| describe(&e))
    };
    let bounded =
        |name: &'static str, r: Result<Result<(), String>, tokio::time::error::Elapsed>| match r {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(format!("{name} ({})", first_line(&e))),
            Err(_) => Some(format!(
                "{name} (no answer within {} s)",
                CHECK_TIMEOUT.as_secs()
            )),
        };
    let (d, q, s) = tokio::join!(
        tokio::time::timeout(CHECK_TIMEOUT, dynamo),
        tokio::time::timeout(CHECK_TIMEOUT, sqs),
        tokio::time::timeout(CHECK_TIMEOUT, s3),
    );
    let down: Vec<String> = [bounded("dynamodb", d), bounded("sqs", q), bounded("s3", s)]
        .into_iter()
        .flatten()
        .collect();
    if down.is_empty() {
        (200, json!({"status": "ok"}))
    } else {
        (
            503,
            json!({"detail": format!("unreachable: {}", down.join(", "))}),
        )
    }
}

/// A short reason: the service's error code and message, or what failed on the way there.
fn describe<E, R>(e: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match e {
        SdkError::ServiceError(se) => {
            let err = se.err();
            format!(
                "{}: {}",
                err.code().unwrap_or("error"),
                err.message().unwrap_or("no message")
            )
        }
        SdkError::DispatchFailure(d) if d.is_io() => "cannot connect".into(),
        SdkError::TimeoutError(_) => "timed out".into(),
        other => other.to_string(),
    }
}

fn first_line(s: &str) -> &str {
    let line = s.lines().next().unwrap_or(s);
    match line.char_indices().nth(300) {
        Some((end, _)) => &line[..end],
        None => line,
    }
}
