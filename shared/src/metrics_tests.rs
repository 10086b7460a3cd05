use super::*;

fn parse(line: &str) -> Value {
    serde_json::from_str(line).expect("an EMF line is one JSON object")
}

/// The EMF document of `sample`, checked against the specification's rules: every dimension
/// key and every metric name is a member of the root with a value of the right kind.
fn emf(sample: &Sample<'_>) -> Value {
    let doc = parse(&emf_line(sample, 1_700_000_000_000));
    let directive = &doc["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_000i64);
    assert_eq!(directive["Namespace"], NAMESPACE);
    for set in directive["Dimensions"].as_array().unwrap() {
        for key in set.as_array().unwrap() {
            let key = key.as_str().unwrap();
            assert!(doc[key].is_string(), "dimension {key} has no string value");
        }
    }
    for definition in directive["Metrics"].as_array().unwrap() {
        let name = definition["Name"].as_str().unwrap();
        assert!(doc[name].is_number(), "metric {name} has no value");
    }
    doc
}

#[test]
fn every_metric_serializes_as_emf_with_its_unit() {
    for metric in Metric::ALL {
        let doc = emf(&Sample {
            function: Function::MeetingSweeper,
            platform: Some(Platform::Daily),
            detail: None,
            values: &[(*metric, 3.0)],
        });
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(
            directive["Metrics"],
            json!([{"Name": metric.name(), "Unit": metric.unit().as_str()}])
        );
        assert_eq!(doc[metric.name()], 3.0);
        assert_eq!(
            directive["Dimensions"],
            json!([["Function", "Platform"]]),
            "{metric}"
        );
        assert_eq!(doc["Function"], "meeting-sweeper");
        assert_eq!(doc["Platform"], "daily");
    }
}

#[test]
fn metric_names_are_unique_and_units_are_cloudwatch_units() {
    let names: std::collections::BTreeSet<_> = Metric::ALL.iter().map(|m| m.name()).collect();
    assert_eq!(names.len(), Metric::ALL.len());
    assert_eq!(Metric::RecordingBytes.unit(), Unit::Bytes);
    assert_eq!(Metric::RecordingSeconds.unit(), Unit::Seconds);
    assert_eq!(Metric::WebhookRejected.unit(), Unit::Count);
}

#[test]
fn a_detail_adds_a_second_dimension_set_so_totals_and_breakdowns_both_exist() {
    let doc = emf(&Sample {
        function: Function::DailyWebhook,
        platform: Some(Platform::Daily),
        detail: Some(Detail::Reason(RejectReason::Stale)),
        values: &[(Metric::WebhookRejected, 1.0)],
    });
    assert_eq!(
        doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["Function", "Platform"], ["Function", "Platform", "Reason"]])
    );
    assert_eq!(doc["Reason"], "stale");
}

#[test]
fn a_sample_without_platform_has_the_function_dimension_only() {
    let doc = emf(&Sample {
        function: Function::RecordingProcessor,
        platform: None,
        detail: Some(Detail::Failure(FailureKind::Transient)),
        values: &[(Metric::RecordingFailed, 1.0)],
    });
    assert_eq!(
        doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["Function"], ["Function", "Failure"]])
    );
    assert!(doc.get("Platform").is_none());
}

/// Issue 16's reconciliation reports through [`Metrics::sweeper_run`]: the reconciled count
/// and the re-armed Daily webhook reach the sink under their own names.
#[test]
fn sweeper_counts_reach_the_sink_with_reconciled_and_rearmed() {
    let registry = Arc::new(Registry::default());
    let metrics = Metrics::new(Function::MeetingSweeper, registry.clone());
    metrics.sweeper_run(SweeperCounts {
        deactivated: 2,
        requeued: 1,
        reconciled: 4,
        webhooks_rearmed: 1,
    });
    let sum = |m| registry.sum_where(m, |_| true);
    assert_eq!(sum(Metric::SweeperDeactivated), 2.0);
    assert_eq!(sum(Metric::SweeperRequeued), 1.0);
    assert_eq!(sum(Metric::SweeperReconciled), 4.0);
    assert_eq!(
        registry.sum_where(Metric::WebhookRearmed, |k| k.platform
            == Some(Platform::Daily)
            && k.function == Function::MeetingSweeper),
        1.0
    );
}

#[test]
fn sweeper_run_lines_serialize_as_emf() {
    // The same values through the EMF sink's serializer.
    struct Lines(Mutex<Vec<String>>);
    impl Sink for Lines {
        fn record(&self, sample: &Sample<'_>) {
            self.0.lock().unwrap().push(emf_line(sample, 0));
        }
    }
    let lines = Arc::new(Lines(Mutex::default()));
    Metrics::new(Function::MeetingSweeper, lines.clone()).sweeper_run(SweeperCounts {
        deactivated: 0,
        requeued: 0,
        reconciled: 3,
        webhooks_rearmed: 2,
    });
    let lines = lines.0.lock().unwrap();
    assert_eq!(lines.len(), 2);
    let run = parse(&lines[0]);
    assert_eq!(run["SweeperReconciled"], 3.0);
    assert_eq!(run["SweeperDeactivated"], 0.0);
    let rearmed = parse(&lines[1]);
    assert_eq!(rearmed["WebhookRearmed"], 2.0);
    assert_eq!(rearmed["Platform"], "daily");
}

#[test]
fn the_registry_aggregates_per_series_and_renders_json_and_prometheus() {
    let registry = Arc::new(Registry::default());
    let daily = Metrics::new(Function::DailyWebhook, registry.clone());
    daily.count(Metric::WebhookAccepted, Some(Platform::Daily));
    daily.count(Metric::WebhookAccepted, Some(Platform::Daily));
    daily.webhook_rejected(Platform::Daily, RejectReason::Invalid);
    let processor = Metrics::new(Function::RecordingProcessor, registry.clone());
    processor.recording_uploaded(Platform::Whereby, 1000, 1.5);
    processor.recording_uploaded(Platform::Whereby, 24, 0.5);
    processor.add(Metric::PipelineMessageSent, Some(Platform::Whereby), 0);

    let summary = registry.to_json();
    assert_eq!(summary["namespace"], NAMESPACE);
    assert_eq!(summary["totals"]["WebhookAccepted"], 2.0);
    assert_eq!(summary["totals"]["WebhookRejected"], 1.0);
    assert_eq!(summary["totals"]["RecordingBytes"], 1024.0);
    assert_eq!(summary["totals"]["PipelineMessageSent"], 0.0);
    let rejected = summary["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "WebhookRejected")
        .unwrap();
    assert_eq!(
        rejected["dimensions"],
        json!({"Function": "daily-webhook", "Platform": "daily", "Reason": "invalid"})
    );

    let text = registry.to_prometheus();
    assert!(
        text.contains(
            "reflector_webhook_accepted_total{function=\"daily-webhook\",platform=\"daily\"} 2\n"
        ),
        "{text}"
    );
    assert!(text.contains(
        "reflector_webhook_rejected_total{function=\"daily-webhook\",platform=\"daily\",reason=\"invalid\"} 1\n"
    ));
    assert!(text.contains(
        "reflector_recording_bytes_sum{function=\"recording-processor\",platform=\"whereby\"} 1024\n"
    ));
    assert!(text.contains(
        "reflector_recording_bytes_count{function=\"recording-processor\",platform=\"whereby\"} 2\n"
    ));
    assert!(text.contains("# TYPE reflector_recording_seconds summary\n"));
}
