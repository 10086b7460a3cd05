//! Queue message bodies (DESIGN.md section 7): the recording job the Daily webhook (and the
//! sweeper) put on the recordings queue, and the hand-off to the transcription pipeline.

use serde::{Deserialize, Serialize};

use crate::domain::S3Location;

/// A recording to process: `{"meeting_id", "recording_id", "room_name", "source": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingJob {
    pub meeting_id: String,
    pub recording_id: String,
    pub room_name: String,
    pub source: JobSource,
}

/// Where the recording's bytes are: `{"url": "..."}`, `{"s3": {"bucket", "key"}}` or
/// `{"daily_recording": "<Daily recording id>"}` (ask Daily's access-link API for a URL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobSource {
    Url(String),
    S3(S3Location),
    DailyRecording(String),
}

/// The hand-off to the transcription pipeline, sent once per transcript:
/// `{"transcript_id", "recording_id", "meeting_id", "room_id", "audio": {"bucket", "key"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineMessage {
    pub transcript_id: String,
    pub recording_id: String,
    pub meeting_id: String,
    pub room_id: String,
    pub audio: S3Location,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn recording_job_sources_have_the_documented_shapes() {
        for (source, expected) in [
            (
                JobSource::Url("https://x/y.mp4".into()),
                json!({"url": "https://x/y.mp4"}),
            ),
            (
                JobSource::S3(S3Location {
                    bucket: "b".into(),
                    key: "k".into(),
                }),
                json!({"s3": {"bucket": "b", "key": "k"}}),
            ),
            (
                JobSource::DailyRecording("rec1".into()),
                json!({"daily_recording": "rec1"}),
            ),
        ] {
            let job = RecordingJob {
                meeting_id: "m".into(),
                recording_id: "r".into(),
                room_name: "room".into(),
                source,
            };
            let value = serde_json::to_value(&job).unwrap();
            assert_eq!(
                value,
                json!({"meeting_id": "m", "recording_id": "r", "room_name": "room", "source": expected})
            );
            assert_eq!(serde_json::from_value::<RecordingJob>(value).unwrap(), job);
        }
    }

    #[test]
    fn pipeline_message_has_the_documented_shape() {
        let msg = PipelineMessage {
            transcript_id: "t".into(),
            recording_id: "r".into(),
            meeting_id: "m".into(),
            room_id: "room".into(),
            audio: S3Location {
                bucket: "b".into(),
                key: "recordings/m/r.mp4".into(),
            },
        };
        assert_eq!(
            serde_json::to_value(&msg).unwrap(),
            json!({"transcript_id": "t", "recording_id": "r", "meeting_id": "m", "room_id": "room",
                   "audio": {"bucket": "b", "key": "recordings/m/r.mp4"}})
        );
    }
}
