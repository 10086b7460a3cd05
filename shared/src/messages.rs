//! Queue message bodies (DESIGN.md section 7): the recording job the Daily webhook (and the
//! sweeper) put on the recordings queue, the start of a Daily recording that shares that queue,
//! and the hand-off to the transcription pipeline.

use serde::{Deserialize, Serialize};

use crate::domain::{RecordingKind, S3Location};

/// Start `kind`'s Daily recording of a meeting (`crate::recording_start`). It travels on the
/// recordings queue, redelivered with a delay while Daily cannot start it; the field
/// `"message": "start_recording"` tells it apart from a [`RecordingJob`] (which has no such
/// field and always has `recording_id` and `source`) and from S3 notifications (`Records`):
/// `{"message": "start_recording", "meeting_id", "room_name", "kind": "cloud"|"raw-tracks",
/// "attempt"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
// serde checks no tag value when deserializing a tagged struct: `StartRecordingWire` does.
#[serde(
    tag = "message",
    rename = "start_recording",
    from = "StartRecordingWire"
)]
pub struct StartRecording {
    pub meeting_id: String,
    /// The meeting's Daily room name.
    pub room_name: String,
    pub kind: RecordingKind,
    /// 0 for the first try; the backoff grows with it.
    #[serde(default)]
    pub attempt: u32,
}

/// The only accepted value of a [`StartRecording`]'s `message` field.
#[derive(Deserialize)]
enum StartRecordingTag {
    #[serde(rename = "start_recording")]
    StartRecording,
}

#[derive(Deserialize)]
struct StartRecordingWire {
    #[allow(dead_code)] // Its value is checked by deserializing it.
    message: StartRecordingTag,
    meeting_id: String,
    room_name: String,
    kind: RecordingKind,
    #[serde(default)]
    attempt: u32,
}

impl From<StartRecordingWire> for StartRecording {
    fn from(w: StartRecordingWire) -> Self {
        Self {
            meeting_id: w.meeting_id,
            room_name: w.room_name,
            kind: w.kind,
            attempt: w.attempt,
        }
    }
}

impl StartRecording {
    /// The value of the `message` field that marks this message.
    pub const TAG: &'static str = "start_recording";

    /// Whether a queue body is a [`StartRecording`] (by its tag), without fully parsing it.
    pub fn is_start_recording(body: &serde_json::Value) -> bool {
        body.get("message").and_then(|m| m.as_str()) == Some(Self::TAG)
    }

    /// The same start, tried once more.
    pub fn next_attempt(&self) -> Self {
        Self {
            attempt: self.attempt.saturating_add(1),
            ..self.clone()
        }
    }
}

/// A recording to process: `{"meeting_id", "recording_id", "room_name", "source": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingJob {
    pub meeting_id: String,
    pub recording_id: String,
    pub room_name: String,
    pub source: JobSource,
}

/// Where the recording's bytes are: `{"url": "..."}`, `{"s3": {"bucket", "key"}}` or
/// `{"daily_recording": "<Daily recording id>"}` (ask Daily's access-link API for a URL); for a
/// multitrack (Daily `raw-tracks`) recording, its audio tracks
/// `{"tracks": [{"bucket", "key"}, ...]}`, or `{"daily_tracks": "<Daily recording id>"}` when
/// the event did not list them (read them from Daily's `GET /recordings/:id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobSource {
    Url(String),
    S3(S3Location),
    DailyRecording(String),
    Tracks(Vec<S3Location>),
    DailyTracks(String),
}

impl JobSource {
    /// Whether the source is one audio object per participant.
    pub fn is_multitrack(&self) -> bool {
        matches!(self, JobSource::Tracks(_) | JobSource::DailyTracks(_))
    }
}

/// The hand-off to the transcription pipeline, sent once per transcript:
/// `{"transcript_id", "recording_id", "meeting_id", "room_id", "audio": {"bucket", "key"},
/// "tracks": []}` for a single-file recording, and `"audio": null, "tracks": [{"bucket", "key",
/// "session_id"}, ...]` (ordered by track start) for a multitrack one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineMessage {
    pub transcript_id: String,
    pub recording_id: String,
    pub meeting_id: String,
    pub room_id: String,
    pub audio: Option<S3Location>,
    #[serde(default)]
    pub tracks: Vec<AudioTrack>,
}

/// One participant's audio track of a multitrack recording, stored in our bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AudioTrack {
    pub bucket: String,
    pub key: String,
    /// Daily's participant session id, from the track's key.
    pub session_id: String,
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
    fn start_recording_has_the_documented_shape_and_is_told_apart_from_jobs() {
        let msg = StartRecording {
            meeting_id: "m".into(),
            room_name: "team-20260102030405".into(),
            kind: RecordingKind::RawTracks,
            attempt: 2,
        };
        let value = serde_json::to_value(&msg).unwrap();
        assert_eq!(
            value,
            json!({"message": "start_recording", "meeting_id": "m",
                   "room_name": "team-20260102030405", "kind": "raw-tracks", "attempt": 2})
        );
        assert_eq!(
            serde_json::from_value::<StartRecording>(value.clone()).unwrap(),
            msg
        );
        assert!(StartRecording::is_start_recording(&value));
        assert!(serde_json::from_value::<RecordingJob>(value.clone()).is_err());
        let mut other = value;
        other["message"] = json!("something_else");
        assert!(serde_json::from_value::<StartRecording>(other.clone()).is_err());
        other.as_object_mut().unwrap().remove("message");
        assert!(serde_json::from_value::<StartRecording>(other).is_err());

        let job = serde_json::to_value(RecordingJob {
            meeting_id: "m".into(),
            recording_id: "r".into(),
            room_name: "room".into(),
            source: JobSource::DailyRecording("rec1".into()),
        })
        .unwrap();
        assert!(!StartRecording::is_start_recording(&job));
        assert!(serde_json::from_value::<StartRecording>(job).is_err());
        assert_eq!(msg.next_attempt().attempt, 3);
    }

    #[test]
    fn pipeline_message_has_the_documented_shape() {
        let msg = PipelineMessage {
            transcript_id: "t".into(),
            recording_id: "r".into(),
            meeting_id: "m".into(),
            room_id: "room".into(),
            audio: Some(S3Location {
                bucket: "b".into(),
                key: "recordings/m/r.mp4".into(),
            }),
            tracks: Vec::new(),
        };
        assert_eq!(
            serde_json::to_value(&msg).unwrap(),
            json!({"transcript_id": "t", "recording_id": "r", "meeting_id": "m", "room_id": "room",
                   "audio": {"bucket": "b", "key": "recordings/m/r.mp4"}, "tracks": []})
        );
        let multitrack = PipelineMessage {
            audio: None,
            tracks: vec![AudioTrack {
                bucket: "b".into(),
                key: "recordings/m/r/1-s1-cam-audio-2.webm".into(),
                session_id: "s1".into(),
            }],
            ..msg
        };
        assert_eq!(
            serde_json::to_value(&multitrack).unwrap(),
            json!({"transcript_id": "t", "recording_id": "r", "meeting_id": "m", "room_id": "room",
                   "audio": null, "tracks": [{"bucket": "b",
                   "key": "recordings/m/r/1-s1-cam-audio-2.webm", "session_id": "s1"}]})
        );
    }

    #[test]
    fn multitrack_job_sources_have_the_documented_shapes() {
        let tracks = JobSource::Tracks(vec![S3Location {
            bucket: "daily".into(),
            key: "d/room/1-s-cam-audio-2".into(),
        }]);
        assert_eq!(
            serde_json::to_value(&tracks).unwrap(),
            json!({"tracks": [{"bucket": "daily", "key": "d/room/1-s-cam-audio-2"}]})
        );
        assert_eq!(
            serde_json::to_value(JobSource::DailyTracks("rec".into())).unwrap(),
            json!({"daily_tracks": "rec"})
        );
        assert!(tracks.is_multitrack());
        assert!(!JobSource::DailyRecording("rec".into()).is_multitrack());
    }
}
