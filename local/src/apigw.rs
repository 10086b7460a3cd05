//! Turns a local HTTP request into the API Gateway HTTP API (payload 2.0) event that Lambda
//! would deliver, then into the `lambda_http::Request` the function sees in AWS, by the same
//! deserialisation the Lambda runtime uses.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use base64::Engine;
use chrono::Utc;
use http::request::Parts;
use lambda_http::Request;
use serde_json::{json, Value};

use crate::routes::Matched;

/// The HTTP API v2 event for this request, as JSON.
pub fn v2_event(
    parts: &Parts,
    body: &[u8],
    matched: &Matched<'_>,
    peer: Option<SocketAddr>,
) -> Value {
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    let mut cookies = Vec::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name == http::header::COOKIE {
            cookies.extend(
                value
                    .split(';')
                    .map(|c| c.trim().to_owned())
                    .filter(|c| !c.is_empty()),
            );
            continue;
        }
        // API Gateway joins repeated headers with commas and lowercases names.
        headers
            .entry(name.as_str().to_owned())
            .and_modify(|v| {
                v.push(',');
                v.push_str(&value);
            })
            .or_insert(value);
    }
    let raw_query = parts.uri.query().unwrap_or("").to_owned();
    let mut query: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in url::form_urlencoded::parse(raw_query.as_bytes()) {
        query
            .entry(k.into_owned())
            .and_modify(|existing| {
                existing.push(',');
                existing.push_str(&v);
            })
            .or_insert_with(|| v.into_owned());
    }
    let path_parameters: BTreeMap<_, _> = matched.path_parameters.iter().cloned().collect();
    let route_key = format!("{} {}", matched.route.method, matched.route.path);
    // API Gateway passes text bodies as they are and base64-encodes anything else.
    let (body, is_base64) = match std::str::from_utf8(body) {
        _ if body.is_empty() => (Value::Null, false),
        Ok(text) => (Value::String(text.to_owned()), false),
        Err(_) => (
            Value::String(base64::engine::general_purpose::STANDARD.encode(body)),
            true,
        ),
    };
    let now = Utc::now();
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": parts.uri.path(),
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": headers_host(&parts.headers),
            "domainPrefix": "local",
            "http": {
                "method": parts.method.as_str(),
                "path": parts.uri.path(),
                "protocol": format!("{:?}", parts.version),
                "sourceIp": peer.map(|p| p.ip().to_string()).unwrap_or_else(|| "127.0.0.1".into()),
                "userAgent": parts.headers.get(http::header::USER_AGENT)
                    .and_then(|v| v.to_str().ok()).unwrap_or(""),
            },
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": route_key,
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
            "timeEpoch": now.timestamp_millis(),
        },
        "isBase64Encoded": is_base64,
    });
    if !cookies.is_empty() {
        event["cookies"] = json!(cookies);
    }
    if !query.is_empty() {
        event["queryStringParameters"] = json!(query);
    }
    if !path_parameters.is_empty() {
        event["pathParameters"] = json!(path_parameters);
    }
    if !body.is_null() {
        event["body"] = body;
    }
    event
}

fn headers_host(headers: &http::HeaderMap) -> String {
    headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost")
        .to_owned()
}

/// Deserialises the event exactly as the Lambda runtime would for the function.
pub fn to_lambda_request(event: &Value) -> Result<Request, serde_json::Error> {
    lambda_http::request::from_str(&event.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::{lookup, routes, Lookup};
    use lambda_http::RequestExt;

    fn parts(method: &str, uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = http::Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn request_carries_path_and_query_parameters_headers_and_body() {
        let routes = routes();
        let p = parts(
            "POST",
            "/v1/rooms/team%2Da/meeting?x=1&x=2&y=z",
            &[
                ("content-type", "application/json"),
                ("x-a", "1"),
                ("x-a", "2"),
            ],
        );
        let Lookup::Found(m) = lookup(&routes, &p.method, p.uri.path()) else {
            panic!("no route")
        };
        let event = v2_event(&p, br#"{"a":1}"#, &m, None);
        assert_eq!(event["routeKey"], "POST /v1/rooms/{room_name}/meeting");
        let req = to_lambda_request(&event).unwrap();
        assert_eq!(req.method(), http::Method::POST);
        assert_eq!(req.uri().path(), "/v1/rooms/team%2Da/meeting");
        assert_eq!(req.path_parameters().first("room_name"), Some("team-a"));
        assert_eq!(req.query_string_parameters().all("x"), Some(vec!["1", "2"]));
        assert_eq!(req.query_string_parameters().first("y"), Some("z"));
        assert_eq!(req.headers()["x-a"], "1,2");
        assert_eq!(req.body().as_ref(), br#"{"a":1}"#);
    }

    #[test]
    fn binary_bodies_arrive_decoded() {
        let routes = routes();
        let p = parts("POST", "/v1/daily_webhook", &[]);
        let Lookup::Found(m) = lookup(&routes, &p.method, p.uri.path()) else {
            panic!("no route")
        };
        let bytes = [0u8, 159, 146, 150, 255];
        let event = v2_event(&p, &bytes, &m, None);
        assert_eq!(event["isBase64Encoded"], true);
        let req = to_lambda_request(&event).unwrap();
        assert_eq!(req.body().as_ref(), &bytes);
    }
}
