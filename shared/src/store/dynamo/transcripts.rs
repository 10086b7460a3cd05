//! Transcripts: transcript items `transcript#<id>` and one marker per recording
//! `recording#<recording id>` (`transcript_id`), written together so a recording never gets two
//! transcripts, even when its message is processed twice at once.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use tracing::instrument;

use super::item::{b, s, ts, Item, Reader};
use super::marker::{put_with_marker, Marker, Put};
use super::{get_item, pk_key, update_item, Expr};
use crate::domain::{S3Location, Transcript, TranscriptStatus};
use crate::store::{StoreError, StoreResult, TranscriptStore};

const ALL_STATUSES: [TranscriptStatus; 3] = [
    TranscriptStatus::Idle,
    TranscriptStatus::Uploaded,
    TranscriptStatus::Error,
];

#[derive(Debug, Clone)]
pub struct DynamoTranscriptStore {
    client: Client,
    table: String,
}

fn transcript_pk(id: &str) -> String {
    format!("transcript#{id}")
}

/// The marker that gives a recording at most one transcript.
fn recording_marker(recording_id: &str) -> Marker {
    Marker {
        pk: format!("recording#{recording_id}"),
        kind: "recording",
        id_attr: "transcript_id",
        name: "transcript marker",
    }
}

fn status_str(status: TranscriptStatus) -> &'static str {
    match status {
        TranscriptStatus::Idle => "idle",
        TranscriptStatus::Uploaded => "uploaded",
        TranscriptStatus::Error => "error",
    }
}

fn transcript_item(t: &Transcript) -> Item {
    let mut item: Item = [
        ("pk", s(transcript_pk(&t.id))),
        ("kind", s("transcript")),
        ("id", s(&t.id)),
        ("recording_id", s(&t.recording_id)),
        ("meeting_id", s(&t.meeting_id)),
        ("room_id", s(&t.room_id)),
        ("status", s(status_str(t.status))),
        ("error_permanent", b(t.error_permanent)),
        ("created_at", ts(t.created_at)),
        ("updated_at", ts(t.updated_at)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if let Some(error) = &t.error {
        item.insert("error".into(), s(error));
    }
    if let Some(audio) = &t.audio {
        item.insert("audio_bucket".into(), s(&audio.bucket));
        item.insert("audio_key".into(), s(&audio.key));
    }
    if let Some(at) = t.pipeline_sent_at {
        item.insert("pipeline_sent_at".into(), ts(at));
    }
    item
}

fn read_transcript(item: &Item) -> StoreResult<Transcript> {
    let r = Reader::new(item, "transcript", "id");
    let status = r.s("status")?;
    let status = ALL_STATUSES
        .into_iter()
        .find(|st| status_str(*st) == status)
        .ok_or_else(|| r.corrupt(format!("unknown transcript status {status:?}")))?;
    let audio = match (r.opt_s("audio_bucket")?, r.opt_s("audio_key")?) {
        (Some(bucket), Some(key)) => Some(S3Location { bucket, key }),
        (None, None) => None,
        _ => return Err(r.corrupt("audio_bucket and audio_key must be set together")),
    };
    Ok(Transcript {
        id: r.s("id")?,
        recording_id: r.s("recording_id")?,
        meeting_id: r.s("meeting_id")?,
        room_id: r.s("room_id")?,
        status,
        error: r.opt_s("error")?,
        error_permanent: r.bool("error_permanent")?,
        audio,
        pipeline_sent_at: r.opt_ts("pipeline_sent_at")?,
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
    })
}

fn not_found(id: &str) -> StoreError {
    StoreError::NotFound {
        entity: "transcript",
        id: id.to_owned(),
    }
}

impl DynamoTranscriptStore {
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }

    async fn transcript_id_for(&self, recording_id: &str) -> StoreResult<Option<String>> {
        recording_marker(recording_id)
            .read(&self.client, &self.table)
            .await
    }

    async fn get_by_id(&self, id: &str) -> StoreResult<Option<Transcript>> {
        get_item(&self.client, &self.table, pk_key(transcript_pk(id)))
            .await?
            .as_ref()
            .map(read_transcript)
            .transpose()
    }
}

#[async_trait]
impl TranscriptStore for DynamoTranscriptStore {
    /// One request when created (a transaction putting the transcript and the recording's
    /// marker, each only if absent); two when the recording has one (plus its GetItem).
    #[instrument(skip(self, transcript), fields(transcript_id = %transcript.id, recording_id = %transcript.recording_id))]
    async fn create_if_absent(&self, transcript: &Transcript) -> StoreResult<(Transcript, bool)> {
        let marker = recording_marker(&transcript.recording_id);
        let put = put_with_marker(
            &self.client,
            &self.table,
            "transcript",
            transcript_pk,
            &transcript.id,
            transcript_item(transcript),
            &marker,
        )
        .await?;
        match put {
            Put::Created => Ok((transcript.clone(), true)),
            Put::Exists(existing) => Ok((read_transcript(&existing)?, false)),
        }
    }

    /// One request (a strongly consistent GetItem).
    /// Two requests (GetItem of the recording's marker, then of the transcript); one when the
    /// recording has none.
    async fn get_by_recording(&self, recording_id: &str) -> StoreResult<Option<Transcript>> {
        match self.transcript_id_for(recording_id).await? {
            Some(id) => self.get_by_id(&id).await,
            None => Ok(None),
        }
    }

    /// One request: an UpdateItem. `error` (message, permanent) is stored when given and
    /// cleared otherwise; `audio` is stored when given and left as it is otherwise.
    #[instrument(skip(self, error, audio), fields(transcript_id = %id, status = status_str(status)))]
    async fn set_status(
        &self,
        id: &str,
        status: TranscriptStatus,
        error: Option<(&str, bool)>,
        audio: Option<&S3Location>,
    ) -> StoreResult<Transcript> {
        let mut placeholders = Expr::default()
            .name("#status", "status")
            .name("#error", "error")
            .value(":status", s(status_str(status)))
            .value(":now", ts(Utc::now()));
        let mut sets = vec![
            "#status = :status",
            "updated_at = :now",
            "error_permanent = :perm",
        ];
        let mut removes = Vec::new();
        match error {
            Some((message, permanent)) => {
                sets.push("#error = :error");
                placeholders = placeholders
                    .value(":error", s(message))
                    .value(":perm", b(permanent));
            }
            None => {
                removes.push("#error");
                placeholders = placeholders.value(":perm", b(false));
            }
        }
        if let Some(audio) = audio {
            sets.push("audio_bucket = :bucket");
            sets.push("audio_key = :key");
            placeholders = placeholders
                .value(":bucket", s(&audio.bucket))
                .value(":key", s(&audio.key));
        }
        let mut update = format!("SET {}", sets.join(", "));
        if !removes.is_empty() {
            update.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        match update_item(
            &self.client,
            &self.table,
            pk_key(transcript_pk(id)),
            &update,
            Some("attribute_exists(pk)"),
            &placeholders,
            ReturnValue::AllNew,
        )
        .await?
        {
            Ok(item) => read_transcript(&item),
            Err(_) => Err(not_found(id)),
        }
    }

    /// One request: an UpdateItem setting `pipeline_sent_at` only if unset.
    #[instrument(skip(self), fields(transcript_id = %id))]
    async fn mark_pipeline_sent(&self, id: &str, at: DateTime<Utc>) -> StoreResult<bool> {
        let placeholders = Expr::default().value(":at", ts(at));
        match update_item(
            &self.client,
            &self.table,
            pk_key(transcript_pk(id)),
            "SET pipeline_sent_at = :at",
            Some("attribute_exists(pk) AND attribute_not_exists(pipeline_sent_at)"),
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

    /// One request (a conditional UpdateItem removing the mark made at `at`).
    async fn release_pipeline_sent(&self, id: &str, at: DateTime<Utc>) -> StoreResult<()> {
        let placeholders = Expr::default().value(":at", ts(at));
        // A failed condition means the mark is not ours (or the item is gone): nothing to undo.
        let _ours = update_item(
            &self.client,
            &self.table,
            pk_key(transcript_pk(id)),
            "REMOVE pipeline_sent_at",
            Some("pipeline_sent_at = :at"),
            &placeholders,
            ReturnValue::None,
        )
        .await?;
        Ok(())
    }
}
