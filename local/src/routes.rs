//! Which function serves which API Gateway route: each HTTP function's own route table with the
//! function's logical id in template.yaml. The local server merges the functions' routers, so
//! it serves exactly these routes; a test checks them against the template's HttpApi events.
//! Paths are written as axum writes them; API Gateway's greedy `{name+}` is axum's `{*name}`.

use http::Method;
use shared::http::Route;

/// `(logical id in template.yaml, method, path)` of every route of every HTTP function.
pub fn declared() -> Vec<(&'static str, Method, &'static str)> {
    fn of<S>(
        logical_id: &'static str,
        routes: &[Route<S>],
    ) -> Vec<(&'static str, Method, &'static str)> {
        routes
            .iter()
            .map(|r| (logical_id, r.method.clone(), r.path))
            .collect()
    }
    [
        of("RoomsApiFunction", rooms_api::handler::ROUTES),
        of("DailyWebhookFunction", daily_webhook::handler::ROUTES),
        of("WherebyWebhookFunction", whereby_webhook::handler::ROUTES),
        of("RoomPageFunction", room_page::ROUTES),
    ]
    .concat()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// API Gateway in AWS and the local server must serve the same routes with the same
    /// functions: every route of the routers is an HttpApi event of its function, and back.
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
                        axum_path(event["Properties"]["Path"].as_str().unwrap()),
                    ));
                }
            }
        }
        let ours: BTreeSet<_> = declared()
            .into_iter()
            .map(|(id, method, path)| (id.to_owned(), method.to_string(), path.to_owned()))
            .collect();
        assert_eq!(ours.len(), declared().len(), "a route is declared twice");
        assert_eq!(ours, from_template);
    }

    /// The OpenAPI document names every `/v1` route of the routers with its method, and no
    /// other: an added route without its documentation (or a documented route that went away)
    /// fails here.
    #[test]
    fn the_openapi_document_has_every_api_route_and_no_other() {
        let doc: serde_json::Value = serde_json::from_str(rooms_api::handler::OPENAPI).unwrap();
        assert_eq!(doc["openapi"].as_str().map(|v| &v[..4]), Some("3.1."));
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
        let routed: BTreeSet<_> = declared()
            .into_iter()
            .filter(|(_, _, path)| path.starts_with("/v1/"))
            .map(|(_, method, path)| (method.to_string(), path.to_owned()))
            .collect();
        assert_eq!(documented, routed);
        // Every reference resolves.
        let text = rooms_api::handler::OPENAPI;
        for reference in text.split("\"#/components/schemas/").skip(1) {
            let name = &reference[..reference.find('"').unwrap()];
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "unresolved schema {name}"
            );
        }
        // Every link (scripts/api-fuzz follows them) names an operation and only its parameters.
        let operations: Vec<&serde_json::Value> = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|item| item.as_object().unwrap().values())
            .collect();
        let mut links = 0;
        for operation in &operations {
            for response in operation["responses"].as_object().unwrap().values() {
                let Some(named) = response["links"].as_object() else {
                    continue;
                };
                for (name, link) in named {
                    links += 1;
                    let target = operations
                        .iter()
                        .find(|o| o["operationId"] == link["operationId"])
                        .unwrap_or_else(|| {
                            panic!("link {name}: no operation {}", link["operationId"])
                        });
                    for parameter in link["parameters"].as_object().unwrap().keys() {
                        assert!(
                            target["parameters"]
                                .as_array()
                                .is_some_and(|ps| ps.iter().any(|p| p["name"] == **parameter)),
                            "link {name}: {} has no parameter {parameter}",
                            link["operationId"]
                        );
                    }
                }
            }
        }
        assert!(
            links > 0,
            "the created room and meeting link to their operations"
        );
    }

    /// API Gateway's greedy parameter `{proxy+}` as axum writes it, `{*proxy}`.
    fn axum_path(api_gateway: &str) -> String {
        api_gateway
            .split('/')
            .map(
                |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix("+}")) {
                    Some(name) => format!("{{*{name}}}"),
                    None => segment.to_owned(),
                },
            )
            .collect::<Vec<_>>()
            .join("/")
    }

    #[test]
    fn greedy_api_gateway_parameters_become_axum_wildcards() {
        assert_eq!(
            axum_path("/assets/{version}/{proxy+}"),
            "/assets/{version}/{*proxy}"
        );
        assert_eq!(axum_path("/v1/rooms/{room_id}"), "/v1/rooms/{room_id}");
    }
}
