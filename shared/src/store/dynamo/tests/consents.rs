use aws_sdk_dynamodb::types::AttributeValue;

use super::{at, env, id, Env};
use crate::domain::Consent;
use crate::store::ConsentStore;

fn consent(meeting_id: &str, user: Option<&str>, given: bool, secs: i64) -> Consent {
    Consent {
        id: id(),
        meeting_id: meeting_id.into(),
        user_id: user.map(str::to_owned),
        consent_given: given,
        consent_timestamp: at(secs),
    }
}

/// The meeting's stored consents as (user id, given), read with an uncounted client.
async fn stored(env: &Env, meeting_id: &str) -> Vec<(Option<String>, bool)> {
    let out = env
        .raw
        .query()
        .table_name(&env.tables.meeting_consents)
        .key_condition_expression("meeting_id = :m")
        .expression_attribute_values(":m", AttributeValue::S(meeting_id.into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    let mut found: Vec<_> = out
        .items()
        .iter()
        .map(|item| {
            let user = item.get("user_id").and_then(|v| v.as_s().ok()).cloned();
            let given = *item["consent_given"].as_bool().unwrap();
            (user, given)
        })
        .collect();
    found.sort();
    found
}

#[tokio::test]
async fn an_authenticated_users_consent_is_updated_in_place() {
    let env = env().await;
    let consents = &env.stores.consents;
    let first = consent("m1", Some("alice"), true, 0);

    assert_eq!(consents.upsert(&first).await.unwrap(), first);
    assert_eq!(env.ops(), ["UpdateItem"]);

    // A changed mind keeps the first consent id and replaces the answer.
    let second = consent("m1", Some("alice"), false, 60);
    let stored_now = consents.upsert(&second).await.unwrap();
    assert_eq!(env.ops(), ["UpdateItem"]);
    assert_eq!(
        stored_now,
        Consent {
            id: first.id.clone(),
            ..second
        }
    );
    assert_eq!(
        stored(&env, "m1").await,
        vec![(Some("alice".into()), false)]
    );
    let back = consent("m1", Some("alice"), true, 120);
    consents.upsert(&back).await.unwrap();
    assert_eq!(stored(&env, "m1").await, vec![(Some("alice".into()), true)]);
}

#[tokio::test]
async fn anonymous_consents_are_appended() {
    let env = env().await;
    let consents = &env.stores.consents;
    let yes = consent("m1", None, true, 0);
    assert_eq!(consents.upsert(&yes).await.unwrap(), yes);
    assert_eq!(env.ops(), ["PutItem"]);
    consents
        .upsert(&consent("m1", None, false, 1))
        .await
        .unwrap();
    consents
        .upsert(&consent("m1", Some("bob"), true, 2))
        .await
        .unwrap();

    assert_eq!(
        stored(&env, "m1").await,
        vec![(None, false), (None, true), (Some("bob".into()), true)]
    );
    // Another meeting has none of them.
    assert!(stored(&env, "m2").await.is_empty());
}
