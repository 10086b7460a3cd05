//! Creates the DynamoDB tables declared in `infra/tables.yaml` (the same file the SAM template
//! nests), so the local stack and the tests run on exactly the deployed key schemas, indexes and
//! TTL settings.
//!
//! Only the properties that shape data access are read: `AttributeDefinitions`, `KeySchema`,
//! `GlobalSecondaryIndexes` (with `Projection`), `BillingMode` and `TimeToLiveSpecification`.
//! Encryption and point-in-time recovery are AWS-side settings with no local effect.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TableStatus, TimeToLiveSpecification, TimeToLiveStatus,
};
use aws_sdk_dynamodb::Client;
use serde_norway::Value;
use tracing::info;

use crate::config::TableNames;

/// The table definitions, compiled in so a binary needs no file at run time.
pub const TABLES_TEMPLATE: &str = include_str!("../../infra/tables.yaml");

/// How long a new table may take to become ACTIVE (real DynamoDB: seconds; moto: at once).
const ACTIVE_TIMEOUT: Duration = Duration::from_secs(120);
const ACTIVE_POLL: Duration = Duration::from_millis(200);

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("infra/tables.yaml: {0}")]
    Template(String),
    #[error("infra/tables.yaml declares table {0}, which TableNames does not know")]
    UnknownTable(String),
    #[error("table {table}: {operation} failed: {message}")]
    Aws {
        table: String,
        operation: &'static str,
        message: String,
    },
    #[error("table {table} exists with a different schema: {difference}")]
    Mismatch { table: String, difference: String },
    #[error("table {table} did not become ACTIVE within {waited:?}")]
    NotActive { table: String, waited: Duration },
}

/// One table as declared in the template.
#[derive(Debug, Clone, PartialEq)]
pub struct TableSpec {
    pub logical_id: String,
    pub attribute_definitions: Vec<AttributeDefinition>,
    pub key_schema: Vec<KeySchemaElement>,
    pub global_secondary_indexes: Vec<GlobalSecondaryIndex>,
    pub billing_mode: BillingMode,
    /// The TTL attribute when `TimeToLiveSpecification.Enabled` is true.
    pub ttl_attribute: Option<String>,
}

/// The name `names` gives the table with this logical id.
pub fn table_name<'a>(names: &'a TableNames, logical_id: &str) -> Option<&'a str> {
    Some(match logical_id {
        "RoomsTable" => &names.rooms,
        "MeetingsTable" => &names.meetings,
        "ParticipantSessionsTable" => &names.participant_sessions,
        "RecordingsTable" => &names.recordings,
        "TranscriptsTable" => &names.transcripts,
        "MeetingConsentsTable" => &names.meeting_consents,
        "WebhookEventsTable" => &names.webhook_events,
        "ConfigTable" => &names.config,
        _ => return None,
    })
}

fn template_error(msg: impl Into<String>) -> ProvisionError {
    ProvisionError::Template(msg.into())
}

fn field<'a>(v: &'a Value, key: &str, at: &str) -> Result<&'a Value, ProvisionError> {
    v.get(key)
        .ok_or_else(|| template_error(format!("{at}: {key} is missing")))
}

fn string<'a>(v: &'a Value, key: &str, at: &str) -> Result<&'a str, ProvisionError> {
    field(v, key, at)?
        .as_str()
        .ok_or_else(|| template_error(format!("{at}: {key} must be a plain string")))
}

fn list<'a>(v: &'a Value, key: &str, at: &str) -> Result<&'a [Value], ProvisionError> {
    field(v, key, at)?
        .as_sequence()
        .map(Vec::as_slice)
        .ok_or_else(|| template_error(format!("{at}: {key} must be a list")))
}

fn key_schema(v: &Value, at: &str) -> Result<Vec<KeySchemaElement>, ProvisionError> {
    list(v, "KeySchema", at)?
        .iter()
        .map(|k| {
            let key_type = match string(k, "KeyType", at)? {
                "HASH" => KeyType::Hash,
                "RANGE" => KeyType::Range,
                other => return Err(template_error(format!("{at}: KeyType {other:?}"))),
            };
            KeySchemaElement::builder()
                .attribute_name(string(k, "AttributeName", at)?)
                .key_type(key_type)
                .build()
                .map_err(|e| template_error(format!("{at}: {e}")))
        })
        .collect()
}

/// Reads every `AWS::DynamoDB::Table` of a template. CloudFormation short tags (`!Sub`,
/// `!Ref`) parse as tagged values and are only found in properties this does not read.
pub fn table_specs(template: &str) -> Result<Vec<TableSpec>, ProvisionError> {
    let doc: Value =
        serde_norway::from_str(template).map_err(|e| template_error(format!("not YAML: {e}")))?;
    let resources = field(&doc, "Resources", "template")?
        .as_mapping()
        .ok_or_else(|| template_error("Resources must be a mapping"))?;
    let mut specs = Vec::new();
    for (id, resource) in resources {
        let Some(logical_id) = id.as_str() else {
            return Err(template_error("resource ids must be strings"));
        };
        if resource.get("Type").and_then(Value::as_str) != Some("AWS::DynamoDB::Table") {
            continue;
        }
        let props = field(resource, "Properties", logical_id)?;
        let attribute_definitions = list(props, "AttributeDefinitions", logical_id)?
            .iter()
            .map(|a| {
                let ty = match string(a, "AttributeType", logical_id)? {
                    "S" => ScalarAttributeType::S,
                    "N" => ScalarAttributeType::N,
                    "B" => ScalarAttributeType::B,
                    other => {
                        return Err(template_error(format!(
                            "{logical_id}: AttributeType {other:?}"
                        )))
                    }
                };
                AttributeDefinition::builder()
                    .attribute_name(string(a, "AttributeName", logical_id)?)
                    .attribute_type(ty)
                    .build()
                    .map_err(|e| template_error(format!("{logical_id}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut global_secondary_indexes = Vec::new();
        if props.get("GlobalSecondaryIndexes").is_some() {
            for gsi in list(props, "GlobalSecondaryIndexes", logical_id)? {
                let name = string(gsi, "IndexName", logical_id)?;
                let at = format!("{logical_id}.{name}");
                let projection = field(gsi, "Projection", &at)?;
                let projection_type = match string(projection, "ProjectionType", &at)? {
                    "ALL" => ProjectionType::All,
                    "KEYS_ONLY" => ProjectionType::KeysOnly,
                    "INCLUDE" => ProjectionType::Include,
                    other => return Err(template_error(format!("{at}: ProjectionType {other:?}"))),
                };
                let non_key = match projection.get("NonKeyAttributes") {
                    None => None,
                    Some(v) => Some(
                        v.as_sequence()
                            .ok_or_else(|| template_error(format!("{at}: NonKeyAttributes")))?
                            .iter()
                            .map(|a| {
                                a.as_str().map(str::to_owned).ok_or_else(|| {
                                    template_error(format!("{at}: NonKeyAttributes"))
                                })
                            })
                            .collect::<Result<Vec<_>, _>>()?,
                    ),
                };
                let index = GlobalSecondaryIndex::builder()
                    .index_name(name)
                    .set_key_schema(Some(key_schema(gsi, &at)?))
                    .projection(
                        Projection::builder()
                            .projection_type(projection_type)
                            .set_non_key_attributes(non_key)
                            .build(),
                    )
                    .build()
                    .map_err(|e| template_error(format!("{at}: {e}")))?;
                global_secondary_indexes.push(index);
            }
        }
        let billing_mode = match props.get("BillingMode").and_then(Value::as_str) {
            Some("PAY_PER_REQUEST") => BillingMode::PayPerRequest,
            other => {
                return Err(template_error(format!(
                    "{logical_id}: BillingMode {other:?}: only PAY_PER_REQUEST is supported"
                )))
            }
        };
        let ttl_attribute = match props.get("TimeToLiveSpecification") {
            None => None,
            Some(ttl) => {
                let at = format!("{logical_id}.TimeToLiveSpecification");
                let enabled = field(ttl, "Enabled", &at)?
                    .as_bool()
                    .ok_or_else(|| template_error(format!("{at}: Enabled must be a boolean")))?;
                enabled
                    .then(|| string(ttl, "AttributeName", &at).map(str::to_owned))
                    .transpose()?
            }
        };
        specs.push(TableSpec {
            logical_id: logical_id.to_owned(),
            attribute_definitions,
            key_schema: key_schema(props, logical_id)?,
            global_secondary_indexes,
            billing_mode,
            ttl_attribute,
        });
    }
    Ok(specs)
}

fn aws_error<E: ProvideErrorMetadata + std::error::Error + 'static>(
    table: &str,
    operation: &'static str,
    err: E,
) -> ProvisionError {
    ProvisionError::Aws {
        table: table.to_owned(),
        operation,
        message: DisplayErrorContext(&err).to_string(),
    }
}

/// Creates the tables of [`TABLES_TEMPLATE`] that do not exist yet under the names in `names`,
/// waits until they are ACTIVE and enables their TTL. Existing tables are left alone, but one
/// whose key schema or index names differ from the template is an error (a stale local table
/// would otherwise fail later in obscure ways). Returns the names of the tables created.
pub async fn ensure_tables(
    client: &Client,
    names: &TableNames,
) -> Result<Vec<String>, ProvisionError> {
    let specs = table_specs(TABLES_TEMPLATE)?;
    let mut jobs = Vec::new();
    for spec in &specs {
        let name = table_name(names, &spec.logical_id)
            .ok_or_else(|| ProvisionError::UnknownTable(spec.logical_id.clone()))?;
        jobs.push(ensure_table(client, name, spec));
    }
    let created = futures::future::try_join_all(jobs).await?;
    Ok(created.into_iter().flatten().collect())
}

/// Ensures one table; `Some(name)` when it was created now.
async fn ensure_table(
    client: &Client,
    name: &str,
    spec: &TableSpec,
) -> Result<Option<String>, ProvisionError> {
    let result = client
        .create_table()
        .table_name(name)
        .set_attribute_definitions(Some(spec.attribute_definitions.clone()))
        .set_key_schema(Some(spec.key_schema.clone()))
        .set_global_secondary_indexes(
            (!spec.global_secondary_indexes.is_empty())
                .then(|| spec.global_secondary_indexes.clone()),
        )
        .billing_mode(spec.billing_mode.clone())
        .send()
        .await;
    let created = match result {
        Ok(_) => true,
        Err(e) if e.code() == Some("ResourceInUseException") => false,
        Err(e) => return Err(aws_error(name, "CreateTable", e)),
    };
    wait_active_and_check(client, name, spec).await?;
    if let Some(attribute) = &spec.ttl_attribute {
        enable_ttl(client, name, attribute).await?;
    }
    if created {
        info!(table = name, "created DynamoDB table");
    }
    Ok(created.then(|| name.to_owned()))
}

async fn wait_active_and_check(
    client: &Client,
    name: &str,
    spec: &TableSpec,
) -> Result<(), ProvisionError> {
    let started = tokio::time::Instant::now();
    loop {
        let out = client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(|e| aws_error(name, "DescribeTable", e))?;
        let table = out.table().ok_or_else(|| ProvisionError::Aws {
            table: name.to_owned(),
            operation: "DescribeTable",
            message: "no table description in the answer".into(),
        })?;
        check_schema(name, spec, table)?;
        if table.table_status() == Some(&TableStatus::Active) {
            return Ok(());
        }
        if started.elapsed() > ACTIVE_TIMEOUT {
            return Err(ProvisionError::NotActive {
                table: name.to_owned(),
                waited: ACTIVE_TIMEOUT,
            });
        }
        tokio::time::sleep(ACTIVE_POLL).await;
    }
}

fn check_schema(
    name: &str,
    spec: &TableSpec,
    table: &aws_sdk_dynamodb::types::TableDescription,
) -> Result<(), ProvisionError> {
    let keys = |k: &[KeySchemaElement]| -> BTreeMap<String, String> {
        k.iter()
            .map(|e| {
                (
                    e.attribute_name().to_owned(),
                    e.key_type().as_str().to_owned(),
                )
            })
            .collect()
    };
    let mismatch = |difference: String| ProvisionError::Mismatch {
        table: name.to_owned(),
        difference,
    };
    if keys(table.key_schema()) != keys(&spec.key_schema) {
        return Err(mismatch(format!(
            "key schema {:?}, template {:?}",
            keys(table.key_schema()),
            keys(&spec.key_schema)
        )));
    }
    let existing: BTreeMap<&str, BTreeMap<String, String>> = table
        .global_secondary_indexes()
        .iter()
        .filter_map(|g| Some((g.index_name()?, keys(g.key_schema()))))
        .collect();
    let wanted: BTreeMap<&str, BTreeMap<String, String>> = spec
        .global_secondary_indexes
        .iter()
        .map(|g| (g.index_name(), keys(g.key_schema())))
        .collect();
    if existing != wanted {
        return Err(mismatch(format!(
            "indexes {existing:?}, template {wanted:?}"
        )));
    }
    Ok(())
}

async fn enable_ttl(client: &Client, name: &str, attribute: &str) -> Result<(), ProvisionError> {
    let out = client
        .describe_time_to_live()
        .table_name(name)
        .send()
        .await
        .map_err(|e| aws_error(name, "DescribeTimeToLive", e))?;
    let status = out
        .time_to_live_description()
        .and_then(|d| d.time_to_live_status());
    if matches!(
        status,
        Some(TimeToLiveStatus::Enabled) | Some(TimeToLiveStatus::Enabling)
    ) {
        return Ok(());
    }
    let spec = TimeToLiveSpecification::builder()
        .attribute_name(attribute)
        .enabled(true)
        .build()
        .map_err(|e| template_error(format!("{name}: {e}")))?;
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(spec)
        .send()
        .await
        .map_err(|e| aws_error(name, "UpdateTimeToLive", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_declares_every_table_that_table_names_knows() {
        let specs = table_specs(TABLES_TEMPLATE).unwrap();
        let names = TableNames::with_prefix("p");
        let mut ids: Vec<&str> = specs.iter().map(|s| s.logical_id.as_str()).collect();
        ids.sort();
        assert_eq!(
            ids,
            [
                "ConfigTable",
                "MeetingConsentsTable",
                "MeetingsTable",
                "ParticipantSessionsTable",
                "RecordingsTable",
                "RoomsTable",
                "TranscriptsTable",
                "WebhookEventsTable"
            ]
        );
        for spec in &specs {
            assert!(table_name(&names, &spec.logical_id).is_some());
            // Every key attribute (table and index) is defined, and nothing else is:
            // CloudFormation rejects both mistakes only at deploy time.
            let mut key_attrs: Vec<&str> = spec
                .key_schema
                .iter()
                .chain(
                    spec.global_secondary_indexes
                        .iter()
                        .flat_map(|g| g.key_schema()),
                )
                .map(|k| k.attribute_name())
                .collect();
            key_attrs.sort();
            key_attrs.dedup();
            let mut defined: Vec<&str> = spec
                .attribute_definitions
                .iter()
                .map(|a| a.attribute_name())
                .collect();
            defined.sort();
            assert_eq!(key_attrs, defined, "{}", spec.logical_id);
        }
        let events = specs
            .iter()
            .find(|s| s.logical_id == "WebhookEventsTable")
            .unwrap();
        assert_eq!(events.ttl_attribute.as_deref(), Some("expires_at"));
        // TableNames::all lists every declared table once.
        let mut all: Vec<&str> = names.all().to_vec();
        all.sort();
        let mut declared: Vec<&str> = specs
            .iter()
            .filter_map(|s| table_name(&names, &s.logical_id))
            .collect();
        declared.sort();
        assert_eq!(all, declared);
    }

    #[test]
    fn unsupported_billing_mode_is_a_clear_template_error() {
        let template = "Resources:\n  T:\n    Type: AWS::DynamoDB::Table\n    Properties:\n      \
                        TableName: !Sub \"${Prefix}-t\"\n      BillingMode: PROVISIONED\n      \
                        AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]\n      \
                        KeySchema: [{AttributeName: pk, KeyType: HASH}]\n";
        let err = table_specs(template).unwrap_err().to_string();
        assert!(
            err.contains("T: BillingMode") && err.contains("PAY_PER_REQUEST"),
            "{err}"
        );
    }
}
