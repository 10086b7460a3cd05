//! What an SQS message on the recordings queue asks for: a recording job, S3 object-created
//! notifications (Whereby uploads), or S3's test event.

use aws_lambda_events::event::s3::S3Event;
use chrono::{DateTime, NaiveDateTime, Utc};
use shared::domain::S3Location;
use shared::messages::{RecordingJob, StartRecording};

/// The parsed body of one SQS message.
#[derive(Debug, Clone, PartialEq)]
pub enum Work {
    Job(RecordingJob),
    /// Start a Daily recording (`shared::recording_start`).
    StartRecording(StartRecording),
    /// Objects created in a bucket (only `ObjectCreated:*` records are kept).
    Objects(Vec<CreatedObject>),
    /// The `s3:TestEvent` S3 sends when a notification is configured; nothing to do.
    TestEvent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedObject {
    pub location: S3Location,
    pub size: Option<u64>,
}

/// A body that is none of the known messages (it goes to the DLQ after the redrive count).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unrecognised message: {0}")]
pub struct Unrecognised(pub String);

pub fn parse_body(body: &str) -> Result<Work, Unrecognised> {
    let value: serde_json::Value =
        serde_json::from_str(body).map_err(|e| Unrecognised(format!("not JSON: {e}")))?;
    if StartRecording::is_start_recording(&value) {
        return serde_json::from_value(value)
            .map(Work::StartRecording)
            .map_err(|e| Unrecognised(format!("recording start: {e}")));
    }
    if value.get("source").is_some() {
        return serde_json::from_value(value)
            .map(Work::Job)
            .map_err(|e| Unrecognised(format!("recording job: {e}")));
    }
    if value.get("Event").and_then(|v| v.as_str()) == Some("s3:TestEvent") {
        return Ok(Work::TestEvent);
    }
    if value.get("Records").is_some() {
        let event: S3Event = serde_json::from_value(value)
            .map_err(|e| Unrecognised(format!("S3 notification: {e}")))?;
        let mut objects = Vec::new();
        for record in event.records {
            let name = record.event_name.as_deref().unwrap_or_default();
            if !name.starts_with("ObjectCreated:") {
                continue;
            }
            let (Some(bucket), Some(key)) = (record.s3.bucket.name, record.s3.object.key) else {
                return Err(Unrecognised(
                    "S3 notification record without bucket or key".into(),
                ));
            };
            objects.push(CreatedObject {
                location: S3Location {
                    bucket,
                    key: decode_key(&key)
                        .ok_or_else(|| Unrecognised(format!("badly encoded key {key:?}")))?,
                },
                size: record.s3.object.size.and_then(|s| u64::try_from(s).ok()),
            });
        }
        return Ok(Work::Objects(objects));
    }
    Err(Unrecognised(
        "neither a recording job nor an S3 notification".into(),
    ))
}

/// Keys in S3 notifications are URL-encoded with `+` for spaces.
pub fn decode_key(key: &str) -> Option<String> {
    let bytes = key.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// A Whereby recording's object key: `[folder/]<room name>-<ISO start>.<ext>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WherebyKey {
    pub room_name: String,
    pub started_at: DateTime<Utc>,
    pub extension: String,
}

/// Parses a Whereby key; the error says what did not match.
pub fn parse_whereby_key(key: &str) -> Result<WherebyKey, String> {
    let file = key.rsplit('/').next().unwrap_or(key);
    let (stem, extension) = file
        .rsplit_once('.')
        .filter(|(_, ext)| !ext.is_empty() && ext.bytes().all(|b| b.is_ascii_alphanumeric()))
        .ok_or_else(|| {
            format!("key {key:?} has no file extension (expected <room name>-<ISO start>.<ext>)")
        })?;
    // The room name may contain '-', and so does the timestamp: the first '-' after which the
    // rest parses as a time splits them.
    for (i, _) in stem.match_indices('-').filter(|(i, _)| *i > 0) {
        if let Some(started_at) = parse_time(&stem[i + 1..]) {
            return Ok(WherebyKey {
                room_name: stem[..i].to_owned(),
                started_at,
                extension: extension.to_ascii_lowercase(),
            });
        }
    }
    Err(format!(
        "key {key:?} does not match <room name>-<ISO start>.<ext>"
    ))
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    // Without an offset the time is UTC.
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use shared::messages::JobSource;

    #[test]
    fn recording_job_is_recognised() {
        let body = r#"{"meeting_id":"m1","recording_id":"r1","room_name":"room","source":{"url":"https://x/a.mp4"}}"#;
        let Work::Job(job) = parse_body(body).unwrap() else {
            panic!("not a job")
        };
        assert_eq!(job.source, JobSource::Url("https://x/a.mp4".into()));
    }

    #[test]
    fn s3_notification_keys_are_url_decoded_and_only_creations_kept() {
        let body = serde_json::json!({"Records": [
            {"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
             "eventTime": "2026-01-15T10:31:00.000Z", "eventName": "ObjectCreated:CompleteMultipartUpload",
             "userIdentity": {"principalId": "x"}, "requestParameters": {"sourceIPAddress": "1.2.3.4"},
             "responseElements": {}, "s3": {"s3SchemaVersion": "1.0", "configurationId": "c",
               "bucket": {"name": "wb", "arn": "arn:aws:s3:::wb"},
               "object": {"key": "rec/my-room-2026-01-15T10%3A30%3A00Z+copy.mp4", "size": 1234}}},
            {"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
             "eventTime": "2026-01-15T10:31:00.000Z", "eventName": "ObjectRemoved:Delete",
             "userIdentity": {"principalId": "x"}, "requestParameters": {"sourceIPAddress": "1.2.3.4"},
             "responseElements": {}, "s3": {"s3SchemaVersion": "1.0", "configurationId": "c",
               "bucket": {"name": "wb", "arn": "arn:aws:s3:::wb"}, "object": {"key": "gone.mp4"}}}
        ]});
        let work = parse_body(&body.to_string()).unwrap();
        assert_eq!(
            work,
            Work::Objects(vec![CreatedObject {
                location: S3Location {
                    bucket: "wb".into(),
                    key: "rec/my-room-2026-01-15T10:30:00Z copy.mp4".into()
                },
                size: Some(1234),
            }])
        );
    }

    #[test]
    fn s3_test_event_is_recognised() {
        let body = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-01-01T00:00:00.000Z","Bucket":"wb","RequestId":"x","HostId":"y"}"#;
        assert_eq!(parse_body(body), Ok(Work::TestEvent));
    }

    #[test]
    fn other_bodies_are_unrecognised_with_a_reason() {
        assert!(parse_body("hello").unwrap_err().0.contains("not JSON"));
        assert!(parse_body(r#"{"foo":1}"#)
            .unwrap_err()
            .0
            .contains("neither"));
        assert!(parse_body(r#"{"source":{"ftp":"x"}}"#)
            .unwrap_err()
            .0
            .contains("recording job"));
    }

    #[test]
    fn whereby_keys_split_room_name_and_start_time() {
        let k = parse_whereby_key("folder/team-standup-2-2026-01-15T10:30:00Z.mp4").unwrap();
        assert_eq!(k.room_name, "team-standup-2");
        assert_eq!(
            k.started_at,
            Utc.with_ymd_and_hms(2026, 1, 15, 10, 30, 0).unwrap()
        );
        assert_eq!(k.extension, "mp4");
        let k = parse_whereby_key("a1b2c3d4-e5f6-2026-01-15T10:30:00.123Z.MKV").unwrap();
        assert_eq!(k.room_name, "a1b2c3d4-e5f6");
        assert_eq!(k.extension, "mkv");
        let k = parse_whereby_key("room-2026-01-15T10:30:00.webm").unwrap();
        assert_eq!(
            k.started_at,
            Utc.with_ymd_and_hms(2026, 1, 15, 10, 30, 0).unwrap()
        );
    }

    #[test]
    fn keys_not_in_the_whereby_format_are_refused_saying_why() {
        for bad in [
            "just-a-file.mp4",
            "room-2026-01-15T10:30:00Z",
            "-2026-01-15T10:30:00Z.mp4",
        ] {
            let err = parse_whereby_key(bad).unwrap_err();
            assert!(err.contains(bad), "{err}");
        }
    }
}

#[cfg(test)]
mod fixture_tests {
    use super::*;
    use aws_lambda_events::event::sqs::SqsEvent;
    use shared::messages::JobSource;

    fn event(name: &str) -> SqsEvent {
        let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap()
    }

    fn works(name: &str) -> Vec<Work> {
        event(name)
            .records
            .iter()
            .map(|r| parse_body(r.body.as_deref().unwrap()).unwrap())
            .collect()
    }

    #[test]
    fn sample_recording_jobs_cover_the_three_sources() {
        let sources: Vec<JobSource> = works("sqs-recording-jobs.json")
            .into_iter()
            .map(|w| match w {
                Work::Job(j) => j.source,
                other => panic!("not a job: {other:?}"),
            })
            .collect();
        assert!(matches!(
            sources[..],
            [
                JobSource::Url(_),
                JobSource::S3(_),
                JobSource::DailyRecording(_)
            ]
        ));
    }

    #[test]
    fn sample_s3_notifications_parse_to_a_whereby_object_and_a_test_event() {
        let w = works("sqs-s3-notifications.json");
        let Work::Objects(objects) = &w[0] else {
            panic!("{:?}", w[0])
        };
        let key = parse_whereby_key(&objects[0].location.key).unwrap();
        assert_eq!(key.room_name, "a1b2c3d4-e5f6");
        assert_eq!(objects[0].size, Some(104_857_600));
        assert_eq!(w[1], Work::TestEvent);
    }
}
