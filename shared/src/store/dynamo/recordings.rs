//! Recordings: recording items `recording#<id>` and source markers `source#<source key>`
//! (`recording_id`), written together so that one source maps to one recording however often
//! its message is delivered. Only recording items carry `status` (sparse `status-created-index`).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use tracing::instrument;

use super::item::{s, string_attr, ts, Item, Reader};
use super::marker::{put_with_marker, Marker, Put};
use super::{get_item, pk_key, sdk_error, update_item, Expr};
use crate::domain::{Platform, Recording, RecordingSource, RecordingStatus};
use crate::store::{conflict, RecordingStore, StoreError, StoreResult};

const STATUS_INDEX: &str = "status-created-index";
const ALL_STATUSES: [RecordingStatus; 5] = [
    RecordingStatus::Pending,
    RecordingStatus::Processing,
    RecordingStatus::Completed,
    RecordingStatus::Failed,
    RecordingStatus::Stored,
];

#[derive(Debug, Clone)]
pub struct DynamoRecordingStore {
    client: Client,
    table: String,
}

fn recording_pk(id: &str) -> String {
    format!("recording#{id}")
}

/// The marker that makes a recording source unique.
fn source_marker(source: &RecordingSource) -> Marker {
    Marker {
        pk: format!("source#{}", source.source_key()),
        kind: "source",
        id_attr: "recording_id",
        name: "recording source marker",
    }
}

pub(crate) fn status_str(status: RecordingStatus) -> &'static str {
    match status {
        RecordingStatus::Pending => "pending",
        RecordingStatus::Processing => "processing",
        RecordingStatus::Completed => "completed",
        RecordingStatus::Failed => "failed",
        RecordingStatus::Stored => "stored",
    }
}

fn parse_status(r: &Reader<'_>, name: &str) -> StoreResult<RecordingStatus> {
    let v = r.s(name)?;
    ALL_STATUSES
        .into_iter()
        .find(|st| status_str(*st) == v)
        .ok_or_else(|| r.corrupt(format!("unknown recording status {v:?}")))
}

fn recording_item(rec: &Recording) -> Item {
    let mut item: Item = [
        ("pk", s(recording_pk(&rec.id))),
        ("kind", s("recording")),
        ("id", s(&rec.id)),
        ("meeting_id", s(&rec.meeting_id)),
        ("source_key", s(rec.source.source_key())),
        ("status", s(status_str(rec.status))),
        ("created_at", ts(rec.created_at)),
        ("updated_at", ts(rec.updated_at)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    match &rec.source {
        RecordingSource::S3 { bucket, key } => {
            item.insert("source_type".into(), s("s3"));
            item.insert("source_bucket".into(), s(bucket));
            item.insert("source_object_key".into(), s(key));
        }
        RecordingSource::PlatformRecording {
            platform,
            recording_id,
        } => {
            item.insert("source_type".into(), s("platform_recording"));
            item.insert("source_platform".into(), s(platform.as_str()));
            item.insert("source_recording_id".into(), s(recording_id));
        }
        RecordingSource::PlatformTracks {
            platform,
            recording_id,
        } => {
            item.insert("source_type".into(), s("platform_tracks"));
            item.insert("source_platform".into(), s(platform.as_str()));
            item.insert("source_recording_id".into(), s(recording_id));
        }
    }
    if let Some(error) = &rec.error {
        item.insert("error".into(), s(error));
    }
    item
}

fn read_recording(item: &Item) -> StoreResult<Recording> {
    let r = Reader::new(item, "recording", "id");
    let source = match r.s("source_type")?.as_str() {
        "s3" => RecordingSource::S3 {
            bucket: r.s("source_bucket")?,
            key: r.s("source_object_key")?,
        },
        "platform_recording" => RecordingSource::PlatformRecording {
            platform: r.parse::<Platform>("source_platform")?,
            recording_id: r.s("source_recording_id")?,
        },
        "platform_tracks" => RecordingSource::PlatformTracks {
            platform: r.parse::<Platform>("source_platform")?,
            recording_id: r.s("source_recording_id")?,
        },
        other => return Err(r.corrupt(format!("unknown source_type {other:?}"))),
    };
    Ok(Recording {
        id: r.s("id")?,
        meeting_id: r.s("meeting_id")?,
        source,
        status: parse_status(&r, "status")?,
        error: r.opt_s("error")?,
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
    })
}

fn not_found(id: &str) -> StoreError {
    StoreError::NotFound {
        entity: "recording",
        id: id.to_owned(),
    }
}

impl DynamoRecordingStore {
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }

    async fn recording_id_for(&self, source: &RecordingSource) -> StoreResult<Option<String>> {
        source_marker(source).read(&self.client, &self.table).await
    }
}

#[async_trait]
impl RecordingStore for DynamoRecordingStore {
    /// One request when created (a transaction putting the recording and its source marker,
    /// each only if absent); two when the source is known (plus a GetItem of the existing one).
    #[instrument(skip(self, recording), fields(recording_id = %recording.id, source = %recording.source.source_key()))]
    async fn create_if_absent(&self, recording: &Recording) -> StoreResult<(Recording, bool)> {
        let marker = source_marker(&recording.source);
        let put = put_with_marker(
            &self.client,
            &self.table,
            "recording",
            recording_pk,
            &recording.id,
            recording_item(recording),
            &marker,
        )
        .await?;
        match put {
            Put::Created => Ok((recording.clone(), true)),
            Put::Exists(existing) => Ok((read_recording(&existing)?, false)),
        }
    }

    /// One request (a strongly consistent GetItem).
    async fn get(&self, id: &str) -> StoreResult<Option<Recording>> {
        get_item(&self.client, &self.table, pk_key(recording_pk(id)))
            .await?
            .as_ref()
            .map(read_recording)
            .transpose()
    }

    /// Two requests (GetItem of the source marker, then of the recording); one when the
    /// source is unknown.
    async fn get_by_source(&self, source: &RecordingSource) -> StoreResult<Option<Recording>> {
        match self.recording_id_for(source).await? {
            Some(id) => self.get(&id).await,
            None => Ok(None),
        }
    }

    /// One request: an UpdateItem conditional on the current status being one from which
    /// `status` is legal (`RecordingStatus::can_become`); the refusal names the current status.
    #[instrument(skip(self), fields(recording_id = %id, status = status_str(status)))]
    async fn set_status(
        &self,
        id: &str,
        status: RecordingStatus,
        error: Option<&str>,
    ) -> StoreResult<Recording> {
        let from: Vec<RecordingStatus> = ALL_STATUSES
            .into_iter()
            .filter(|p| p.can_become(status))
            .collect();
        let illegal = |current: &str| StoreError::Conflict {
            entity: "recording",
            id: id.to_owned(),
            condition: format!(
                "{}: {current} -> {}",
                conflict::ILLEGAL_TRANSITION,
                status_str(status)
            ),
        };
        if from.is_empty() {
            return Err(illegal("any status"));
        }
        let mut placeholders = Expr::default()
            .name("#status", "status")
            .name("#error", "error")
            .value(":status", s(status_str(status)))
            .value(":now", ts(Utc::now()));
        let mut froms = Vec::new();
        for (i, p) in from.iter().enumerate() {
            let ph = format!(":from{i}");
            placeholders = placeholders.value(&ph, s(status_str(*p)));
            froms.push(ph);
        }
        let condition = format!("attribute_exists(pk) AND #status IN ({})", froms.join(", "));
        // The error describes the failure being recorded; any other status clears it.
        let update = match (status, error) {
            (RecordingStatus::Failed, Some(e)) => {
                placeholders = placeholders.value(":error", s(e));
                "SET #status = :status, updated_at = :now, #error = :error"
            }
            _ => "SET #status = :status, updated_at = :now REMOVE #error",
        };
        match update_item(
            &self.client,
            &self.table,
            pk_key(recording_pk(id)),
            update,
            Some(&condition),
            &placeholders,
            ReturnValue::AllNew,
        )
        .await?
        {
            Ok(item) => read_recording(&item),
            Err(None) => Err(not_found(id)),
            Err(Some(old)) => Err(illegal(
                string_attr(Some(&old), "status").unwrap_or("unknown"),
            )),
        }
    }

    /// One request per 1 MB of results: a Query of the sparse `status-created-index`, oldest
    /// first, limited to `limit` (eventually consistent). No request when `limit` is 0.
    async fn list_by_status(
        &self,
        status: RecordingStatus,
        limit: u32,
    ) -> StoreResult<Vec<Recording>> {
        let mut recordings = Vec::new();
        let mut start: Option<Item> = None;
        while recordings.len() < limit as usize {
            let remaining = (limit as usize - recordings.len()) as i32;
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(STATUS_INDEX)
                .key_condition_expression("#status = :s")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":s", s(status_str(status)))
                .scan_index_forward(true)
                .limit(remaining)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error("Query", e))?;
            for item in out.items() {
                recordings.push(read_recording(item)?);
            }
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        recordings.truncate(limit as usize);
        Ok(recordings)
    }

    /// One request: an UpdateItem setting `last_requeued_at` on condition that it is absent or
    /// at least `cooldown` before `now`.
    #[instrument(skip(self), fields(recording_id = %id))]
    async fn claim_requeue(
        &self,
        id: &str,
        now: DateTime<Utc>,
        cooldown: Duration,
    ) -> StoreResult<bool> {
        let threshold = chrono::Duration::from_std(cooldown)
            .ok()
            .and_then(|c| now.checked_sub_signed(c))
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let placeholders = Expr::default()
            .value(":now", ts(now))
            .value(":threshold", ts(threshold));
        match update_item(
            &self.client,
            &self.table,
            pk_key(recording_pk(id)),
            "SET last_requeued_at = :now",
            Some(
                "attribute_exists(pk) AND \
                 (attribute_not_exists(last_requeued_at) OR last_requeued_at <= :threshold)",
            ),
            &placeholders,
            ReturnValue::None,
        )
        .await?
        {
            Ok(_) => Ok(true),
            Err(None) => Err(not_found(id)),
            Err(Some(_)) => Ok(false),
        }
    }
}
