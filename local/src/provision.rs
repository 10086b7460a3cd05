//! Creates the local stack's queues and bucket from the same CloudFormation files the SAM
//! template deploys (`infra/queues.yaml`, `infra/storage.yaml`), so names, redrive and
//! timeouts have one source of truth. Tables come from `shared::provision` (infra/tables.yaml).

use std::collections::HashMap;

use aws_sdk_sqs::types::QueueAttributeName;
use serde_norway::Value;

pub const QUEUES_TEMPLATE: &str = include_str!("../../infra/queues.yaml");

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("infra template {file}: {reason}")]
    Template { file: &'static str, reason: String },
    #[error("creating {what}: {reason}")]
    Aws { what: String, reason: String },
    #[error("{variable}: {reason}")]
    Config { variable: String, reason: String },
}

/// Queues the configuration names (`RECORDINGS_QUEUE_URL`, `PIPELINE_QUEUE_URL`), by URL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfiguredQueues {
    pub recordings: Option<String>,
    pub pipeline: Option<String>,
}

/// The queue name at the end of a queue URL (`http://host/<account>/<name>`).
pub fn queue_name_of(url: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .path_segments()?
        .rfind(|segment| !segment.is_empty())
        .map(str::to_owned)
}

/// Queue URLs of the local stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queues {
    pub recordings: String,
    pub recordings_dlq: String,
    pub pipeline: String,
}

/// A queue as declared in infra/queues.yaml, with CloudFormation intrinsics resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueSpec {
    pub logical_id: String,
    pub name: String,
    pub attributes: Vec<(QueueAttributeName, String)>,
    /// Logical id of the dead-letter queue and the receive count before moving there.
    pub redrive: Option<(String, u32)>,
}

fn template_error(reason: impl Into<String>) -> ProvisionError {
    ProvisionError::Template {
        file: "infra/queues.yaml",
        reason: reason.into(),
    }
}

/// Resolves `!Ref Param` (to the parameter's value or default), `!Sub "${Param}..."` over
/// parameters; anything else is returned as a string where it is a scalar.
fn resolve(value: &Value, params: &HashMap<String, String>) -> Result<String, ProvisionError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Tagged(tagged) => {
            let arg = tagged
                .value
                .as_str()
                .ok_or_else(|| template_error(format!("unsupported {} argument", tagged.tag)))?;
            if tagged.tag == "!Ref" {
                params
                    .get(arg)
                    .cloned()
                    .ok_or_else(|| template_error(format!("!Ref {arg}: no such parameter")))
            } else if tagged.tag == "!Sub" {
                let mut out = arg.to_owned();
                for (k, v) in params {
                    out = out.replace(&format!("${{{k}}}"), v);
                }
                if out.contains("${") {
                    return Err(template_error(format!("!Sub {arg}: unresolved variable")));
                }
                Ok(out)
            } else {
                Err(template_error(format!(
                    "unsupported intrinsic {}",
                    tagged.tag
                )))
            }
        }
        other => Err(template_error(format!("unsupported value {other:?}"))),
    }
}

/// Reads the queue declarations, with `Prefix` set to `prefix` and other parameters at their
/// defaults.
pub fn queue_specs(prefix: &str) -> Result<Vec<QueueSpec>, ProvisionError> {
    let doc: Value =
        serde_norway::from_str(QUEUES_TEMPLATE).map_err(|e| template_error(e.to_string()))?;
    let mut params = HashMap::new();
    if let Some(declared) = doc["Parameters"].as_mapping() {
        for (name, decl) in declared {
            if let (Some(name), Some(default)) = (name.as_str(), decl.get("Default")) {
                params.insert(name.to_owned(), resolve(default, &HashMap::new())?);
            }
        }
    }
    params.insert("Prefix".into(), prefix.to_owned());
    let resources = doc["Resources"]
        .as_mapping()
        .ok_or_else(|| template_error("no Resources"))?;
    let mut specs = Vec::new();
    for (id, resource) in resources {
        if resource["Type"].as_str() != Some("AWS::SQS::Queue") {
            continue;
        }
        let logical_id = id.as_str().unwrap_or_default().to_owned();
        let props = &resource["Properties"];
        let name = resolve(&props["QueueName"], &params)?;
        let mut attributes = Vec::new();
        for (prop, attr) in [
            ("VisibilityTimeout", QueueAttributeName::VisibilityTimeout),
            (
                "MessageRetentionPeriod",
                QueueAttributeName::MessageRetentionPeriod,
            ),
            ("DelaySeconds", QueueAttributeName::DelaySeconds),
        ] {
            if let Some(v) = props.get(prop) {
                attributes.push((attr, resolve(v, &params)?));
            }
        }
        let redrive = match props.get("RedrivePolicy") {
            None => None,
            Some(policy) => {
                let target = match &policy["deadLetterTargetArn"] {
                    Value::Tagged(t) if t.tag == "!GetAtt" => t
                        .value
                        .as_str()
                        .and_then(|s| s.strip_suffix(".Arn"))
                        .map(str::to_owned),
                    _ => None,
                }
                .ok_or_else(|| template_error("deadLetterTargetArn must be !GetAtt <Queue>.Arn"))?;
                let count = resolve(&policy["maxReceiveCount"], &params)?
                    .parse()
                    .map_err(|_| template_error("maxReceiveCount is not a number"))?;
                Some((target, count))
            }
        };
        specs.push(QueueSpec {
            logical_id,
            name,
            attributes,
            redrive,
        });
    }
    Ok(specs)
}

/// The queue declarations with the configured queues' names in place of the prefixed ones: a
/// configured recordings queue `<name>` gets its dead-letter queue as `<name>-dlq`.
pub fn queue_specs_for(
    prefix: &str,
    configured: &ConfiguredQueues,
) -> Result<Vec<QueueSpec>, ProvisionError> {
    let name_of = |variable: &str, url: &str| {
        queue_name_of(url).ok_or_else(|| ProvisionError::Config {
            variable: variable.to_owned(),
            reason: format!("{url} does not end in a queue name"),
        })
    };
    let recordings = configured
        .recordings
        .as_deref()
        .map(|url| name_of("RECORDINGS_QUEUE_URL", url))
        .transpose()?;
    let pipeline = configured
        .pipeline
        .as_deref()
        .map(|url| name_of("PIPELINE_QUEUE_URL", url))
        .transpose()?;
    let mut specs = queue_specs(prefix)?;
    for spec in &mut specs {
        let name = match spec.logical_id.as_str() {
            "RecordingsQueue" => recordings.clone(),
            "RecordingsDeadLetterQueue" => recordings.as_ref().map(|r| format!("{r}-dlq")),
            "PipelineQueue" => pipeline.clone(),
            _ => None,
        };
        if let Some(name) = name {
            spec.name = name;
        }
    }
    Ok(specs)
}

/// Creates the queues that do not exist yet (as declared; existing ones are used as they are)
/// and sets the redrive policies; returns their URLs, the configured ones exactly as
/// configured.
pub async fn ensure_queues(
    sqs: &aws_sdk_sqs::Client,
    prefix: &str,
    configured: &ConfiguredQueues,
) -> Result<Queues, ProvisionError> {
    let specs = queue_specs_for(prefix, configured)?;
    let aws = |what: &str, e: &dyn std::fmt::Display| ProvisionError::Aws {
        what: what.to_owned(),
        reason: e.to_string(),
    };
    let mut urls = HashMap::new();
    let mut arns = HashMap::new();
    for spec in &specs {
        let existing = sqs
            .get_queue_url()
            .queue_name(&spec.name)
            .send()
            .await
            .ok()
            .and_then(|out| out.queue_url);
        let url = match existing {
            Some(url) => url,
            None => {
                let mut req = sqs.create_queue().queue_name(&spec.name);
                for (k, v) in &spec.attributes {
                    req = req.attributes(k.clone(), v);
                }
                let out = req
                    .send()
                    .await
                    .map_err(|e| aws(&spec.name, &aws_sdk_sqs::error::DisplayErrorContext(e)))?;
                out.queue_url().unwrap_or_default().to_owned()
            }
        };
        let url = match spec.logical_id.as_str() {
            "RecordingsQueue" => configured.recordings.clone().unwrap_or(url),
            "PipelineQueue" => configured.pipeline.clone().unwrap_or(url),
            _ => url,
        };
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| aws(&spec.name, &aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        let arn = attrs
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .cloned()
            .unwrap_or_default();
        urls.insert(spec.logical_id.clone(), url);
        arns.insert(spec.logical_id.clone(), arn);
    }
    for spec in &specs {
        if let Some((target, count)) = &spec.redrive {
            let arn = arns
                .get(target)
                .ok_or_else(|| template_error(format!("redrive target {target} is not a queue")))?;
            let policy =
                serde_json::json!({ "deadLetterTargetArn": arn, "maxReceiveCount": count });
            sqs.set_queue_attributes()
                .queue_url(&urls[&spec.logical_id])
                .attributes(QueueAttributeName::RedrivePolicy, policy.to_string())
                .send()
                .await
                .map_err(|e| aws(&spec.name, &aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        }
    }
    let get = |id: &str| {
        urls.get(id)
            .cloned()
            .ok_or_else(|| template_error(format!("queue {id} is not declared")))
    };
    Ok(Queues {
        recordings: get("RecordingsQueue")?,
        recordings_dlq: get("RecordingsDeadLetterQueue")?,
        pipeline: get("PipelineQueue")?,
    })
}

/// Creates the recordings bucket if it does not exist, with the encryption infra/storage.yaml
/// declares.
pub async fn ensure_bucket(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<bool, ProvisionError> {
    use aws_sdk_s3::types::{
        ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
        ServerSideEncryptionRule,
    };
    if s3.head_bucket().bucket(bucket).send().await.is_ok() {
        return Ok(false);
    }
    let aws = |e: &dyn std::fmt::Display| ProvisionError::Aws {
        what: format!("bucket {bucket}"),
        reason: e.to_string(),
    };
    s3.create_bucket()
        .bucket(bucket)
        .send()
        .await
        .map_err(|e| aws(&aws_sdk_s3::error::DisplayErrorContext(e)))?;
    let rule = ServerSideEncryptionRule::builder()
        .apply_server_side_encryption_by_default(
            ServerSideEncryptionByDefault::builder()
                .sse_algorithm(ServerSideEncryption::Aes256)
                .build()
                .map_err(|e| aws(&e))?,
        )
        .build();
    s3.put_bucket_encryption()
        .bucket(bucket)
        .server_side_encryption_configuration(
            ServerSideEncryptionConfiguration::builder()
                .rules(rule)
                .build()
                .map_err(|e| aws(&e))?,
        )
        .send()
        .await
        .map_err(|e| aws(&aws_sdk_s3::error::DisplayErrorContext(e)))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_specs_follow_the_template() {
        let specs = queue_specs("t1").unwrap();
        let by_id: HashMap<_, _> = specs.iter().map(|s| (s.logical_id.as_str(), s)).collect();
        let rec = by_id["RecordingsQueue"];
        assert_eq!(rec.name, "t1-recordings");
        assert!(rec
            .attributes
            .contains(&(QueueAttributeName::VisibilityTimeout, "5400".into())));
        assert_eq!(rec.redrive, Some(("RecordingsDeadLetterQueue".into(), 5)));
        assert_eq!(by_id["RecordingsDeadLetterQueue"].name, "t1-recordings-dlq");
        assert_eq!(by_id["PipelineQueue"].name, "t1-pipeline");
    }

    #[test]
    fn configured_queues_replace_the_prefixed_names_and_name_the_dead_letter_queue() {
        let configured = ConfiguredQueues {
            recordings: Some("http://localhost:5000/123456789012/mine".into()),
            pipeline: Some("http://localhost:5000/123456789012/to-pipeline".into()),
        };
        let specs = queue_specs_for("t1", &configured).unwrap();
        let by_id: HashMap<_, _> = specs.iter().map(|s| (s.logical_id.as_str(), s)).collect();
        assert_eq!(by_id["RecordingsQueue"].name, "mine");
        assert_eq!(by_id["RecordingsDeadLetterQueue"].name, "mine-dlq");
        assert_eq!(by_id["PipelineQueue"].name, "to-pipeline");
        // The declared attributes and redrive still apply.
        assert_eq!(
            by_id["RecordingsQueue"].redrive,
            Some(("RecordingsDeadLetterQueue".into(), 5))
        );
        let only_pipeline = ConfiguredQueues {
            recordings: None,
            pipeline: configured.pipeline.clone(),
        };
        let specs = queue_specs_for("t1", &only_pipeline).unwrap();
        assert!(specs.iter().any(|s| s.name == "t1-recordings"));
        assert!(specs.iter().any(|s| s.name == "t1-recordings-dlq"));
    }

    #[test]
    fn a_queue_url_without_a_name_is_a_configuration_error() {
        let configured = ConfiguredQueues {
            recordings: Some("http://localhost:5000/".into()),
            pipeline: None,
        };
        let err = queue_specs_for("t1", &configured).unwrap_err();
        assert!(err.to_string().contains("RECORDINGS_QUEUE_URL"), "{err}");
    }
}
