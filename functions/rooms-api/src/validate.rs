//! Request validation with FastAPI/pydantic-shaped 422 bodies:
//! `{"detail":[{"type","loc","msg","input",("ctx")}]}`, every problem reported at once.
//!
//! The rules follow FastAPI's: a JSON body is parsed when the content type is missing or is
//! `application/json` / `application/*+json`; any other content type leaves the raw text, which
//! then is not an object; an empty body is a missing body. Booleans accept pydantic's lax forms
//! (`1`, `"yes"`, ...); strings must be JSON strings; `null` is never accepted for a field.

use serde::Serialize;
use serde_json::{json, Map, Value};

use shared::domain::RoomName;

/// One validation problem, in pydantic v2's shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldError {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub loc: Vec<Value>,
    pub msg: String,
    pub input: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ctx: Option<Value>,
}

impl FieldError {
    fn new(kind: &'static str, loc: Vec<Value>, msg: impl Into<String>, input: Value) -> Self {
        Self {
            kind,
            loc,
            msg: msg.into(),
            input,
            ctx: None,
        }
    }

    fn with_ctx(mut self, ctx: Value) -> Self {
        self.ctx = Some(ctx);
        self
    }
}

trait WithCtx {
    fn ctx(self, ctx: Value) -> Self;
}

impl WithCtx for Box<FieldError> {
    fn ctx(mut self, ctx: Value) -> Self {
        self.ctx = Some(ctx);
        self
    }
}

/// What a field parser answers; boxed because a [`FieldError`] is large.
pub type FieldResult<T> = Result<T, Box<FieldError>>;

/// A request that failed validation: the 422 body's `detail` list.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid(pub Vec<FieldError>);

fn body_loc(field: &str) -> Vec<Value> {
    vec![json!("body"), json!(field)]
}

fn is_json_content_type(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else {
        return true;
    };
    let media = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match media.split_once('/') {
        Some(("application", sub)) => sub == "json" || sub.ends_with("+json"),
        _ => false,
    }
}

/// The body as a JSON object, or the 422 FastAPI would answer.
pub fn json_object(content_type: Option<&str>, body: &[u8]) -> Result<Map<String, Value>, Invalid> {
    if body.is_empty() {
        return Err(Invalid(vec![FieldError::new(
            "missing",
            vec![json!("body")],
            "Field required",
            Value::Null,
        )]));
    }
    let value = if is_json_content_type(content_type) {
        match serde_json::from_slice::<Value>(body) {
            Ok(v) => v,
            Err(e) => {
                return Err(Invalid(vec![FieldError::new(
                    "json_invalid",
                    vec![json!("body"), json!(error_position(body, &e))],
                    "JSON decode error",
                    json!({}),
                )
                .with_ctx(json!({ "error": e.to_string() }))]))
            }
        }
    } else {
        Value::String(String::from_utf8_lossy(body).into_owned())
    };
    match value {
        Value::Object(map) => Ok(map),
        other => Err(Invalid(vec![FieldError::new(
            "model_attributes_type",
            vec![json!("body")],
            "Input should be a valid dictionary or object to extract fields from",
            truncate_input(other),
        )])),
    }
}

/// Character offset of a JSON error, as Python's `JSONDecodeError.pos` gives it.
fn error_position(body: &[u8], e: &serde_json::Error) -> usize {
    let text = String::from_utf8_lossy(body);
    let (line, column) = (e.line(), e.column());
    if line == 0 {
        return 0;
    }
    let mut pos = 0;
    for (i, l) in text.split('\n').enumerate() {
        if i + 1 == line {
            return pos + column.saturating_sub(1).min(l.chars().count());
        }
        pos += l.chars().count() + 1;
    }
    pos
}

/// Echoing a huge rejected input back would make the error as large as the request.
fn truncate_input(v: Value) -> Value {
    const MAX: usize = 200;
    match v {
        Value::String(s) if s.chars().count() > MAX => {
            Value::String(s.chars().take(MAX).collect::<String>() + "...")
        }
        other => other,
    }
}

/// Collects field values and errors over one JSON object.
pub struct Fields<'a> {
    map: &'a Map<String, Value>,
    errors: Vec<FieldError>,
}

impl<'a> Fields<'a> {
    pub fn new(map: &'a Map<String, Value>) -> Self {
        Self {
            map,
            errors: Vec::new(),
        }
    }

    pub fn finish(self) -> Result<(), Invalid> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(Invalid(self.errors))
        }
    }

    fn present(&self, field: &str) -> Option<&'a Value> {
        self.map.get(field)
    }

    /// A field that must be present.
    pub fn required<T>(
        &mut self,
        field: &str,
        parse: impl Fn(&Value) -> FieldResult<T>,
    ) -> Option<T> {
        match self.present(field) {
            None => {
                self.errors.push(FieldError::new(
                    "missing",
                    body_loc(field),
                    "Field required",
                    Value::Object(self.map.clone()),
                ));
                None
            }
            Some(v) => self.optional_value(field, v, parse),
        }
    }

    /// A field that may be absent (`None`); present values must parse.
    pub fn optional<T>(
        &mut self,
        field: &str,
        parse: impl Fn(&Value) -> FieldResult<T>,
    ) -> Option<T> {
        let v = self.present(field)?;
        self.optional_value(field, v, parse)
    }

    fn optional_value<T>(
        &mut self,
        field: &str,
        v: &Value,
        parse: impl Fn(&Value) -> FieldResult<T>,
    ) -> Option<T> {
        match parse(v) {
            Ok(t) => Some(t),
            Err(mut e) => {
                e.loc = body_loc(field);
                e.input = truncate_input(v.clone());
                self.errors.push(*e);
                None
            }
        }
    }
}

fn err(kind: &'static str, msg: impl Into<String>) -> Box<FieldError> {
    Box::new(FieldError::new(kind, Vec::new(), msg, Value::Null))
}

/// pydantic's lax boolean.
pub fn boolean(v: &Value) -> FieldResult<bool> {
    const PARSING: &str = "Input should be a valid boolean, unable to interpret input";
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Number(n) => match n.as_f64() {
            Some(0.0) => Ok(false),
            Some(1.0) => Ok(true),
            _ => Err(err("bool_parsing", PARSING)),
        },
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "0" | "off" | "f" | "false" | "n" | "no" => Ok(false),
            "1" | "on" | "t" | "true" | "y" | "yes" => Ok(true),
            _ => Err(err("bool_parsing", PARSING)),
        },
        _ => Err(err("bool_type", "Input should be a valid boolean")),
    }
}

pub fn string(v: &Value) -> FieldResult<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        _ => Err(err("string_type", "Input should be a valid string")),
    }
}

/// A string limited to `max` characters (free-text fields such as the Zulip stream).
pub fn bounded_string(max: usize) -> impl Fn(&Value) -> FieldResult<String> {
    move |v| {
        let s = string(v)?;
        if s.chars().count() > max {
            return Err(err(
                "string_too_long",
                format!("String should have at most {max} characters"),
            )
            .ctx(json!({ "max_length": max })));
        }
        Ok(s)
    }
}

/// One of the enum's names; the message lists them as pydantic does.
pub fn one_of<T: std::str::FromStr>(
    known: &'static [&'static str],
) -> impl Fn(&Value) -> FieldResult<T> {
    move |v| {
        let Value::String(s) = v else {
            return Err(enum_error(known));
        };
        s.parse::<T>().map_err(|_| enum_error(known))
    }
}

fn enum_error(known: &[&str]) -> Box<FieldError> {
    let quoted: Vec<String> = known.iter().map(|k| format!("'{k}'")).collect();
    let expected = match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => String::new(),
    };
    err("enum", format!("Input should be {expected}")).ctx(json!({ "expected": expected }))
}

/// A room name: the length limits in pydantic's words, the platform rules as a value error.
pub fn room_name(v: &Value) -> FieldResult<RoomName> {
    let s = string(v)?;
    if s.is_empty() {
        return Err(err(
            "string_too_short",
            "String should have at least 1 character",
        )
        .ctx(json!({ "min_length": 1 })));
    }
    if s.chars().count() > RoomName::MAX_LEN {
        return Err(err(
            "string_too_long",
            format!(
                "String should have at most {} characters",
                RoomName::MAX_LEN
            ),
        )
        .ctx(json!({ "max_length": RoomName::MAX_LEN })));
    }
    RoomName::parse(&s).map_err(|reason| {
        err("value_error", format!("Value error, {reason}")).ctx(json!({ "error": reason }))
    })
}

/// The error of a `cursor` query parameter that is not one this API gave out.
pub fn invalid_cursor(raw: &str) -> FieldError {
    FieldError::new(
        "value_error",
        vec![json!("query"), json!("cursor")],
        "Value error, not a cursor from next_cursor",
        json!(raw),
    )
}

/// A query parameter that must be a whole number within `min..=max`.
pub fn query_int(
    name: &str,
    raw: Option<&str>,
    default: u32,
    min: u32,
    max: Option<u32>,
    errors: &mut Vec<FieldError>,
) -> u32 {
    let loc = vec![json!("query"), json!(name)];
    let Some(raw) = raw else {
        return default;
    };
    let Ok(n) = raw.trim().parse::<i64>() else {
        errors.push(FieldError::new(
            "int_parsing",
            loc,
            "Input should be a valid integer, unable to parse string as an integer",
            json!(raw),
        ));
        return default;
    };
    if n < i64::from(min) {
        errors.push(
            FieldError::new(
                "greater_than_equal",
                loc,
                format!("Input should be greater than or equal to {min}"),
                json!(raw),
            )
            .with_ctx(json!({ "ge": min })),
        );
        return default;
    }
    if let Some(max) = max {
        if n > i64::from(max) {
            errors.push(
                FieldError::new(
                    "less_than_equal",
                    loc,
                    format!("Input should be less than or equal to {max}"),
                    json!(raw),
                )
                .with_ctx(json!({ "le": max })),
            );
            return default;
        }
    }
    // Pages beyond u32 cannot hold anything; clamp rather than fail.
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::RecordingType;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn invalid_json_reports_the_position_like_python() {
        let Invalid(errs) = json_object(Some("application/json"), b"{\"a\": }").unwrap_err();
        assert_eq!(errs[0].kind, "json_invalid");
        assert_eq!(errs[0].msg, "JSON decode error");
        assert_eq!(errs[0].loc, vec![json!("body"), json!(6)]);
    }

    #[test]
    fn non_json_content_types_are_not_parsed_and_not_objects() {
        let Invalid(errs) = json_object(Some("text/plain"), b"{\"name\":\"a\"}").unwrap_err();
        assert_eq!(errs[0].kind, "model_attributes_type");
        assert_eq!(errs[0].loc, vec![json!("body")]);
        assert!(json_object(Some("application/merge-patch+json"), b"{}").is_ok());
        assert!(json_object(None, b"{}").is_ok());
        assert!(json_object(Some("application/json; charset=utf-8"), b"{}").is_ok());
    }

    #[test]
    fn an_empty_body_is_a_missing_body() {
        let Invalid(errs) = json_object(None, b"").unwrap_err();
        assert_eq!(
            (errs[0].kind, errs[0].msg.as_str()),
            ("missing", "Field required")
        );
        assert_eq!(errs[0].loc, vec![json!("body")]);
    }

    #[test]
    fn json_that_is_not_an_object_is_refused() {
        for body in [&b"[]"[..], b"\"x\"", b"3", b"null"] {
            let Invalid(errs) = json_object(None, body).unwrap_err();
            assert_eq!(errs[0].kind, "model_attributes_type");
        }
    }

    #[test]
    fn every_field_error_is_reported_with_its_location() {
        let map = obj(json!({"is_locked": "perhaps", "recording_type": "tape", "zulip_stream": 3}));
        let mut f = Fields::new(&map);
        f.required("name", room_name);
        f.optional("is_locked", boolean);
        f.optional(
            "recording_type",
            one_of::<RecordingType>(RecordingType::KNOWN),
        );
        f.optional("zulip_stream", string);
        let Invalid(errs) = f.finish().unwrap_err();
        let got: Vec<(&str, Value)> = errs.iter().map(|e| (e.kind, json!(e.loc))).collect();
        assert_eq!(
            got,
            vec![
                ("missing", json!(["body", "name"])),
                ("bool_parsing", json!(["body", "is_locked"])),
                ("enum", json!(["body", "recording_type"])),
                ("string_type", json!(["body", "zulip_stream"])),
            ]
        );
        assert_eq!(errs[2].msg, "Input should be 'none', 'local' or 'cloud'");
        assert_eq!(errs[2].input, json!("tape"));
    }

    #[test]
    fn booleans_accept_pydantic_lax_forms_only() {
        for (v, want) in [
            (json!(true), true),
            (json!(0), false),
            (json!("yes"), true),
            (json!("off"), false),
        ] {
            assert_eq!(boolean(&v).unwrap(), want, "{v}");
        }
        assert_eq!(boolean(&json!(2)).unwrap_err().kind, "bool_parsing");
        assert_eq!(boolean(&json!(null)).unwrap_err().kind, "bool_type");
        assert_eq!(boolean(&json!([])).unwrap_err().kind, "bool_type");
    }

    #[test]
    fn room_names_are_checked_with_length_and_platform_rules() {
        assert_eq!(room_name(&json!("")).unwrap_err().kind, "string_too_short");
        assert_eq!(
            room_name(&json!("a".repeat(101))).unwrap_err().kind,
            "string_too_long"
        );
        assert_eq!(
            room_name(&json!("Has Space")).unwrap_err().kind,
            "value_error"
        );
        assert_eq!(room_name(&json!(7)).unwrap_err().kind, "string_type");
        assert_eq!(room_name(&json!("team-1")).unwrap().as_str(), "team-1");
    }

    #[test]
    fn query_integers_are_parsed_and_bounded() {
        let mut errs = Vec::new();
        assert_eq!(query_int("page", None, 1, 1, None, &mut errs), 1);
        assert_eq!(
            query_int("size", Some("100"), 50, 1, Some(100), &mut errs),
            100
        );
        assert!(errs.is_empty());
        query_int("page", Some("x"), 1, 1, None, &mut errs);
        query_int("page", Some("0"), 1, 1, None, &mut errs);
        query_int("size", Some("101"), 50, 1, Some(100), &mut errs);
        let kinds: Vec<_> = errs.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            ["int_parsing", "greater_than_equal", "less_than_equal"]
        );
        assert_eq!(errs[2].loc, vec![json!("query"), json!("size")]);
    }
}
