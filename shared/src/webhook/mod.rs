//! Webhook bodies of Daily.co and Whereby parsed into one typed event model per platform
//! (DESIGN.md section 4).
//!
//! Pure and allocation-light: events borrow their strings from the raw body (`Cow` only owns
//! when the JSON string had escapes), and nothing here does I/O. Signature verification lives in
//! [`signature`]; handlers verify the raw bytes first and parse afterwards.
//!
//! Parsing is two-pass on purpose: a first pass reads only `type` and `id`, so an event type we
//! do not handle is accepted (200) whatever its payload looks like; only known types get the
//! second, typed pass, where a missing or mistyped field we need is a [`ParseError`] (422).

pub mod daily;
pub mod fixtures;
pub mod pipeline;
#[cfg(test)]
mod props;
pub mod responses;
pub mod signature;
pub mod whereby;

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

/// The largest webhook body a handler accepts; both platforms send a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Why a (signed) webhook body could not be understood. Answered with 422.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("body is not a valid webhook envelope: {0}")]
    Json(String),
    #[error("{event_type} event lacks {field}")]
    MissingField {
        event_type: String,
        field: &'static str,
    },
    #[error("{field} is not a usable timestamp")]
    BadTimestamp { field: &'static str },
}

impl ParseError {
    fn json(e: serde_json::Error) -> Self {
        // serde_json's message names the line and column and the expected type; it never
        // echoes more than a short token of the body, so it is safe to log and answer.
        ParseError::Json(e.to_string())
    }

    fn missing(event_type: &str, field: &'static str) -> Self {
        ParseError::MissingField {
            event_type: event_type.to_owned(),
            field,
        }
    }
}

/// Unix seconds (possibly fractional) to a time; `None` when not finite or out of range.
pub(crate) fn from_unix_seconds(secs: f64) -> Option<DateTime<Utc>> {
    from_unix_millis(secs * 1000.0)
}

/// Unix milliseconds (possibly fractional) to a time; `None` when not finite or out of range.
pub(crate) fn from_unix_millis(ms: f64) -> Option<DateTime<Utc>> {
    // chrono accepts roughly +-262,000 years; anything past i64 milliseconds is garbage anyway.
    if !ms.is_finite() || ms.abs() > 8.0e15 {
        return None;
    }
    DateTime::from_timestamp_millis(ms.trunc() as i64)
}

/// A room reference as the two Daily formats spell it: a plain string (`payload.room`) or an
/// object with a `name` (the seed's `data.room.name`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RoomRef<'a>(pub Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for RoomRef<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = RoomRef<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a room name or an object with a room name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(RoomRef(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(RoomRef(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(RoomRef(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(RoomRef(None))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut name = None;
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    if key == "name" && name.is_none() {
                        name = map.next_value::<Option<CowStr<'a>>>()?.map(|c| c.0);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(RoomRef(name))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// A string that borrows from the body when it can (serde's plain `Cow<str>` always owns).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CowStr<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for CowStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = CowStr<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

/// Moves a `Cow` forward past a prefix without copying when it borrows.
pub(crate) fn strip_prefix_cow<'a>(s: Cow<'a, str>, prefix: char) -> Cow<'a, str> {
    match s {
        Cow::Borrowed(b) => Cow::Borrowed(b.strip_prefix(prefix).unwrap_or(b)),
        Cow::Owned(o) => match o.strip_prefix(prefix) {
            Some(rest) => Cow::Owned(rest.to_owned()),
            None => Cow::Owned(o),
        },
    }
}

/// Non-empty or `None`: an empty room name or id identifies nothing.
pub(crate) fn non_empty(s: Option<CowStr<'_>>) -> Option<Cow<'_, str>> {
    s.map(|c| c.0).filter(|c| !c.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_and_integer_timestamps_convert_and_garbage_does_not() {
        let t = from_unix_seconds(1_708_972_279.96).unwrap();
        assert_eq!(t.timestamp_millis(), 1_708_972_279_960);
        assert_eq!(
            from_unix_millis(1_640_995_200_000.0).unwrap().timestamp(),
            1_640_995_200
        );
        assert!(from_unix_seconds(f64::NAN).is_none());
        assert!(from_unix_seconds(f64::INFINITY).is_none());
        assert!(from_unix_seconds(1e300).is_none());
    }

    #[test]
    fn room_ref_reads_a_string_or_an_object_name() {
        let r: RoomRef = serde_json::from_str(r#""abc""#).unwrap();
        assert_eq!(r.0.as_deref(), Some("abc"));
        let r: RoomRef = serde_json::from_str(r#"{"id":1,"name":"xyz","x":[1]}"#).unwrap();
        assert_eq!(r.0.as_deref(), Some("xyz"));
        let r: RoomRef = serde_json::from_str("null").unwrap();
        assert_eq!(r.0, None);
        assert!(serde_json::from_str::<RoomRef>("12").is_err());
    }

    #[test]
    fn strings_borrow_from_the_body_unless_escaped() {
        let c: CowStr = serde_json::from_str(r#""plain""#).unwrap();
        assert!(matches!(c.0, Cow::Borrowed("plain")));
        let c: CowStr = serde_json::from_str(r#""a\"b""#).unwrap();
        assert!(matches!(c.0, Cow::Owned(ref s) if s == "a\"b"));
    }
}
