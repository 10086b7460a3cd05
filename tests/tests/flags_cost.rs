//! What the runtime flags cost the rooms API (DESIGN.md section 11): DynamoDB requests of a
//! meeting call (`POST /v1/rooms/{name}/meeting` that creates the meeting) with a cold flags
//! cache and with a warm one, counted by the SDK interceptor on the stack's own client.

use reflector_tests::{clients_for, config_with, emulator_endpoint, room, unique_prefix};
use shared::aws::AwsClients;
use shared::config::TableNames;
use shared::store::dynamo::{DynamoStores, RequestCounter};
use shared::store::RoomStore;

#[tokio::test]
async fn a_meeting_call_reads_the_flags_once_when_cold_and_never_when_warm() {
    let endpoint = emulator_endpoint();
    let prefix = unique_prefix("flags_cost");
    let aws = clients_for(&endpoint).await;
    let (counted, counter) = RequestCounter::instrument(&aws.dynamodb);
    let stack_aws = AwsClients {
        dynamodb: counted,
        ..aws.clone()
    };
    let running = local::start(
        config_with(&prefix, &endpoint, &[("FLAGS_CACHE_SECONDS", "3600")]),
        stack_aws,
        local::Options {
            resource_prefix: prefix.clone(),
            background: false,
            ..Default::default()
        },
    )
    .await
    .expect("local stack starts");
    // Rooms written with an uncounted client, so the flags cache stays cold until the first
    // meeting call.
    let stores = DynamoStores::new(aws.dynamodb.clone(), &TableNames::with_prefix(&prefix));
    for name in ["cold", "warm"] {
        stores.rooms.create(&room(name)).await.unwrap();
    }
    let http = reqwest::Client::new();
    let mut counts = Vec::new();
    for name in ["cold", "warm"] {
        counter.take();
        let response = http
            .post(format!("http://{}/v1/rooms/{name}/meeting", running.addr))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        counts.push(counter.take());
    }
    let (cold, warm) = (&counts[0], &counts[1]);
    // The room by name, its active-meeting marker, the claim: what the call cost before
    // runtime flags existed.
    assert_eq!(warm, &["GetItem", "GetItem", "TransactWriteItems"], "warm");
    // Cold: one more, the flags item.
    assert_eq!(
        cold,
        &["GetItem", "GetItem", "GetItem", "TransactWriteItems"],
        "cold"
    );
    eprintln!(
        "DynamoDB requests per meeting call: cold flags cache {} ({cold:?}), warm {} ({warm:?})",
        cold.len(),
        warm.len()
    );
    running.stop().await;
}
