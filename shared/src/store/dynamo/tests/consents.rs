use super::{at, env, id};
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

#[tokio::test]
async fn an_authenticated_users_consent_is_updated_in_place() {
    let env = env().await;
    let consents = &env.stores.consents;
    let first = consent("m1", Some("alice"), true, 0);

    assert_eq!(consents.upsert(&first).await.unwrap(), first);
    assert_eq!(env.ops(), ["UpdateItem"]);
    assert!(!consents.has_any_denial("m1").await.unwrap());
    assert_eq!(env.ops(), ["Query"]);

    // A changed mind keeps the first consent id and replaces the answer.
    let second = consent("m1", Some("alice"), false, 60);
    let stored = consents.upsert(&second).await.unwrap();
    assert_eq!(env.ops(), ["UpdateItem"]);
    assert_eq!(
        stored,
        Consent {
            id: first.id.clone(),
            ..second
        }
    );
    assert!(consents.has_any_denial("m1").await.unwrap());
    let back = consent("m1", Some("alice"), true, 120);
    consents.upsert(&back).await.unwrap();
    assert!(!consents.has_any_denial("m1").await.unwrap());
}

#[tokio::test]
async fn anonymous_consents_are_appended_and_any_denial_counts() {
    let env = env().await;
    let consents = &env.stores.consents;
    let yes = consent("m1", None, true, 0);
    assert_eq!(consents.upsert(&yes).await.unwrap(), yes);
    assert_eq!(env.ops(), ["PutItem"]);
    consents
        .upsert(&consent("m1", None, true, 1))
        .await
        .unwrap();
    consents
        .upsert(&consent("m1", Some("bob"), true, 2))
        .await
        .unwrap();
    assert!(!consents.has_any_denial("m1").await.unwrap());

    consents
        .upsert(&consent("m1", None, false, 3))
        .await
        .unwrap();
    assert!(consents.has_any_denial("m1").await.unwrap());
    // Another meeting's denial is not this meeting's.
    assert!(!consents.has_any_denial("m2").await.unwrap());
}
