//! Queue message shapes (DESIGN.md section 7). Producers and consumers share these types so the
//! JSON on the wire has exactly one definition.

use serde::{Deserialize, Serialize};

use crate::domain::S3Location;

/// A recording to fetch and hand to the pipeline, sent on the recordings queue by the Daily
/// webhook: `{"meeting_id", "recording_id", "room_name", "source": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingJob {
    pub meeting_id: String,
    /// Our recording's id (the stored `Recording`), not the platform's.
    pub recording_id: String,
    pub room_name: String,
    pub source: RecordingJobSource,
}

/// Where the processor gets the audio: `{"url": "..."}`, `{"s3": {"bucket", "key"}}` or
/// `{"daily_recording": "<Daily recording id>"}` (ask Daily's access-link API).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingJobSource {
    Url(String),
    S3(S3Location),
    DailyRecording(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(source: RecordingJobSource) -> RecordingJob {
        RecordingJob {
            meeting_id: "m".into(),
            recording_id: "r".into(),
            room_name: "room".into(),
            source,
        }
    }

    #[test]
    fn recording_job_serializes_in_the_documented_shape() {
        let cases = [
            (
                RecordingJobSource::Url("https://x/y.mp4".into()),
                json!({"url": "https://x/y.mp4"}),
            ),
            (
                RecordingJobSource::S3(S3Location {
                    bucket: "b".into(),
                    key: "k/1".into(),
                }),
                json!({"s3": {"bucket": "b", "key": "k/1"}}),
            ),
            (
                RecordingJobSource::DailyRecording("rec-1".into()),
                json!({"daily_recording": "rec-1"}),
            ),
        ];
        for (source, want) in cases {
            let value = serde_json::to_value(job(source.clone())).unwrap();
            assert_eq!(
                value,
                json!({"meeting_id": "m", "recording_id": "r", "room_name": "room", "source": want})
            );
            let back: RecordingJob = serde_json::from_value(value).unwrap();
            assert_eq!(back.source, source);
        }
    }
}
