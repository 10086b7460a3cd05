//! Meeting consents, keyed `meeting_id` + `consent_key`: `user#<user id>` for authenticated
//! users (so the upsert is one write to a known key) and `anon#<consent id>` for anonymous
//! consents (appended).

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::ReturnValue;
use aws_sdk_dynamodb::Client;
use tracing::instrument;

use super::item::{b, s, ts, Item, Reader};
use super::{sdk_error, update_item, Expr};
use crate::domain::Consent;
use crate::store::{conflict, ConsentStore, StoreError, StoreResult};

#[derive(Debug, Clone)]
pub struct DynamoConsentStore {
    client: Client,
    table: String,
}

fn read_consent(item: &Item) -> StoreResult<Consent> {
    let r = Reader::new(item, "consent", "id");
    Ok(Consent {
        id: r.s("id")?,
        meeting_id: r.s("meeting_id")?,
        user_id: r.opt_s("user_id")?,
        consent_given: r.bool("consent_given")?,
        consent_timestamp: r.ts("consent_timestamp")?,
    })
}

impl DynamoConsentStore {
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }
}

#[async_trait]
impl ConsentStore for DynamoConsentStore {
    /// One request. Authenticated: an UpdateItem of the user's item, keeping the first consent
    /// id, returning the stored consent. Anonymous: a PutItem only if that id is new.
    #[instrument(skip(self, consent), fields(meeting_id = %consent.meeting_id, consent_id = %consent.id))]
    async fn upsert(&self, consent: &Consent) -> StoreResult<Consent> {
        match &consent.user_id {
            Some(user_id) => {
                let key: Item = [
                    ("meeting_id".to_owned(), s(&consent.meeting_id)),
                    ("consent_key".to_owned(), s(format!("user#{user_id}"))),
                ]
                .into();
                let placeholders = Expr::default()
                    .name("#id", "id")
                    .value(":id", s(&consent.id))
                    .value(":user", s(user_id))
                    .value(":given", b(consent.consent_given))
                    .value(":at", ts(consent.consent_timestamp));
                let item = update_item(
                    &self.client,
                    &self.table,
                    key,
                    "SET #id = if_not_exists(#id, :id), user_id = :user, \
                     consent_given = :given, consent_timestamp = :at",
                    None,
                    &placeholders,
                    ReturnValue::AllNew,
                )
                .await?
                .map_err(|_| StoreError::Other("unconditional update failed a condition".into()))?;
                read_consent(&item)
            }
            None => {
                let item: Item = [
                    ("meeting_id", s(&consent.meeting_id)),
                    ("consent_key", s(format!("anon#{}", consent.id))),
                    ("id", s(&consent.id)),
                    ("consent_given", b(consent.consent_given)),
                    ("consent_timestamp", ts(consent.consent_timestamp)),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect();
                let result = self
                    .client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression("attribute_not_exists(consent_key)")
                    .send()
                    .await;
                match result {
                    Ok(_) => Ok(consent.clone()),
                    Err(e)
                        if matches!(
                            e.as_service_error(),
                            Some(PutItemError::ConditionalCheckFailedException(_))
                        ) =>
                    {
                        Err(StoreError::Conflict {
                            entity: "consent",
                            id: consent.id.clone(),
                            condition: conflict::ID_TAKEN.to_owned(),
                        })
                    }
                    Err(e) => Err(sdk_error("PutItem", e)),
                }
            }
        }
    }
}
