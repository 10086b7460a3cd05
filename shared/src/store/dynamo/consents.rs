//! Meeting consents, keyed `meeting_id` + `consent_key`: `user#<user id>` for authenticated
//! users (so the upsert is one write to a known key) and `anon#<consent id>` for anonymous
//! consents (appended).

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{ReturnValue, Select};
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

    /// One request per 1 MB of the meeting's consents: a strongly consistent Query counting
    /// denials, stopping at the first page that has one.
    async fn has_any_denial(&self, meeting_id: &str) -> StoreResult<bool> {
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("meeting_id = :m")
                .filter_expression("consent_given = :denied")
                .expression_attribute_values(":m", s(meeting_id))
                .expression_attribute_values(":denied", b(false))
                .select(Select::Count)
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error("Query", e))?;
            if out.count() > 0 {
                return Ok(true);
            }
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(false),
            }
        }
    }
}
