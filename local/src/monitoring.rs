//! The alarms and the dashboard of template.yaml against the metrics the code emits
//! (`shared::metrics`): every alarm issue 20 asks for exists, and every custom metric an alarm
//! or a dashboard widget reads is one the code records, under dimensions it sets. A renamed
//! metric would otherwise leave an alarm silently watching nothing.

use std::collections::BTreeSet;

use serde_norway::Value;
use shared::domain::Platform;
use shared::metrics::{Function, Metric, FUNCTION_DIMENSION, NAMESPACE, PLATFORM_DIMENSION};

/// A metric an alarm reads: namespace, name and `(dimension, value)` pairs.
type AlarmMetric = (String, String, Vec<(String, String)>);

/// template.yaml, parsed (the template checks of this crate read it through here).
pub(crate) fn template() -> Value {
    serde_norway::from_str(include_str!("../../template.yaml")).expect("template.yaml parses")
}

/// The template's Lambda functions: logical id and resource, in template order.
pub(crate) fn functions(template: &Value) -> Vec<(String, &Value)> {
    template["Resources"]
        .as_mapping()
        .expect("template.yaml has resources")
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|(id, r)| (id.as_str().expect("a logical id").to_owned(), r))
        .collect()
}

/// A CloudFormation value without its tag (`!Ref X` is `X`).
pub(crate) fn untagged(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => &t.value,
        other => other,
    }
}

/// `(namespace, metric name, [(dimension, value)])` of each metric an alarm reads: its own
/// metric, or every `MetricStat` of its metric math. Values that are references (`!Ref`) are
/// written `!Ref <name>`.
fn alarm_metrics(alarm: &Value) -> Vec<AlarmMetric> {
    let props = &alarm["Properties"];
    let mut metrics = Vec::new();
    let mut push = |m: &Value| {
        let dims = m["Dimensions"]
            .as_sequence()
            .map(|ds| {
                ds.iter()
                    .map(|d| {
                        let value = match &d["Value"] {
                            Value::Tagged(t) => {
                                format!("{} {}", t.tag, t.value.as_str().unwrap_or("?"))
                            }
                            v => v.as_str().unwrap_or("?").to_owned(),
                        };
                        (d["Name"].as_str().unwrap().to_owned(), value)
                    })
                    .collect()
            })
            .unwrap_or_default();
        metrics.push((
            m["Namespace"].as_str().unwrap().to_owned(),
            m["MetricName"].as_str().unwrap().to_owned(),
            dims,
        ));
    };
    if props["MetricName"].is_string() {
        push(props);
    }
    for query in props["Metrics"].as_sequence().into_iter().flatten() {
        if query["MetricStat"].is_mapping() {
            push(&query["MetricStat"]["Metric"]);
        }
    }
    metrics
}

fn alarms(template: &Value) -> Vec<(String, Value)> {
    template["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::CloudWatch::Alarm"))
        .map(|(id, r)| (id.as_str().unwrap().to_owned(), r.clone()))
        .collect()
}

fn emitted(name: &str) -> bool {
    Metric::ALL.iter().any(|m| m.name() == name)
}

/// Custom metrics are read in our namespace, by a name the code emits, with dimensions the code
/// sets and values it uses.
fn check_custom(where_: &str, name: &str, dims: &[(String, String)]) {
    assert!(emitted(name), "{where_}: {name} is not in shared::metrics");
    for (dim, value) in dims {
        match dim.as_str() {
            FUNCTION_DIMENSION => assert!(
                Function::ALL.iter().any(|f| f.as_str() == value),
                "{where_}: no function is named {value}"
            ),
            PLATFORM_DIMENSION => assert!(
                value.parse::<Platform>().is_ok(),
                "{where_}: no platform is named {value}"
            ),
            "Reason" | "Failure" => {}
            other => panic!("{where_}: the code sets no dimension {other}"),
        }
    }
}

#[test]
fn the_alarms_issue_20_asks_for_exist_and_read_metrics_the_code_emits() {
    let template = template();
    let alarms = alarms(&template);
    let find = |id: &str| {
        alarms
            .iter()
            .find(|(a, _)| a == id)
            .map(|(_, alarm)| alarm_metrics(alarm))
            .unwrap_or_else(|| panic!("template.yaml has no alarm {id}"))
    };
    let names = |metrics: &[AlarmMetric]| -> BTreeSet<(String, String)> {
        metrics
            .iter()
            .map(|(ns, name, _)| (ns.clone(), name.clone()))
            .collect()
    };
    let pair = |ns: &str, name: &str| (ns.to_owned(), name.to_owned());

    assert_eq!(
        names(&find("RecordingsDlqNotEmptyAlarm")),
        [pair("AWS/SQS", "ApproximateNumberOfMessagesVisible")].into()
    );
    assert_eq!(
        names(&find("WebhookRejectionsAlarm")),
        [pair(NAMESPACE, Metric::WebhookRejected.name())].into()
    );
    assert_eq!(
        names(&find("PipelineSilenceAlarm")),
        [
            pair(NAMESPACE, Metric::ParticipantJoined.name()),
            pair(NAMESPACE, Metric::PipelineMessageSent.name())
        ]
        .into()
    );
    assert_eq!(
        names(&find("DailyWebhookRearmedAlarm")),
        [pair(NAMESPACE, Metric::WebhookRearmed.name())].into()
    );
    // Both webhooks' rejections are summed, so a wrong secret on either platform shows.
    let rejected_by: BTreeSet<_> = find("WebhookRejectionsAlarm")
        .into_iter()
        .flat_map(|(_, _, dims)| dims)
        .filter(|(d, _)| d == PLATFORM_DIMENSION)
        .map(|(_, v)| v)
        .collect();
    assert_eq!(
        rejected_by,
        ["daily".to_owned(), "whereby".to_owned()].into()
    );

    // Every function has an error-rate alarm over its own Errors and Invocations.
    let functions: Vec<String> = functions(&template).into_iter().map(|(id, _)| id).collect();
    assert!(functions.len() >= 6, "{functions:?}");
    for function in &functions {
        let id = format!("{}ErrorRateAlarm", function.trim_end_matches("Function"));
        let metrics = find(&id);
        assert_eq!(
            names(&metrics),
            [
                pair("AWS/Lambda", "Errors"),
                pair("AWS/Lambda", "Invocations")
            ]
            .into(),
            "{id}"
        );
        for (_, _, dims) in &metrics {
            assert_eq!(
                dims,
                &vec![("FunctionName".to_owned(), format!("!Ref {function}"))],
                "{id}"
            );
        }
    }

    // And whatever else an alarm reads in our namespace is emitted.
    for (id, alarm) in &alarms {
        for (ns, name, dims) in alarm_metrics(alarm) {
            if ns == NAMESPACE {
                check_custom(id, &name, &dims);
            } else {
                assert!(ns.starts_with("AWS/"), "{id}: unknown namespace {ns}");
            }
        }
    }
}

#[test]
fn every_alarm_notifies_the_topic_when_one_is_given() {
    let template = template();
    for (id, alarm) in alarms(&template) {
        let actions = untagged(&alarm["Properties"]["AlarmActions"]);
        let text = serde_norway::to_string(actions).unwrap();
        assert!(
            text.contains("HasAlarmTopic") && text.contains("AlarmTopicArn"),
            "{id}: {text}"
        );
    }
}

#[test]
fn the_dashboard_reads_only_metrics_the_code_emits() {
    let template = template();
    let body = untagged(&template["Resources"]["Dashboard"]["Properties"]["DashboardBody"])
        .as_str()
        .expect("the dashboard body is a !Sub string");
    // `${...}` are Sub's variables (function names, region, queues): any string will do here.
    let mut json = String::new();
    let mut rest = body;
    while let Some(start) = rest.find("${") {
        json.push_str(&rest[..start]);
        let end = rest[start..].find('}').unwrap() + start;
        json.push_str("sub");
        rest = &rest[end + 1..];
    }
    json.push_str(rest);
    let dashboard: serde_json::Value = serde_json::from_str(&json).expect("the body is JSON");
    let mut custom = 0;
    for widget in dashboard["widgets"].as_array().unwrap() {
        for metric in widget["properties"]["metrics"].as_array().unwrap() {
            let parts = metric.as_array().unwrap();
            if parts[0] == NAMESPACE {
                let name = parts[1].as_str().unwrap();
                let dims: Vec<(String, String)> = parts[2..]
                    .chunks(2)
                    .filter_map(|c| match c {
                        [serde_json::Value::String(k), serde_json::Value::String(v)] => {
                            Some((k.clone(), v.clone()))
                        }
                        _ => None,
                    })
                    .collect();
                check_custom(
                    &format!("dashboard {}", widget["properties"]["title"]),
                    name,
                    &dims,
                );
                custom += 1;
            } else if let Some(expression) = parts[0]["expression"].as_str() {
                for emitted_name in expression
                    .split("MetricName=\"")
                    .skip(1)
                    .filter_map(|s| s.split('"').next())
                {
                    assert!(emitted(emitted_name), "dashboard search: {emitted_name}");
                }
            }
        }
    }
    assert!(custom > 10, "the dashboard shows our metrics");
}
