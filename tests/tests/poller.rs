//! The local SQS poller behaves like a Lambda event source mapping with
//! ReportBatchItemFailures: only successful messages are deleted, failed ones are redelivered,
//! and a message that keeps failing reaches the dead-letter queue through the redrive policy.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use aws_sdk_sqs::types::Message;
use local::poller::Poller;
use local::ProcessorFn;
use reflector_tests::{clients_for, emulator_endpoint, unique_prefix};

/// Fails every record whose body starts with "fail"; remembers each batch's bodies.
fn failing_processor(seen: Arc<Mutex<Vec<Vec<String>>>>) -> ProcessorFn {
    Arc::new(move |event: SqsEvent| {
        let seen = seen.clone();
        Box::pin(async move {
            let bodies: Vec<String> = event
                .records
                .iter()
                .filter_map(|r| r.body.clone())
                .collect();
            seen.lock().unwrap().push(bodies);
            let mut response = SqsBatchResponse::default();
            for r in &event.records {
                if r.body.as_deref().unwrap_or("").starts_with("fail") {
                    let mut f = BatchItemFailure::default();
                    f.item_identifier = r.message_id.clone().unwrap_or_default();
                    response.batch_item_failures.push(f);
                }
            }
            Ok(response)
        })
    })
}

async fn receive_all(sqs: &aws_sdk_sqs::Client, url: &str, want: usize) -> Vec<Message> {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.len() < want && Instant::now() < deadline {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        got.extend(out.messages.unwrap_or_default());
    }
    got
}

#[tokio::test]
async fn partial_batch_failures_delete_only_successful_messages() {
    let aws = clients_for(&emulator_endpoint()).await;
    let queues =
        local::provision::ensure_queues(&aws.sqs, &unique_prefix("partial"), &Default::default())
            .await
            .unwrap();
    for i in 0..7 {
        aws.sqs
            .send_message()
            .queue_url(&queues.recordings)
            .message_body(format!("ok-{i}"))
            .send()
            .await
            .unwrap();
    }
    for i in 0..3 {
        aws.sqs
            .send_message()
            .queue_url(&queues.recordings)
            .message_body(format!("fail-{i}"))
            .send()
            .await
            .unwrap();
    }
    let batch = receive_all(&aws.sqs, &queues.recordings, 10).await;
    assert_eq!(batch.len(), 10);

    let seen = Arc::new(Mutex::new(Vec::new()));
    let poller = Poller {
        sqs: aws.sqs.clone(),
        queue_url: queues.recordings.clone(),
        queue_arn: "arn:aws:sqs:us-east-1:123456789012:test".into(),
        region: "us-east-1".into(),
        processor: failing_processor(seen.clone()),
        retry_delay: Duration::ZERO,
    };
    poller.deliver(batch).await;
    assert_eq!(
        seen.lock().unwrap()[0].len(),
        10,
        "one batch of 10 handed over"
    );

    let mut again: Vec<String> = receive_all(&aws.sqs, &queues.recordings, 3)
        .await
        .into_iter()
        .filter_map(|m| m.body)
        .collect();
    again.sort();
    assert_eq!(again, ["fail-0", "fail-1", "fail-2"]);
    // Nothing else is left: the seven successes were deleted.
    let rest = aws
        .sqs
        .receive_message()
        .queue_url(&queues.recordings)
        .max_number_of_messages(10)
        .visibility_timeout(0)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert!(
        rest.iter()
            .all(|m| m.body().unwrap_or("").starts_with("fail")),
        "{rest:?}"
    );
}

#[tokio::test]
async fn a_message_that_keeps_failing_reaches_the_dead_letter_queue() {
    let aws = clients_for(&emulator_endpoint()).await;
    let queues =
        local::provision::ensure_queues(&aws.sqs, &unique_prefix("poison"), &Default::default())
            .await
            .unwrap();
    aws.sqs
        .send_message()
        .queue_url(&queues.recordings)
        .message_body("fail-always")
        .send()
        .await
        .unwrap();

    let seen = Arc::new(Mutex::new(Vec::new()));
    let poller = Poller {
        sqs: aws.sqs.clone(),
        queue_url: queues.recordings.clone(),
        queue_arn: "arn:aws:sqs:us-east-1:123456789012:test".into(),
        region: "us-east-1".into(),
        processor: failing_processor(seen.clone()),
        retry_delay: Duration::ZERO,
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(poller.run(stopped));

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut in_dlq = Vec::new();
    while in_dlq.is_empty() && Instant::now() < deadline {
        in_dlq = aws
            .sqs
            .receive_message()
            .queue_url(&queues.recordings_dlq)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default();
    }
    let _ = stop.send(true);
    task.await.unwrap();
    assert_eq!(in_dlq.len(), 1, "the poison message reached the DLQ");
    assert_eq!(in_dlq[0].body(), Some("fail-always"));
    // The redrive count of infra/queues.yaml (5) was honoured: delivered 5 times, not fewer.
    assert_eq!(seen.lock().unwrap().len(), 5);
}
