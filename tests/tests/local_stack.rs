//! The local stack end to end over HTTP: health, routing, and what happens when the emulator
//! goes away.

use std::time::{Duration, Instant};

use reflector_tests::{
    clients_for, config_with, emulator_endpoint, unique_prefix, PrivateEmulator,
};

fn options(prefix: &str) -> local::Options {
    local::Options {
        resource_prefix: prefix.to_owned(),
        background: false,
        ..Default::default()
    }
}

#[tokio::test]
async fn start_creates_every_resource_and_health_is_ok() {
    let endpoint = emulator_endpoint();
    let prefix = unique_prefix("health");
    let aws = clients_for(&endpoint).await;
    let running = local::start(
        config_with(&prefix, &endpoint, &[]),
        aws.clone(),
        options(&prefix),
    )
    .await
    .unwrap();
    let url = format!("http://{}/healthz", running.addr);
    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"status": "ok"})
    );
    // Tables, queues and the bucket exist under the stack's names.
    let names = shared::config::TableNames::with_prefix(&prefix);
    for table in [
        &names.rooms,
        &names.meetings,
        &names.participant_sessions,
        &names.recordings,
        &names.transcripts,
        &names.meeting_consents,
        &names.webhook_events,
        &names.config,
    ] {
        aws.dynamodb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .unwrap_or_else(|e| panic!("table {table} missing: {e:?}"));
    }
    for queue in ["recordings", "recordings-dlq", "pipeline"] {
        aws.sqs
            .get_queue_url()
            .queue_name(format!("{prefix}-{queue}"))
            .send()
            .await
            .unwrap();
    }
    aws.s3
        .head_bucket()
        .bucket(format!("{prefix}-recordings"))
        .send()
        .await
        .unwrap();
    // A second start over the same resources is fine (idempotent provisioning).
    let again = local::start(config_with(&prefix, &endpoint, &[]), aws, options(&prefix)).await;
    assert!(again.is_ok());
    again.unwrap().stop().await;
    running.stop().await;
}

#[tokio::test]
async fn unknown_paths_and_methods_answer_like_an_api() {
    let endpoint = emulator_endpoint();
    let prefix = unique_prefix("routing");
    let aws = clients_for(&endpoint).await;
    let running = local::start(config_with(&prefix, &endpoint, &[]), aws, options(&prefix))
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let base = format!("http://{}", running.addr);
    let r = client
        .get(format!("{base}/v1/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = client
        .get(format!("{base}/v1/whereby"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let huge = vec![b'a'; local::MAX_BODY_BYTES + 1];
    let r = client
        .post(format!("{base}/v1/daily_webhook"))
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    running.stop().await;
}

#[tokio::test]
async fn health_names_the_unreachable_services_when_the_emulator_dies() {
    let mut emulator = PrivateEmulator::start();
    let prefix = unique_prefix("dead");
    let aws = clients_for(&emulator.endpoint).await;
    let running = local::start(
        config_with(&prefix, &emulator.endpoint, &[]),
        aws,
        options(&prefix),
    )
    .await
    .unwrap();
    let url = format!("http://{}/healthz", running.addr);
    assert_eq!(reqwest::get(&url).await.unwrap().status(), 200);

    emulator.kill();
    let started = Instant::now();
    let response = reqwest::Client::new()
        .get(&url)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    let detail = body["detail"].as_str().unwrap();
    for service in ["dynamodb", "sqs", "s3"] {
        assert!(detail.contains(service), "{detail}");
    }
    // Bounded by the health check's own timeout, not a hang.
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    running.stop().await;
}
