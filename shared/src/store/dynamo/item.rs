//! Small conversions between domain values and DynamoDB attributes. Reading never panics: a
//! missing or mistyped attribute is a `StoreError::Corrupt` naming the item and the attribute.
//!
//! Why by hand and not `serde_dynamo` (as the runtime's `http-dynamodb` example does): the items
//! are not the domain types' serde shape. Timestamps are fixed-width nanosecond strings so that
//! string order is time order in sort keys and conditions; items carry attributes no domain
//! field has (GSI keys such as the active-meetings index, markers, requeue claims), and most
//! writes are `UpdateItem`/condition expressions over a few attributes, where a whole-struct mapping does not help. Switching would mean serde
//! attributes on the domain types for storage concerns, or mirror structs as long as this file,
//! with no change in requests or attribute names to show for it.

use std::collections::HashMap;
use std::str::FromStr;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, SecondsFormat, Utc};

use crate::store::StoreError;

pub(crate) type Item = HashMap<String, AttributeValue>;

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn b(v: bool) -> AttributeValue {
    AttributeValue::Bool(v)
}

/// A string set; `None` for no values, since DynamoDB refuses an empty set (leave it out).
pub(crate) fn ss<I, T>(values: I) -> Option<AttributeValue>
where
    I: IntoIterator<Item = T>,
    T: ToString,
{
    let values: Vec<String> = values.into_iter().map(|v| v.to_string()).collect();
    (!values.is_empty()).then_some(AttributeValue::Ss(values))
}

/// Fixed-width RFC 3339 (nanoseconds, `Z`): string order is time order, and values round-trip.
pub(crate) fn ts_string(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

pub(crate) fn ts(t: DateTime<Utc>) -> AttributeValue {
    s(ts_string(t))
}

/// Reads typed attributes out of one item.
pub(crate) struct Reader<'a> {
    item: &'a Item,
    entity: &'static str,
    id: String,
}

impl<'a> Reader<'a> {
    /// `id_attr` names the attribute used to identify the item in error messages.
    pub fn new(item: &'a Item, entity: &'static str, id_attr: &str) -> Self {
        let id = match item.get(id_attr).or_else(|| item.get("pk")) {
            Some(AttributeValue::S(v)) => v.clone(),
            _ => "<unknown>".to_owned(),
        };
        Self { item, entity, id }
    }

    /// For items that lack their own id (attributes returned by a write).
    pub fn with_id(item: &'a Item, entity: &'static str, id: &str) -> Self {
        Self {
            item,
            entity,
            id: id.to_owned(),
        }
    }

    pub fn corrupt(&self, reason: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            entity: self.entity,
            id: self.id.clone(),
            reason: reason.into(),
        }
    }

    pub fn opt_s(&self, name: &str) -> Result<Option<String>, StoreError> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::S(v)) => Ok(Some(v.clone())),
            Some(_) => Err(self.corrupt(format!("attribute {name} is not a string"))),
        }
    }

    pub fn s(&self, name: &str) -> Result<String, StoreError> {
        self.opt_s(name)?
            .ok_or_else(|| self.corrupt(format!("attribute {name} is missing")))
    }

    pub fn bool(&self, name: &str) -> Result<bool, StoreError> {
        match self.item.get(name) {
            Some(AttributeValue::Bool(v)) => Ok(*v),
            None => Err(self.corrupt(format!("attribute {name} is missing"))),
            Some(_) => Err(self.corrupt(format!("attribute {name} is not a boolean"))),
        }
    }

    /// A boolean that items written before the attribute existed lack: `default` then.
    pub fn bool_or(&self, name: &str, default: bool) -> Result<bool, StoreError> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(default),
            Some(_) => self.bool(name),
        }
    }

    /// A string set (`SS`), parsed element by element; absent is empty (DynamoDB has no empty
    /// sets).
    pub fn string_set<T>(&self, name: &str) -> Result<std::collections::BTreeSet<T>, StoreError>
    where
        T: FromStr + Ord,
        T::Err: std::fmt::Display,
    {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(Default::default()),
            Some(AttributeValue::Ss(values)) => values
                .iter()
                .map(|v| {
                    v.parse()
                        .map_err(|e| self.corrupt(format!("attribute {name}: {e}")))
                })
                .collect(),
            Some(_) => Err(self.corrupt(format!("attribute {name} is not a string set"))),
        }
    }

    pub fn opt_i64(&self, name: &str) -> Result<Option<i64>, StoreError> {
        match self.item.get(name) {
            None => Ok(None),
            Some(AttributeValue::N(v)) => v
                .parse()
                .map(Some)
                .map_err(|_| self.corrupt(format!("attribute {name} is not an integer: {v}"))),
            Some(_) => Err(self.corrupt(format!("attribute {name} is not a number"))),
        }
    }

    pub fn i64(&self, name: &str) -> Result<i64, StoreError> {
        self.opt_i64(name)?
            .ok_or_else(|| self.corrupt(format!("attribute {name} is missing")))
    }

    pub fn opt_ts(&self, name: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        match self.opt_s(name)? {
            None => Ok(None),
            Some(v) => DateTime::parse_from_rfc3339(&v)
                .map(|t| Some(t.with_timezone(&Utc)))
                .map_err(|e| self.corrupt(format!("attribute {name} is not a timestamp: {e}"))),
        }
    }

    pub fn ts(&self, name: &str) -> Result<DateTime<Utc>, StoreError> {
        self.opt_ts(name)?
            .ok_or_else(|| self.corrupt(format!("attribute {name} is missing")))
    }

    /// A string attribute parsed with `FromStr` (the domain enums).
    pub fn parse<T>(&self, name: &str) -> Result<T, StoreError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        let v = self.s(name)?;
        v.parse()
            .map_err(|e| self.corrupt(format!("attribute {name}: {e}")))
    }
}

/// Reads an `S` attribute from an item returned by a write or a cancellation reason.
pub(crate) fn string_attr<'a>(item: Option<&'a Item>, name: &str) -> Option<&'a str> {
    match item?.get(name)? {
        AttributeValue::S(v) => Some(v.as_str()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn timestamps_sort_as_strings_in_time_order_and_round_trip_exactly() {
        let early = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        let late = early + chrono::Duration::nanoseconds(1_500);
        assert!(ts_string(early) < ts_string(late));
        assert_eq!(ts_string(early), "2026-01-02T03:04:05.000000000Z");
        let item: Item = [("t".to_owned(), ts(late))].into();
        assert_eq!(Reader::new(&item, "x", "id").ts("t").unwrap(), late);
    }

    #[test]
    fn absent_booleans_and_sets_read_as_their_defaults_and_sets_round_trip() {
        use crate::domain::RecordingKind;
        use std::collections::BTreeSet;
        let item: Item = [("id".to_owned(), s("m1"))].into();
        let r = Reader::new(&item, "meeting", "id");
        assert!(!r.bool_or("skip_consent", false).unwrap());
        assert!(r.string_set::<RecordingKind>("kinds").unwrap().is_empty());
        assert_eq!(ss(Vec::<String>::new()), None);
        let kinds = BTreeSet::from([RecordingKind::Cloud, RecordingKind::RawTracks]);
        let item: Item = [
            ("id".to_owned(), s("m1")),
            ("kinds".to_owned(), ss(&kinds).unwrap()),
            ("flag".to_owned(), b(true)),
            ("bad".to_owned(), AttributeValue::Ss(vec!["local".into()])),
        ]
        .into();
        let r = Reader::new(&item, "meeting", "id");
        assert_eq!(r.string_set::<RecordingKind>("kinds").unwrap(), kinds);
        assert!(r.bool_or("flag", false).unwrap());
        assert!(matches!(
            r.string_set::<RecordingKind>("bad"),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn mistyped_attributes_are_corrupt_not_panics() {
        let item: Item = [
            ("id".to_owned(), s("r1")),
            ("n".to_owned(), s("seven")),
            ("t".to_owned(), s("yesterday")),
        ]
        .into();
        let r = Reader::new(&item, "room", "id");
        for err in [
            r.i64("n").unwrap_err(),
            r.ts("t").unwrap_err(),
            r.bool("missing").unwrap_err(),
            r.parse::<crate::domain::Platform>("n").unwrap_err(),
        ] {
            assert!(
                matches!(&err, StoreError::Corrupt { entity: "room", id, .. } if id == "r1"),
                "{err:?}"
            );
        }
    }
}
