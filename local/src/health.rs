//! `GET /healthz`: 200 when DynamoDB, SQS and S3 answer and every table, queue and bucket the
//! stack is configured with exists; 503 with a `{"detail"}` naming what is unreachable or
//! missing otherwise.

use std::time::Duration;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use futures::future::{join_all, BoxFuture};
use serde_json::json;

use crate::Stack;

const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// What one probe found wrong.
enum Problem {
    /// The service answered that the resource does not exist.
    Missing(String),
    /// The service did not answer usefully; `reason` says how.
    Unreachable {
        service: &'static str,
        reason: String,
    },
}

/// One resource to probe: the service, what to call it in a report, and the probe, whose
/// `Ok(false)` means the service says it does not exist.
struct Probe<'a> {
    service: &'static str,
    what: String,
    exists: BoxFuture<'a, Result<bool, String>>,
}

/// Probes every configured table, queue and bucket at once, each bounded by a timeout so a
/// dead emulator gives a prompt 503 rather than a hang.
pub async fn check(stack: &Stack) -> (u16, serde_json::Value) {
    let aws = &stack.aws;
    let tables = &stack.config.tables;
    let mut probes: Vec<Probe<'_>> = Vec::new();
    for table in tables.all() {
        probes.push(Probe {
            service: "dynamodb",
            what: format!("table {table}"),
            exists: Box::pin(async move {
                match aws.dynamodb.describe_table().table_name(table).send().await {
                    Ok(_) => Ok(true),
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_resource_not_found_exception()) =>
                    {
                        Ok(false)
                    }
                    Err(e) => Err(describe(&e)),
                }
            }),
        });
    }
    for queue in [
        &stack.queues.recordings,
        &stack.queues.recordings_dlq,
        &stack.queues.pipeline,
    ] {
        probes.push(Probe {
            service: "sqs",
            what: format!("queue {queue}"),
            exists: Box::pin(async move {
                match aws.sqs.get_queue_attributes().queue_url(queue).send().await {
                    Ok(_) => Ok(true),
                    Err(e)
                        if e.as_service_error().is_some_and(|s| {
                            s.is_queue_does_not_exist()
                                || s.code().is_some_and(|c| c.contains("NonExistentQueue"))
                        }) =>
                    {
                        Ok(false)
                    }
                    Err(e) => Err(describe(&e)),
                }
            }),
        });
    }
    let bucket = &stack.config.recordings_bucket;
    probes.push(Probe {
        service: "s3",
        what: format!("bucket {bucket}"),
        exists: Box::pin(async move {
            match aws.s3.head_bucket().bucket(bucket).send().await {
                Ok(_) => Ok(true),
                Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(false),
                Err(e) => Err(describe(&e)),
            }
        }),
    });

    let outcomes = join_all(probes.into_iter().map(|probe| async move {
        match tokio::time::timeout(CHECK_TIMEOUT, probe.exists).await {
            Ok(Ok(true)) => None,
            Ok(Ok(false)) => Some(Problem::Missing(probe.what)),
            Ok(Err(reason)) => Some(Problem::Unreachable {
                service: probe.service,
                reason: first_line(&reason).to_owned(),
            }),
            Err(_) => Some(Problem::Unreachable {
                service: probe.service,
                reason: format!("no answer within {} s", CHECK_TIMEOUT.as_secs()),
            }),
        }
    }))
    .await;

    let mut unreachable: Vec<String> = Vec::new();
    let mut missing: Vec<String> = Vec::new();
    for problem in outcomes.into_iter().flatten() {
        match problem {
            Problem::Missing(what) => missing.push(what),
            // One line per service: a dead DynamoDB fails every table's probe alike.
            Problem::Unreachable { service, reason } => {
                if !unreachable.iter().any(|u| u.starts_with(service)) {
                    unreachable.push(format!("{service} ({reason})"));
                }
            }
        }
    }
    let mut parts = Vec::new();
    if !unreachable.is_empty() {
        parts.push(format!("unreachable: {}", unreachable.join(", ")));
    }
    if !missing.is_empty() {
        parts.push(format!("missing: {}", missing.join(", ")));
    }
    if parts.is_empty() {
        (200, json!({"status": "ok"}))
    } else {
        (503, json!({"detail": parts.join("; ")}))
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
