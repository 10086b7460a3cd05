//! Daily.co webhook bodies: the real envelope `{version, type, id, payload, event_ts (s)}` and the
//! seed's `{type, id, ts (ms), data: {room: {name}, participant | recording}}`, parsed into one
//! [`Event`]. Which envelope a body uses is decided by the body (`payload` or `data`), not by the
//! signature scheme, so either envelope verifies under either scheme.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::de::IgnoredAny;
use serde::Deserialize;

use super::{from_unix_millis, from_unix_seconds, non_empty, CowStr, ParseError, RoomRef};

/// Which of the two Daily envelopes a body used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Daily's documented envelope (`payload`, `event_ts` in seconds).
    Real,
    /// The seed document's envelope (`data`, `ts` in milliseconds).
    Seed,
}

/// One Daily webhook event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event<'a> {
    /// Daily's event id: the deduplication key.
    pub id: Cow<'a, str>,
    /// The `type` as sent, for logs (also for types we do not handle).
    pub event_type: Cow<'a, str>,
    pub format: Format,
    /// When Daily sent (real) or created (seed) the event, if the body says.
    pub sent_at: Option<DateTime<Utc>>,
    pub kind: EventKind<'a>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EventKind<'a> {
    ParticipantJoined(Participant<'a>),
    ParticipantLeft(Participant<'a>),
    MeetingStarted {
        room: Option<Cow<'a, str>>,
    },
    MeetingEnded {
        room: Option<Cow<'a, str>>,
    },
    /// Real `recording.started` events carry no room name ([DOCS]), so `room` may be `None`.
    RecordingStarted {
        room: Option<Cow<'a, str>>,
        recording_id: Cow<'a, str>,
    },
    RecordingReady(RecordingReady<'a>),
    /// Real `recording.error` events carry no recording id ([DOCS]), so it may be `None`.
    RecordingError {
        room: Option<Cow<'a, str>>,
        recording_id: Option<Cow<'a, str>>,
        message: Cow<'a, str>,
    },
    /// A type this service does not act on; accepted and logged.
    Unknown,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Participant<'a> {
    pub room: Cow<'a, str>,
    /// Daily's participant session id (the seed's `participant.session_id`, else its `id`).
    pub session_id: Cow<'a, str>,
    pub user_id: Option<Cow<'a, str>>,
    pub user_name: Option<Cow<'a, str>>,
    /// When the participant joined, if the body says (real `joined_at`, seed `ts` on joins).
    pub joined_at: Option<DateTime<Utc>>,
    /// When the participant left (real `joined_at + duration`, else the event time), on leaves.
    pub left_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecordingReady<'a> {
    pub room: Cow<'a, str>,
    pub recording_id: Cow<'a, str>,
    pub location: RecordingLocation<'a>,
}

/// Where the finished recording can be fetched from, as far as the event says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordingLocation<'a> {
    /// The seed's `download_url`.
    Url(Cow<'a, str>),
    /// Daily's `s3_key`, an object in the configured Daily bucket.
    S3Key(Cow<'a, str>),
    /// Nothing: ask Daily's access-link API by recording id.
    Unknown,
    /// A `raw-tracks` recording: the keys of its audio tracks (`tracks[]` items of type
    /// `audio`), or `None` when `tracks` is null or absent (ask `GET /recordings/:id`).
    Tracks(Option<Vec<Cow<'a, str>>>),
}

/// Whether the body is Daily's `{"test":"test"}` webhook-creation probe, exactly that object
/// (whitespace aside), not merely something that starts like it.
pub fn is_probe(body: &[u8]) -> bool {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Probe<'a> {
        #[serde(borrow)]
        test: CowStr<'a>,
    }
    // The probe is 15 bytes; anything much longer is not it, and skipping the parse keeps the
    // hot path of real events free of a wasted pass.
    // Derived structs also accept a JSON array (`["test"]`), which is not the probe.
    body.len() <= 64
        && body.trim_ascii_start().first() == Some(&b'{')
        && serde_json::from_slice::<Probe>(body).is_ok_and(|p| p.test.0 == "test")
}

const PARTICIPANT_JOINED: &str = "participant.joined";
const PARTICIPANT_LEFT: &str = "participant.left";
const MEETING_STARTED: &str = "meeting.started";
const MEETING_ENDED: &str = "meeting.ended";
const RECORDING_STARTED: &str = "recording.started";
const RECORDING_READY: &str = "recording.ready-to-download";
const RECORDING_ERROR: &str = "recording.error";

/// Every event type this backend acts on: what a Daily webhook should subscribe to.
pub const HANDLED_EVENT_TYPES: [&str; 7] = [
    PARTICIPANT_JOINED,
    PARTICIPANT_LEFT,
    MEETING_STARTED,
    MEETING_ENDED,
    RECORDING_STARTED,
    RECORDING_READY,
    RECORDING_ERROR,
];

/// First pass: only what every event has.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(rename = "type", borrow)]
    kind: CowStr<'a>,
    #[serde(borrow, default)]
    id: Option<CowStr<'a>>,
}

/// Second pass, for the types we act on. One struct covers both envelopes; fields a type does
/// not use are optional and ignored.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default)]
    event_ts: Option<f64>,
    #[serde(default)]
    ts: Option<f64>,
    #[serde(borrow, default)]
    payload: Option<Inner<'a>>,
    #[serde(borrow, default)]
    data: Option<Inner<'a>>,
}

#[derive(Deserialize, Default)]
struct Inner<'a> {
    #[serde(borrow, default)]
    room: Option<RoomRef<'a>>,
    #[serde(borrow, default)]
    room_name: Option<CowStr<'a>>,
    // Real, flat fields.
    #[serde(borrow, default)]
    session_id: Option<CowStr<'a>>,
    #[serde(borrow, default)]
    user_id: Option<CowStr<'a>>,
    #[serde(borrow, default)]
    user_name: Option<CowStr<'a>>,
    #[serde(default)]
    joined_at: Option<f64>,
    #[serde(default)]
    duration: Option<f64>,
    #[serde(borrow, default)]
    recording_id: Option<CowStr<'a>>,
    #[serde(borrow, default)]
    s3_key: Option<CowStr<'a>>,
    /// The recording's type (`cloud`, `raw-tracks`, ...).
    #[serde(rename = "type", borrow, default)]
    recording_type: Option<CowStr<'a>>,
    #[serde(borrow, default)]
    tracks: Option<Vec<Track<'a>>>,
    #[serde(borrow, default)]
    error_msg: Option<CowStr<'a>>,
    #[serde(borrow, default)]
    error: Option<CowStr<'a>>,
    // Seed, nested objects.
    #[serde(borrow, default)]
    participant: Option<SeedParticipant<'a>>,
    #[serde(borrow, default)]
    recording: Option<SeedRecording<'a>>,
}

/// One item of a raw-tracks event's `tracks`: `{type, s3Key, size}` (also spelt `s3key`).
#[derive(Deserialize)]
struct Track<'a> {
    #[serde(rename = "type", borrow, default)]
    track_type: Option<CowStr<'a>>,
    #[serde(rename = "s3Key", alias = "s3key", alias = "s3_key", borrow, default)]
    s3_key: Option<CowStr<'a>>,
}

const RAW_TRACKS: &str = "raw-tracks";

#[derive(Deserialize)]
struct SeedParticipant<'a> {
    #[serde(borrow, default)]
    id: Option<CowStr<'a>>,
    #[serde(borrow, default)]
    session_id: Option<CowStr<'a>>,
    #[serde(borrow, default)]
    user_id: Option<CowStr<'a>>,
    #[serde(borrow, default)]
    user_name: Option<CowStr<'a>>,
}

#[derive(Deserialize)]
struct SeedRecording<'a> {
    #[serde(borrow, default)]
    id: Option<CowStr<'a>>,
    #[serde(borrow, default)]
    download_url: Option<CowStr<'a>>,
    #[serde(borrow, default)]
    s3_key: Option<CowStr<'a>>,
    #[serde(borrow, default)]
    error: Option<CowStr<'a>>,
    #[serde(borrow, default)]
    error_msg: Option<CowStr<'a>>,
}

/// Parses a Daily webhook body (already verified) into an [`Event`].
pub fn parse(body: &[u8]) -> Result<Event<'_>, ParseError> {
    let head: Head = serde_json::from_slice(body).map_err(ParseError::json)?;
    let event_type = head.kind.0;
    let id = non_empty(head.id).ok_or_else(|| ParseError::missing(&event_type, "id"))?;
    let known = matches!(
        event_type.as_ref(),
        PARTICIPANT_JOINED
            | PARTICIPANT_LEFT
            | MEETING_STARTED
            | MEETING_ENDED
            | RECORDING_STARTED
            | RECORDING_READY
            | RECORDING_ERROR
    );
    if !known {
        // Unknown types are accepted whatever their payload, so only the first pass runs.
        let format = envelope_format(body);
        return Ok(Event {
            id,
            event_type,
            format,
            sent_at: None,
            kind: EventKind::Unknown,
        });
    }

    let envelope: Envelope = serde_json::from_slice(body).map_err(ParseError::json)?;
    let (format, inner, sent_at) = match (envelope.payload, envelope.data) {
        (Some(p), _) => {
            let at = envelope
                .event_ts
                .map(|s| from_unix_seconds(s).ok_or(ParseError::BadTimestamp { field: "event_ts" }))
                .transpose()?;
            (Format::Real, p, at)
        }
        (None, Some(d)) => {
            let at = envelope
                .ts
                .map(|ms| from_unix_millis(ms).ok_or(ParseError::BadTimestamp { field: "ts" }))
                .transpose()?;
            (Format::Seed, d, at)
        }
        (None, None) => return Err(ParseError::missing(&event_type, "payload")),
    };
    let kind = build_kind(&event_type, format, inner, sent_at)?;
    Ok(Event {
        id,
        event_type,
        format,
        sent_at,
        kind,
    })
}

/// Cheap guess of the envelope for logging unknown types: `payload` means the real one.
fn envelope_format(body: &[u8]) -> Format {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(default)]
        payload: Option<IgnoredAny>,
    }
    match serde_json::from_slice::<Probe>(body) {
        Ok(Probe { payload: Some(_) }) => Format::Real,
        _ => Format::Seed,
    }
}

fn build_kind<'a>(
    event_type: &str,
    format: Format,
    inner: Inner<'a>,
    sent_at: Option<DateTime<Utc>>,
) -> Result<EventKind<'a>, ParseError> {
    let room = non_empty(inner.room.and_then(|r| r.0).map(CowStr)).or(non_empty(inner.room_name));
    let need_room =
        |room: Option<Cow<'a, str>>| room.ok_or_else(|| ParseError::missing(event_type, "room"));
    match event_type {
        PARTICIPANT_JOINED | PARTICIPANT_LEFT => {
            let seed = inner.participant;
            let (session_id, user_id, user_name) = match (format, seed) {
                (Format::Seed, Some(p)) => (
                    non_empty(p.session_id).or(non_empty(p.id)),
                    non_empty(p.user_id),
                    non_empty(p.user_name),
                ),
                (_, _) => (
                    non_empty(inner.session_id),
                    non_empty(inner.user_id),
                    non_empty(inner.user_name),
                ),
            };
            let session_id =
                session_id.ok_or_else(|| ParseError::missing(event_type, "session_id"))?;
            let joined_at = inner
                .joined_at
                .map(|s| {
                    from_unix_seconds(s).ok_or(ParseError::BadTimestamp { field: "joined_at" })
                })
                .transpose()?;
            let room = need_room(room)?;
            if event_type == PARTICIPANT_JOINED {
                Ok(EventKind::ParticipantJoined(Participant {
                    room,
                    session_id,
                    user_id,
                    user_name,
                    joined_at: joined_at.or(sent_at),
                    left_at: None,
                }))
            } else {
                // Daily's `duration` is the time in the call, so join + duration is the leave
                // time even when the event itself is delivered late.
                let left_at = match (joined_at, inner.duration) {
                    (Some(j), Some(d)) if d.is_finite() && (0.0..1e9).contains(&d) => {
                        j.checked_add_signed(chrono::Duration::milliseconds((d * 1000.0) as i64))
                    }
                    _ => sent_at,
                };
                Ok(EventKind::ParticipantLeft(Participant {
                    room,
                    session_id,
                    user_id,
                    user_name,
                    joined_at,
                    left_at,
                }))
            }
        }
        MEETING_STARTED => Ok(EventKind::MeetingStarted { room }),
        MEETING_ENDED => Ok(EventKind::MeetingEnded { room }),
        RECORDING_STARTED => {
            let recording_id = recording_id(&inner.recording_id, &inner.recording)
                .ok_or_else(|| ParseError::missing(event_type, "recording_id"))?;
            Ok(EventKind::RecordingStarted { room, recording_id })
        }
        RECORDING_READY => {
            let recording_id = recording_id(&inner.recording_id, &inner.recording)
                .ok_or_else(|| ParseError::missing(event_type, "recording_id"))?;
            let (url, seed_key) = match &inner.recording {
                Some(r) => (
                    non_empty(r.download_url.clone()),
                    non_empty(r.s3_key.clone()),
                ),
                None => (None, None),
            };
            let raw_tracks = non_empty(inner.recording_type).as_deref() == Some(RAW_TRACKS);
            let location = match (raw_tracks, url, non_empty(inner.s3_key).or(seed_key)) {
                (true, _, _) => RecordingLocation::Tracks(inner.tracks.map(|tracks| {
                    tracks
                        .into_iter()
                        .filter(|t| t.track_type.as_ref().is_some_and(|t| t.0 == "audio"))
                        .filter_map(|t| non_empty(t.s3_key))
                        .collect()
                })),
                (false, Some(url), _) => RecordingLocation::Url(url),
                (false, None, Some(key)) => RecordingLocation::S3Key(key),
                (false, None, None) => RecordingLocation::Unknown,
            };
            Ok(EventKind::RecordingReady(RecordingReady {
                room: need_room(room)?,
                recording_id,
                location,
            }))
        }
        RECORDING_ERROR => {
            let recording_id = recording_id(&inner.recording_id, &inner.recording);
            let (seed_error, seed_error_msg) = match inner.recording {
                Some(r) => (non_empty(r.error), non_empty(r.error_msg)),
                None => (None, None),
            };
            let message = non_empty(inner.error_msg)
                .or(non_empty(inner.error))
                .or(seed_error_msg)
                .or(seed_error)
                .unwrap_or(Cow::Borrowed("recording error reported without a message"));
            Ok(EventKind::RecordingError {
                room,
                recording_id,
                message,
            })
        }
        _ => Ok(EventKind::Unknown),
    }
}

fn recording_id<'a>(
    flat: &Option<CowStr<'a>>,
    seed: &Option<SeedRecording<'a>>,
) -> Option<Cow<'a, str>> {
    non_empty(flat.clone()).or_else(|| seed.as_ref().and_then(|r| non_empty(r.id.clone())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(body: &str) -> Event<'_> {
        parse(body.as_bytes()).unwrap_or_else(|e| panic!("{e}: {body}"))
    }

    #[test]
    fn probe_is_exactly_the_test_object() {
        assert!(is_probe(br#"{"test":"test"}"#));
        assert!(is_probe(b" { \"test\" : \"test\" }\n"));
        for not in [
            &br#"{"test":"test","type":"participant.joined"}"#[..],
            br#"{"test":"other"}"#,
            br#"{"test":"test"}garbage"#,
            br#"{"test":"test","test":"test"}"#,
            br#"{"test":1}"#,
            b"",
            br#"["test"]"#,
        ] {
            assert!(!is_probe(not), "{}", String::from_utf8_lossy(not));
        }
    }

    #[test]
    fn real_participant_joined_reads_flat_payload_and_seconds() {
        let e = parse_ok(
            r#"{"version":"1.0.0","type":"participant.joined","id":"ptcpt-join-1",
            "payload":{"room":"room-a","session_id":"s-1","user_id":"u-1","user_name":"Ann",
            "joined_at":1708972279.5,"owner":false,"permissions":{"canSend":true}},
            "event_ts":1708972280.96}"#,
        );
        assert_eq!(e.id, "ptcpt-join-1");
        assert_eq!(e.format, Format::Real);
        assert_eq!(e.sent_at.unwrap().timestamp_millis(), 1_708_972_280_960);
        let EventKind::ParticipantJoined(p) = e.kind else {
            panic!("{:?}", e.kind)
        };
        assert_eq!(p.room, "room-a");
        assert_eq!(p.session_id, "s-1");
        assert_eq!(p.user_id.as_deref(), Some("u-1"));
        assert_eq!(p.user_name.as_deref(), Some("Ann"));
        assert_eq!(p.joined_at.unwrap().timestamp_millis(), 1_708_972_279_500);
    }

    #[test]
    fn real_participant_left_uses_join_plus_duration() {
        let e = parse_ok(
            r#"{"version":"1.0.0","type":"participant.left","id":"l1",
            "payload":{"room":"room-a","session_id":"s-1","user_id":null,"joined_at":1000,"duration":90},
            "event_ts":5000}"#,
        );
        let EventKind::ParticipantLeft(p) = e.kind else {
            panic!()
        };
        assert_eq!(p.user_id, None);
        assert_eq!(p.left_at.unwrap().timestamp(), 1090);
    }

    #[test]
    fn seed_participant_joined_reads_nested_room_and_millisecond_ts() {
        let e = parse_ok(
            r#"{"type":"participant.joined","id":"evt_participant_joined_1640995200","ts":1640995200000,
            "data":{"room":{"name":"test-room-123-abc"},
            "participant":{"id":"participant-123","user_name":"John Doe","session_id":"session-456"}}}"#,
        );
        assert_eq!(e.format, Format::Seed);
        let EventKind::ParticipantJoined(p) = e.kind else {
            panic!()
        };
        assert_eq!(p.room, "test-room-123-abc");
        assert_eq!(p.session_id, "session-456");
        assert_eq!(p.user_name.as_deref(), Some("John Doe"));
        assert_eq!(p.joined_at.unwrap().timestamp(), 1_640_995_200);
    }

    #[test]
    fn seed_participant_without_session_id_uses_participant_id() {
        let e = parse_ok(
            r#"{"type":"participant.left","id":"e","ts":1.5e12,
            "data":{"room":{"name":"r"},"participant":{"id":"p-9"}}}"#,
        );
        let EventKind::ParticipantLeft(p) = e.kind else {
            panic!()
        };
        assert_eq!(p.session_id, "p-9");
        assert_eq!(p.left_at.unwrap().timestamp(), 1_500_000_000);
    }

    #[test]
    fn room_name_is_understood_in_every_spelling() {
        for body in [
            r#"{"type":"participant.joined","id":"1","payload":{"room":"x","session_id":"s"}}"#,
            r#"{"type":"participant.joined","id":"1","payload":{"room_name":"x","session_id":"s"}}"#,
            r#"{"type":"participant.joined","id":"1","data":{"room":{"name":"x"},"participant":{"id":"s"}}}"#,
            r#"{"type":"participant.joined","id":"1","data":{"room":"x","participant":{"id":"s"}}}"#,
            r#"{"type":"participant.joined","id":"1","data":{"room_name":"x","participant":{"id":"s"}}}"#,
        ] {
            let EventKind::ParticipantJoined(p) = parse_ok(body).kind else {
                panic!("{body}")
            };
            assert_eq!(p.room, "x", "{body}");
        }
    }

    #[test]
    fn real_recording_ready_carries_the_s3_key() {
        let e = parse_ok(
            r#"{"version":"1.0.0","type":"recording.ready-to-download",
            "id":"rec-rtd-c3df927c-f738-4471-a2b7-066fa7e95a6b-1692124192",
            "payload":{"recording_id":"08fa0b24-9220-44c5-846c-3f116cf8e738","room_name":"Xcm97xRZ08b2dePKb78g",
            "start_ts":1692124183,"status":"finished","max_participants":1,"duration":9,
            "share_token":"ntDCL5k98Ulq","s3_key":"api-test-1j8fizhzd30c/Xcm97xRZ08b2dePKb78g/1692124183028"},
            "event_ts":1692124192}"#,
        );
        let EventKind::RecordingReady(r) = e.kind else {
            panic!()
        };
        assert_eq!(r.room, "Xcm97xRZ08b2dePKb78g");
        assert_eq!(r.recording_id, "08fa0b24-9220-44c5-846c-3f116cf8e738");
        assert_eq!(
            r.location,
            RecordingLocation::S3Key(Cow::Borrowed(
                "api-test-1j8fizhzd30c/Xcm97xRZ08b2dePKb78g/1692124183028"
            ))
        );
    }

    #[test]
    fn real_recording_ready_without_key_has_unknown_location() {
        let e = parse_ok(
            r#"{"type":"recording.ready-to-download","id":"i",
            "payload":{"recording_id":"r1","room_name":"room","type":"cloud"}}"#,
        );
        let EventKind::RecordingReady(r) = e.kind else {
            panic!()
        };
        assert_eq!(r.location, RecordingLocation::Unknown);
    }

    #[test]
    fn raw_tracks_keep_only_audio_track_keys_and_null_tracks_are_none() {
        let e = parse_ok(
            r#"{"type":"recording.ready-to-download","id":"i",
            "payload":{"recording_id":"r1","room_name":"room","type":"raw-tracks","s3_key":"d/room/1",
            "tracks":[{"type":"audio","s3Key":"d/room/1-a-cam-audio-5","size":10},
                      {"type":"video","s3Key":"d/room/1-a-cam-video-5","size":20},
                      {"type":"audio","s3key":"d/room/1-b-cam-audio-7"}]}}"#,
        );
        let EventKind::RecordingReady(r) = e.kind else {
            panic!()
        };
        assert_eq!(
            r.location,
            RecordingLocation::Tracks(Some(vec![
                Cow::Borrowed("d/room/1-a-cam-audio-5"),
                Cow::Borrowed("d/room/1-b-cam-audio-7"),
            ]))
        );
        let e = parse_ok(
            r#"{"type":"recording.ready-to-download","id":"i",
            "payload":{"recording_id":"r1","room_name":"room","type":"raw-tracks","tracks":null}}"#,
        );
        let EventKind::RecordingReady(r) = e.kind else {
            panic!()
        };
        assert_eq!(r.location, RecordingLocation::Tracks(None));
    }

    #[test]
    fn seed_recording_ready_carries_the_download_url() {
        let e = parse_ok(
            r#"{"type":"recording.ready-to-download","id":"evt_recording_ready_1640995200","ts":1640995200000,
            "data":{"room":{"name":"test-room-123-abc"},"recording":{"id":"recording-789","status":"finished",
            "download_url":"https://bucket.s3.amazonaws.com/recording.mp4","start_time":"2025-01-01T10:00:00Z","duration":1800}}}"#,
        );
        let EventKind::RecordingReady(r) = e.kind else {
            panic!()
        };
        assert_eq!(r.recording_id, "recording-789");
        assert_eq!(
            r.location,
            RecordingLocation::Url(Cow::Borrowed(
                "https://bucket.s3.amazonaws.com/recording.mp4"
            ))
        );
    }

    #[test]
    fn recording_started_without_room_name_still_parses() {
        let e = parse_ok(
            r#"{"version":"1.0.0","type":"recording.started","id":"rs",
            "payload":{"recording_id":"r1","action":"start-cloud-recording","start_ts":1}}"#,
        );
        assert_eq!(
            e.kind,
            EventKind::RecordingStarted {
                room: None,
                recording_id: Cow::Borrowed("r1")
            }
        );
    }

    #[test]
    fn recording_error_reads_the_message_in_both_formats() {
        let real = parse_ok(
            r#"{"type":"recording.error","id":"x","payload":{"action":"clourd-recording-err",
            "error_msg":"disk full","instance_id":"i","room_name":"room","timestamp":1}}"#,
        );
        assert_eq!(
            real.kind,
            EventKind::RecordingError {
                room: Some(Cow::Borrowed("room")),
                recording_id: None,
                message: Cow::Borrowed("disk full")
            }
        );
        let seed = parse_ok(
            r#"{"type":"recording.error","id":"y","ts":1,
            "data":{"room":{"name":"room"},"recording":{"id":"r2","error":"boom"}}}"#,
        );
        assert_eq!(
            seed.kind,
            EventKind::RecordingError {
                room: Some(Cow::Borrowed("room")),
                recording_id: Some(Cow::Borrowed("r2")),
                message: Cow::Borrowed("boom")
            }
        );
    }

    #[test]
    fn unknown_types_parse_whatever_their_payload() {
        let e =
            parse_ok(r#"{"type":"transcript.started","id":"t","payload":{"room":42,"x":[null]}}"#);
        assert_eq!(e.kind, EventKind::Unknown);
        assert_eq!(e.event_type, "transcript.started");
        assert_eq!(e.format, Format::Real);
    }

    #[test]
    fn meeting_events_are_understood() {
        let e = parse_ok(
            r#"{"type":"meeting.ended","id":"m","payload":{"room":"r","meeting_id":"mm","start_ts":1,"end_ts":2},"event_ts":3}"#,
        );
        assert_eq!(
            e.kind,
            EventKind::MeetingEnded {
                room: Some(Cow::Borrowed("r"))
            }
        );
    }

    #[test]
    fn malformed_bodies_are_parse_errors() {
        for (body, want) in [
            ("not json", "valid webhook envelope"),
            (r#"{"id":"x"}"#, "valid webhook envelope"),
            (r#"{"type":"participant.joined"}"#, "lacks id"),
            (r#"{"type":"participant.joined","id":""}"#, "lacks id"),
            (r#"{"type":"participant.joined","id":"x"}"#, "lacks payload"),
            (
                r#"{"type":"participant.joined","id":"x","payload":{"session_id":"s"}}"#,
                "lacks room",
            ),
            (
                r#"{"type":"participant.joined","id":"x","payload":{"room":"r"}}"#,
                "lacks session_id",
            ),
            (
                r#"{"type":"participant.joined","id":"x","payload":{"room":5,"session_id":"s"}}"#,
                "valid webhook envelope",
            ),
            (
                r#"{"type":"recording.ready-to-download","id":"x","payload":{"room_name":"r"}}"#,
                "lacks recording_id",
            ),
            (
                r#"{"type":"recording.started","id":"x","payload":{"recording_id":"r"},"event_ts":1e300}"#,
                "event_ts",
            ),
            (r#"{"type":1,"id":"x"}"#, "valid webhook envelope"),
        ] {
            let err = parse(body.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(want), "{body}: {err}");
        }
    }
}
