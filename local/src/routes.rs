//! The API Gateway routes of the SAM template and which function serves each. A test checks
//! that this table and template.yaml's HttpApi events stay the same.

use http::Method;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    RoomsApi,
    DailyWebhook,
    WherebyWebhook,
}

impl Function {
    /// The function's logical id in template.yaml.
    pub fn logical_id(self) -> &'static str {
        match self {
            Function::RoomsApi => "RoomsApiFunction",
            Function::DailyWebhook => "DailyWebhookFunction",
            Function::WherebyWebhook => "WherebyWebhookFunction",
        }
    }
}

pub struct Route {
    pub method: Method,
    /// API Gateway route path, with `{name}` parameters.
    pub path: &'static str,
    pub function: Function,
}

pub fn routes() -> Vec<Route> {
    use Function::*;
    let r = |method: Method, path, function| Route {
        method,
        path,
        function,
    };
    vec![
        r(Method::GET, "/v1/rooms", RoomsApi),
        r(Method::POST, "/v1/rooms", RoomsApi),
        r(Method::PATCH, "/v1/rooms/{room_id}", RoomsApi),
        r(Method::DELETE, "/v1/rooms/{room_id}", RoomsApi),
        r(Method::POST, "/v1/rooms/{room_name}/meeting", RoomsApi),
        r(Method::POST, "/v1/meetings/{meeting_id}/consent", RoomsApi),
        r(Method::POST, "/v1/daily_webhook", DailyWebhook),
        r(Method::POST, "/v1/whereby", WherebyWebhook),
    ]
}

/// A matched route: the route and its path parameters.
pub struct Matched<'a> {
    pub route: &'a Route,
    pub path_parameters: Vec<(String, String)>,
}

pub enum Lookup<'a> {
    Found(Matched<'a>),
    /// The path exists with other methods (API Gateway answers 404 too, but a 405 with the
    /// allowed methods is more useful locally).
    MethodNotAllowed(Vec<Method>),
    NotFound,
}

/// Matches like API Gateway: literal segments exactly, `{name}` any one non-empty segment;
/// percent-encoded segments are decoded into the parameter value.
pub fn lookup<'a>(routes: &'a [Route], method: &Method, path: &str) -> Lookup<'a> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut allowed = Vec::new();
    for route in routes {
        let template: Vec<&str> = route.path.trim_start_matches('/').split('/').collect();
        if template.len() != segments.len() {
            continue;
        }
        let mut params = Vec::new();
        let matched = template.iter().zip(&segments).all(|(t, s)| {
            if let Some(name) = t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                if s.is_empty() {
                    return false;
                }
                let value = percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned();
                params.push((name.to_owned(), value));
                true
            } else {
                t == s
            }
        });
        if !matched {
            continue;
        }
        if route.method == method {
            return Lookup::Found(Matched {
                route,
                path_parameters: params,
            });
        }
        allowed.push(route.method.clone());
    }
    if allowed.is_empty() {
        Lookup::NotFound
    } else {
        Lookup::MethodNotAllowed(allowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn parameters_are_extracted_and_methods_distinguished() {
        let routes = routes();
        match lookup(&routes, &Method::POST, "/v1/rooms/team-a/meeting") {
            Lookup::Found(m) => {
                assert_eq!(m.route.function, Function::RoomsApi);
                assert_eq!(
                    m.path_parameters,
                    vec![("room_name".into(), "team-a".into())]
                );
            }
            _ => panic!("no match"),
        }
        match lookup(&routes, &Method::PATCH, "/v1/rooms/abc") {
            Lookup::Found(m) => assert_eq!(m.path_parameters[0], ("room_id".into(), "abc".into())),
            _ => panic!("no match"),
        }
        assert!(matches!(
            lookup(&routes, &Method::GET, "/v1/whereby"),
            Lookup::MethodNotAllowed(m) if m == vec![Method::POST]
        ));
        assert!(matches!(
            lookup(&routes, &Method::GET, "/v2/rooms"),
            Lookup::NotFound
        ));
        assert!(matches!(
            lookup(&routes, &Method::PATCH, "/v1/rooms/"),
            Lookup::NotFound
        ));
    }

    /// The local stack must serve exactly the routes API Gateway serves in AWS.
    #[test]
    fn routes_match_the_sam_template() {
        let text = include_str!("../../template.yaml");
        let template: serde_norway::Value = serde_norway::from_str(text).unwrap();
        let mut from_template = BTreeSet::new();
        let resources = template["Resources"].as_mapping().unwrap();
        for (id, resource) in resources {
            let Some(events) = resource["Properties"]["Events"].as_mapping() else {
                continue;
            };
            for event in events.values() {
                if event["Type"].as_str() == Some("HttpApi") {
                    from_template.insert((
                        id.as_str().unwrap().to_owned(),
                        event["Properties"]["Method"].as_str().unwrap().to_owned(),
                        event["Properties"]["Path"].as_str().unwrap().to_owned(),
                    ));
                }
            }
        }
        let ours: BTreeSet<_> = routes()
            .iter()
            .map(|r| {
                (
                    r.function.logical_id().to_owned(),
                    r.method.to_string(),
                    r.path.to_owned(),
                )
            })
            .collect();
        assert_eq!(ours, from_template);
    }
}
