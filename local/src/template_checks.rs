//! template.yaml against the code, for what a deploy gets by default: the recording hosts the
//! processor may download from (matched by `shared::download::check_allowed`, the one matcher),
//! and the secrets each function reads (`<crate>::SECRETS`, `shared::secrets`): named by SSM
//! parameters in its own environment, readable by its own policy, never a value in any
//! environment.

use std::collections::{BTreeMap, BTreeSet};

use serde_norway::Value;
use shared::config::parse_allowed_hosts;
use shared::download::check_allowed;
use shared::secrets::Secret;

use crate::monitoring::{functions, template, untagged};

fn tag(v: &Value) -> Option<String> {
    match v {
        Value::Tagged(t) => Some(t.tag.to_string()),
        _ => None,
    }
}

/// `${Name}` of a `!Sub` string replaced from `params`.
fn substitute(text: &str, params: &BTreeMap<&str, &str>) -> String {
    let mut out = text.to_owned();
    for (name, value) in params {
        out = out.replace(&format!("${{{name}}}"), value);
    }
    assert!(!out.contains("${"), "unresolved reference in {out}");
    out
}

fn default_of(template: &Value, parameter: &str) -> String {
    template["Parameters"][parameter]["Default"]
        .as_str()
        .unwrap_or_else(|| panic!("parameter {parameter} has a string default"))
        .to_owned()
}

fn admits(hosts: &str, url: &str) -> bool {
    let allowed = parse_allowed_hosts(hosts).expect("the template's hosts parse");
    check_allowed(&allowed, url).is_ok()
}

/// Daily's access link (docs.daily.co, "Access links") and the seed's download URL.
const DAILY_ACCESS_LINK: &str = "https://b.daily.co/recordings/api-demo/hello/1548790973821?dl=api-demo%2Fhello%2F1548790973821.webm&Expires=1548809176&Signature=EXAMPLE&Key-Pair-Id=K1EXAMPLE";
const SEED_DAILY_URL: &str = "https://daily.co/recordings/test.mp4";

/// Hosts no default may admit: someone else's bucket (the seed's `bucket` placeholder among
/// them), S3 by path, plain http, look-alike domains, the instance metadata address.
const NEVER: [&str; 7] = [
    "https://evil-bucket.s3.amazonaws.com/recording.mp4",
    "https://bucket.s3.amazonaws.com/recording.mp4",
    "https://s3.amazonaws.com/evil-bucket/recording.mp4",
    "https://evil-bucket.s3.eu-west-1.amazonaws.com/recording.mp4",
    "http://b.daily.co/recordings/x",
    "https://daily.co.evil.example/recordings/x",
    "https://169.254.169.254/latest/meta-data/",
];

#[test]
fn the_default_recording_hosts_admit_dailys_links_and_no_other_bucket() {
    let hosts = default_of(&template(), "RecordingUrlAllowedHosts");
    assert!(admits(&hosts, DAILY_ACCESS_LINK), "{hosts}");
    assert!(admits(&hosts, SEED_DAILY_URL), "{hosts}");
    for url in NEVER {
        assert!(!admits(&hosts, url), "{hosts} admits {url}");
    }
}

#[test]
fn the_processor_adds_only_the_daily_buckets_own_hosts() {
    let template = template();
    let value = &template["Resources"]["RecordingProcessorFunction"]["Properties"]["Environment"]
        ["Variables"]["RECORDING_URL_ALLOWED_HOSTS"];
    assert_eq!(tag(value).as_deref(), Some("!If"), "{value:?}");
    let branches = untagged(value)
        .as_sequence()
        .expect("!If [cond, then, else]");
    assert_eq!(branches[0].as_str(), Some("HasDailyBucket"));
    assert_eq!(
        (
            tag(&branches[2]).as_deref(),
            untagged(&branches[2]).as_str()
        ),
        (Some("!Ref"), Some("RecordingUrlAllowedHosts"))
    );
    let default = default_of(&template, "RecordingUrlAllowedHosts");
    let params = BTreeMap::from([
        ("RecordingUrlAllowedHosts", default.as_str()),
        ("DailyS3Bucket", "acme-daily-recordings"),
        ("DailyS3Region", "eu-west-1"),
    ]);
    let with_bucket = substitute(untagged(&branches[1]).as_str().unwrap(), &params);
    for url in [
        DAILY_ACCESS_LINK,
        SEED_DAILY_URL,
        "https://acme-daily-recordings.s3.eu-west-1.amazonaws.com/dom/room/1?X-Amz-Signature=x",
        "https://acme-daily-recordings.s3.amazonaws.com/dom/room/1?X-Amz-Signature=x",
    ] {
        assert!(admits(&with_bucket, url), "{with_bucket} refuses {url}");
    }
    for url in NEVER {
        assert!(!admits(&with_bucket, url), "{with_bucket} admits {url}");
    }
}

/// Logical id in template.yaml -> the secrets its function's `main` reads.
fn secrets_by_function() -> BTreeMap<&'static str, &'static [Secret]> {
    BTreeMap::from([
        ("RoomsApiFunction", rooms_api::SECRETS),
        ("DailyWebhookFunction", daily_webhook::SECRETS),
        ("WherebyWebhookFunction", whereby_webhook::SECRETS),
        ("RecordingProcessorFunction", recording_processor::SECRETS),
        ("MeetingSweeperFunction", meeting_sweeper::SECRETS),
        ("RoomPageFunction", &[]),
    ])
}

/// The template parameter each secret's `<VAR>_PARAMETER` is set from.
fn template_parameter(secret: Secret) -> &'static str {
    match secret {
        Secret::DailyApiKey => "DailyApiKeyParameter",
        Secret::DailyWebhookSecret => "DailyWebhookSecretParameter",
        Secret::WherebyApiKey => "WherebyApiKeyParameter",
        Secret::WherebyWebhookSecret => "WherebyWebhookSecretParameter",
        Secret::WherebyAccessKeySecret => "WherebyAccessKeySecretParameter",
    }
}

fn environment(template: &Value, path: &[&str]) -> BTreeMap<String, Value> {
    let mut v = template;
    for key in path {
        v = &v[*key];
    }
    v["Environment"]["Variables"]
        .as_mapping()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.as_str().unwrap().to_owned(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn no_secret_value_is_in_any_environment_nor_a_template_parameter() {
    let template = template();
    let plain: BTreeSet<&str> = Secret::ALL.iter().map(|s| s.var()).collect();
    let mut environments = vec![(
        "Globals".to_owned(),
        environment(&template, &["Globals", "Function"]),
    )];
    for id in secrets_by_function().keys() {
        environments.push((
            id.to_string(),
            environment(&template, &["Resources", id, "Properties"]),
        ));
    }
    for (where_, env) in &environments {
        for var in env.keys() {
            assert!(!plain.contains(var.as_str()), "{where_} sets {var}");
        }
    }
    // A secret value would be a NoEcho parameter; there are none left.
    for (name, p) in template["Parameters"].as_mapping().unwrap() {
        assert_ne!(p["NoEcho"].as_bool(), Some(true), "{name:?} takes a secret");
    }
}

#[test]
fn each_function_names_and_may_read_exactly_the_secrets_its_main_reads() {
    let template = template();
    let functions: BTreeSet<String> = functions(&template).into_iter().map(|(id, _)| id).collect();
    let known: BTreeSet<String> = secrets_by_function()
        .keys()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(functions, known, "every function's secrets are listed here");
    let global = environment(&template, &["Globals", "Function"]);
    for (id, secrets) in secrets_by_function() {
        let env = environment(&template, &["Resources", id, "Properties"]);
        let named: BTreeMap<String, String> = env
            .iter()
            .chain(global.iter())
            .filter(|(k, _)| k.ends_with("_PARAMETER"))
            .map(|(k, v)| {
                assert_eq!(tag(v).as_deref(), Some("!Ref"), "{id} {k}");
                (k.clone(), untagged(v).as_str().unwrap().to_owned())
            })
            .collect();
        let expected: BTreeMap<String, String> = secrets
            .iter()
            .map(|s| {
                (
                    s.parameter_var().to_owned(),
                    template_parameter(*s).to_owned(),
                )
            })
            .collect();
        assert_eq!(named, expected, "{id}: the SSM parameters it is given");

        // Its policy may read exactly those parameters.
        let policies = format!("{:?}", template["Resources"][id]["Properties"]["Policies"]);
        for s in Secret::ALL {
            let arn = format!("parameter${{{}}}", template_parameter(s));
            assert_eq!(
                policies.contains(&arn),
                secrets.contains(&s),
                "{id}: ssm:GetParameters on {}",
                template_parameter(s)
            );
        }
        assert_eq!(
            policies.contains("ssm:GetParameters"),
            !secrets.is_empty(),
            "{id}"
        );
    }
}

/// The cold-start bench runs each function with the deadline and memory Lambda would give it;
/// a deadline shorter than the template's once made the processor defer its job untouched, so
/// the bench's "aws" case measured no AWS request at all.
#[test]
fn the_cold_start_bench_gives_each_function_its_template_timeout_and_memory() {
    let template = template();
    let globals = &template["Globals"]["Function"];
    let cases: serde_json::Value =
        serde_json::from_str(include_str!("../../bench/coldstart-cases.json"))
            .expect("bench/coldstart-cases.json parses");
    let bench = cases["functions"]
        .as_object()
        .expect("the case file lists its functions' limits");
    let mut in_template = BTreeSet::new();
    for (_, resource) in functions(&template) {
        let Some(binary) = resource["Metadata"]["BuildProperties"]["Binary"].as_str() else {
            continue;
        };
        in_template.insert(binary.to_owned());
        let properties = &resource["Properties"];
        let limit = |name: &str| {
            properties[name]
                .as_u64()
                .or_else(|| globals[name].as_u64())
                .unwrap_or_else(|| panic!("{binary} has a {name}"))
        };
        let Some(limits) = bench.get(binary) else {
            continue;
        };
        assert_eq!(
            limits["timeout_seconds"].as_u64(),
            Some(limit("Timeout")),
            "{binary}'s timeout in the bench"
        );
        assert_eq!(
            limits["memory_mb"].as_u64(),
            Some(limit("MemorySize")),
            "{binary}'s memory in the bench"
        );
    }
    let benched: BTreeSet<String> = bench.keys().cloned().collect();
    assert!(
        benched.is_subset(&in_template),
        "bench functions {benched:?}, template binaries {in_template:?}"
    );
    let with_cases: BTreeSet<String> = cases["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .filter_map(|c| c["function"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(with_cases, benched, "every benched function has its limits");
}
