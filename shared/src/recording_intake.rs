//! A finished Daily recording becomes a recording record and one job on the recordings queue.
//!
//! One path for both ways we learn of a recording: the Daily webhook's
//! `recording.ready-to-download`, and the meeting sweeper's reconciliation with Daily's recording
//! list (for events Daily dropped). The record is created if absent under the recording's
//! identity (`daily:<id>`, [`RecordingStore::create_if_absent`] with its unique marker), so a
//! webhook arriving after the sweep, before it, or twice ends in one recording; the processor
//! then sends at most one pipeline message per recording.

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use crate::domain::{Meeting, Platform, Recording, RecordingSource, RecordingStatus, S3Location};
use crate::messages::{JobSource, RecordingJob};
use crate::queue::{QueueError, RecordingQueue};
use crate::store::{RecordingStore, StoreError};

/// What we know of where a finished recording's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// The seed format's `download_url`.
    Url(String),
    /// Daily's `s3_key`, an object in the Daily bucket (`AWS_DAILY_S3_BUCKET`).
    S3Key(String),
    /// Nothing: the processor asks Daily's access-link API.
    Unknown,
    /// A `raw-tracks` recording: the keys of its audio tracks in the Daily bucket, or `None`
    /// when the event did not list them (the processor reads `GET /recordings/:id`).
    Tracks(Option<Vec<String>>),
}

/// A finished Daily recording of one of our meetings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// Daily's recording id.
    pub recording_id: String,
    pub content: Content,
}

impl Finished {
    /// The recording's identity and kind as we store it.
    pub fn source(&self) -> RecordingSource {
        let recording_id = self.recording_id.clone();
        match self.content {
            Content::Tracks(_) => RecordingSource::PlatformTracks {
                platform: Platform::Daily,
                recording_id,
            },
            _ => RecordingSource::PlatformRecording {
                platform: Platform::Daily,
                recording_id,
            },
        }
    }

    /// The processor's job source; `daily_bucket` is where Daily's keys live.
    pub fn job_source(&self, daily_bucket: Option<&str>) -> JobSource {
        let id = || self.recording_id.clone();
        match (&self.content, daily_bucket) {
            (Content::Url(url), _) => JobSource::Url(url.clone()),
            (Content::S3Key(key), Some(bucket)) => JobSource::S3(S3Location {
                bucket: bucket.to_owned(),
                key: key.clone(),
            }),
            (Content::S3Key(_), None) => {
                warn!(recording_id = %self.recording_id, "recording has an s3_key but AWS_DAILY_S3_BUCKET is not set; the processor will ask Daily for a link");
                JobSource::DailyRecording(id())
            }
            (Content::Unknown, _) => JobSource::DailyRecording(id()),
            (Content::Tracks(Some(keys)), Some(bucket)) if !keys.is_empty() => JobSource::Tracks(
                keys.iter()
                    .map(|key| S3Location {
                        bucket: bucket.to_owned(),
                        key: key.clone(),
                    })
                    .collect(),
            ),
            // Without the bucket the keys name nothing we can read; the processor says so.
            (Content::Tracks(_), _) => JobSource::DailyTracks(id()),
        }
    }
}

/// Whether a recording we already had is queued again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    /// The webhook: Daily's retry after a failed send must queue it again, while the recording
    /// is pending or failed (a duplicate job is harmless: the processor sends one pipeline
    /// message per recording).
    QueueAgain,
    /// The sweeper: a recording we have is the webhook's or the requeue step's business.
    Skip,
}

/// What [`accept`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// Our recording id.
    pub recording_id: String,
    /// The record was created now.
    pub created: bool,
    /// A job was put on the recordings queue.
    pub queued: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// Records `finished` for `meeting` (if absent) and queues its job: always when created now;
/// for a recording we had, per `known`, and only while it is pending or failed (never while
/// it is processed or once it is done).
/// DynamoDB: one transaction when new, two requests when known; SQS: one send when queued.
pub async fn accept(
    recordings: &dyn RecordingStore,
    queue: &dyn RecordingQueue,
    daily_bucket: Option<&str>,
    meeting: &Meeting,
    finished: &Finished,
    known: Known,
    now: DateTime<Utc>,
) -> Result<Accepted, IntakeError> {
    let (stored, created) = recordings
        .create_if_absent(&Recording {
            id: uuid::Uuid::new_v4().to_string(),
            meeting_id: meeting.id.clone(),
            source: finished.source(),
            status: RecordingStatus::Pending,
            error: None,
            created_at: now,
            updated_at: now,
        })
        .await?;
    // Pending: its job may have been lost with a failed send; failed: worth another try. A
    // recording being processed, or done, has its job already.
    let again = matches!(
        stored.status,
        RecordingStatus::Pending | RecordingStatus::Failed
    );
    let queue_it = created || (known == Known::QueueAgain && again);
    if !queue_it {
        info!(recording = %stored.id, status = ?stored.status, "recording known; not queued again");
        return Ok(Accepted {
            recording_id: stored.id,
            created,
            queued: false,
        });
    }
    // A recording first stored as one kind keeps its stored kind (the identity is the same).
    let mut source = finished.job_source(daily_bucket);
    if stored.source.is_multitrack() && !source.is_multitrack() {
        source = JobSource::DailyTracks(finished.recording_id.clone());
    }
    let job = RecordingJob {
        meeting_id: meeting.id.clone(),
        recording_id: stored.id.clone(),
        room_name: meeting.room_name.clone(),
        source,
    };
    queue.send(&job).await?;
    info!(meeting_id = %meeting.id, recording = %stored.id, created, multitrack = job.source.is_multitrack(), "recording queued for processing");
    Ok(Accepted {
        recording_id: stored.id,
        created,
        queued: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::{MemoryRecordingQueue, MemoryRecordings};
    use crate::platform::test_support::meeting;

    fn finished(content: Content) -> Finished {
        Finished {
            recording_id: "rec-1".into(),
            content,
        }
    }

    #[tokio::test]
    async fn a_recording_known_to_the_sweeper_is_not_queued_again_but_the_webhook_requeues_it() {
        let recordings = MemoryRecordings::default();
        let queue = MemoryRecordingQueue::default();
        let m = meeting();
        let f = finished(Content::S3Key("d/room/1".into()));
        let first = accept(
            &recordings,
            &queue,
            Some("daily"),
            &m,
            &f,
            Known::Skip,
            Utc::now(),
        )
        .await
        .unwrap();
        assert!(first.created && first.queued);
        let sweep = accept(
            &recordings,
            &queue,
            Some("daily"),
            &m,
            &f,
            Known::Skip,
            Utc::now(),
        )
        .await
        .unwrap();
        assert_eq!((sweep.created, sweep.queued), (false, false));
        assert_eq!(sweep.recording_id, first.recording_id);
        let hook = accept(
            &recordings,
            &queue,
            Some("daily"),
            &m,
            &f,
            Known::QueueAgain,
            Utc::now(),
        )
        .await
        .unwrap();
        assert!(hook.queued);
        assert_eq!(queue.sent().len(), 2);
        assert_eq!(
            queue.sent()[0].source,
            JobSource::S3(S3Location {
                bucket: "daily".into(),
                key: "d/room/1".into()
            })
        );
    }

    #[tokio::test]
    async fn a_done_recording_is_never_queued_again() {
        let recordings = MemoryRecordings::default();
        let queue = MemoryRecordingQueue::default();
        let m = meeting();
        let f = finished(Content::Unknown);
        let first = accept(&recordings, &queue, None, &m, &f, Known::Skip, Utc::now())
            .await
            .unwrap();
        for status in [RecordingStatus::Processing, RecordingStatus::Stored] {
            recordings
                .set_status(&first.recording_id, status, None)
                .await
                .unwrap();
        }
        let again = accept(
            &recordings,
            &queue,
            None,
            &m,
            &f,
            Known::QueueAgain,
            Utc::now(),
        )
        .await
        .unwrap();
        assert!(!again.queued);
        assert_eq!(queue.sent().len(), 1);
    }

    #[test]
    fn raw_tracks_are_queued_as_tracks_or_as_a_daily_lookup() {
        let listed = finished(Content::Tracks(Some(vec!["d/r/1-s-cam-audio-2".into()])));
        assert_eq!(
            listed.job_source(Some("daily")),
            JobSource::Tracks(vec![S3Location {
                bucket: "daily".into(),
                key: "d/r/1-s-cam-audio-2".into()
            }])
        );
        assert_eq!(
            listed.job_source(None),
            JobSource::DailyTracks("rec-1".into())
        );
        assert_eq!(
            finished(Content::Tracks(None)).job_source(Some("daily")),
            JobSource::DailyTracks("rec-1".into())
        );
        assert!(listed.source().is_multitrack());
        assert!(!finished(Content::Unknown).source().is_multitrack());
    }
}
