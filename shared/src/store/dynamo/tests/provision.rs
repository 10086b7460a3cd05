use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};

use crate::config::TableNames;
use crate::provision::{ensure_tables, ProvisionError};
use crate::testing::{emulator, unique_prefix};

#[tokio::test]
async fn tables_are_created_once_with_the_templates_indexes() {
    let clients = emulator().await;
    let names = TableNames::with_prefix(&unique_prefix("prov"));

    let mut created = ensure_tables(&clients.dynamodb, &names).await.unwrap();
    created.sort();
    let mut expected = vec![
        names.rooms.clone(),
        names.meetings.clone(),
        names.participant_sessions.clone(),
        names.recordings.clone(),
        names.transcripts.clone(),
        names.meeting_consents.clone(),
        names.webhook_events.clone(),
        names.config.clone(),
    ];
    expected.sort();
    assert_eq!(created, expected);
    assert!(ensure_tables(&clients.dynamodb, &names)
        .await
        .unwrap()
        .is_empty());

    let meetings = clients
        .dynamodb
        .describe_table()
        .table_name(&names.meetings)
        .send()
        .await
        .unwrap();
    let mut indexes: Vec<_> = meetings
        .table()
        .unwrap()
        .global_secondary_indexes()
        .iter()
        .filter_map(|g| g.index_name())
        .collect();
    indexes.sort();
    assert_eq!(indexes, ["active-index", "room-name-index"]);
}

#[tokio::test]
async fn an_existing_table_with_another_key_schema_is_reported() {
    let clients = emulator().await;
    let names = TableNames::with_prefix(&unique_prefix("prov"));
    clients
        .dynamodb
        .create_table()
        .table_name(&names.rooms)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
    let err = ensure_tables(&clients.dynamodb, &names).await.unwrap_err();
    assert!(
        matches!(&err, ProvisionError::Mismatch { table, .. } if *table == names.rooms),
        "{err:?}"
    );
}
