//! Secrets at cold start: each Lambda function reads the secrets it needs, and only those, from
//! AWS Systems Manager Parameter Store (SecureString) before its configuration is parsed.
//!
//! Why Parameter Store and not Secrets Manager: one `GetParameters` request returns up to ten
//! decrypted values, so a function's cold start costs exactly one request whatever number of
//! secrets it reads (Secrets Manager needs one `GetSecretValue` per secret, or a batch call that
//! needs a permission on every secret and on the batch itself); standard parameters cost nothing
//! to store; and the IAM resource of a parameter is its name, which the template already has.
//! CloudFormation cannot create SecureString parameters, so the values never pass through the
//! template: an operator creates them (README, "Secrets").
//!
//! Precedence, per secret: the plain variable (`DAILY_API_KEY`) when it is set wins and nothing
//! is fetched; else the parameter named by `<VAR>_PARAMETER` (`DAILY_API_KEY_PARAMETER`) is
//! read; else the secret is unset (the function then behaves as before: that platform is not
//! configured, or its webhooks are all rejected). The local stack (`reflector-local`,
//! `scripts/dev`) and tests set only plain variables, so they make no request.
//!
//! A parameter that is named but cannot be read stops the start with an error naming the
//! variable and the parameter, never the value.

use std::collections::HashMap;

use async_trait::async_trait;

use crate::config::ConfigError;

/// A secret a function may read, by its plain variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Secret {
    DailyApiKey,
    DailyWebhookSecret,
    WherebyApiKey,
    WherebyWebhookSecret,
    WherebyAccessKeySecret,
}

impl Secret {
    pub const ALL: [Secret; 5] = [
        Secret::DailyApiKey,
        Secret::DailyWebhookSecret,
        Secret::WherebyApiKey,
        Secret::WherebyWebhookSecret,
        Secret::WherebyAccessKeySecret,
    ];

    /// The plain variable that holds the value (local stack, tests) and that the value is
    /// parsed from.
    pub fn var(self) -> &'static str {
        match self {
            Secret::DailyApiKey => "DAILY_API_KEY",
            Secret::DailyWebhookSecret => "DAILY_WEBHOOK_SECRET",
            Secret::WherebyApiKey => "WHEREBY_API_KEY",
            Secret::WherebyWebhookSecret => "WHEREBY_WEBHOOK_SECRET",
            Secret::WherebyAccessKeySecret => "AWS_WHEREBY_ACCESS_KEY_SECRET",
        }
    }

    /// The variable that names the SSM parameter holding the value (Lambda).
    pub fn parameter_var(self) -> &'static str {
        match self {
            Secret::DailyApiKey => "DAILY_API_KEY_PARAMETER",
            Secret::DailyWebhookSecret => "DAILY_WEBHOOK_SECRET_PARAMETER",
            Secret::WherebyApiKey => "WHEREBY_API_KEY_PARAMETER",
            Secret::WherebyWebhookSecret => "WHEREBY_WEBHOOK_SECRET_PARAMETER",
            Secret::WherebyAccessKeySecret => "AWS_WHEREBY_ACCESS_KEY_SECRET_PARAMETER",
        }
    }
}

/// What one read of parameters returned.
#[derive(Debug, Default)]
pub struct Fetched {
    /// Decrypted values by parameter name.
    pub values: HashMap<String, String>,
    /// Names the store does not have.
    pub missing: Vec<String>,
}

/// Where named parameters are read from: [`SsmParameters`] in Lambda, a fake in unit tests.
#[async_trait]
pub trait ParameterSource: Send + Sync {
    /// Reads at most [`MAX_NAMES_PER_REQUEST`] names in one request. `Err` is why the request
    /// failed (access denied, throttled, unreachable), without any value.
    async fn get(&self, names: &[String]) -> Result<Fetched, String>;
}

/// `GetParameters` takes at most ten names.
pub const MAX_NAMES_PER_REQUEST: usize = 10;

/// Parameter Store through the SDK; `WithDecryption` so SecureStrings come back in clear.
pub struct SsmParameters(aws_sdk_ssm::Client);

impl SsmParameters {
    /// Builds no connection: the client is made from the process's one SDK configuration.
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self(aws_sdk_ssm::Client::new(sdk))
    }
}

#[async_trait]
impl ParameterSource for SsmParameters {
    async fn get(&self, names: &[String]) -> Result<Fetched, String> {
        let out = self
            .0
            .get_parameters()
            .set_names(Some(names.to_vec()))
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| aws_sdk_ssm::error::DisplayErrorContext(e).to_string())?;
        let values = out
            .parameters()
            .iter()
            .filter_map(|p| Some((p.name()?.to_owned(), p.value()?.to_owned())))
            .collect();
        Ok(Fetched {
            values,
            missing: out.invalid_parameters().to_vec(),
        })
    }
}

/// Sets in `vars` the plain variable of each of `secrets` that is unset there and whose
/// `<VAR>_PARAMETER` names a parameter, read from `source` in as few requests as
/// `GetParameters` allows (one for every function of this product). Returns the number of
/// requests made: 0 when every secret is given as a plain variable or not configured at all.
pub async fn resolve(
    vars: &mut HashMap<String, String>,
    secrets: &[Secret],
    source: &dyn ParameterSource,
) -> Result<usize, ConfigError> {
    let set = |var: &str, vars: &HashMap<String, String>| {
        vars.get(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    // (secret, parameter name), in the order asked, each secret once.
    let mut wanted: Vec<(Secret, String)> = Vec::new();
    for &secret in secrets {
        if wanted.iter().any(|(s, _)| *s == secret) || set(secret.var(), vars).is_some() {
            continue;
        }
        if let Some(name) = set(secret.parameter_var(), vars) {
            wanted.push((secret, name));
        }
    }
    let mut names: Vec<String> = wanted.iter().map(|(_, n)| n.clone()).collect();
    names.sort();
    names.dedup();
    let mut fetched = Fetched::default();
    let mut requests = 0;
    for chunk in names.chunks(MAX_NAMES_PER_REQUEST) {
        requests += 1;
        let part = source.get(chunk).await.map_err(|reason| {
            // Every secret of the failed request is unavailable; name the first one asked (the
            // chunk's names all come from `wanted`, so there is one).
            let first = wanted.iter().find(|(_, n)| chunk.contains(n));
            ConfigError::SecretUnavailable {
                var: first.map_or("SSM parameters", |(s, _)| s.parameter_var()),
                parameter: first.map_or_else(|| chunk.join(", "), |(_, n)| n.clone()),
                reason,
            }
        })?;
        fetched.values.extend(part.values);
        fetched.missing.extend(part.missing);
    }
    for (secret, name) in wanted {
        match fetched.values.get(&name) {
            Some(value) => {
                vars.insert(secret.var().to_owned(), value.clone());
            }
            None => {
                let reason = if fetched.missing.contains(&name) {
                    "no such parameter"
                } else {
                    "the answer did not include it"
                };
                return Err(ConfigError::SecretUnavailable {
                    var: secret.parameter_var(),
                    parameter: name,
                    reason: reason.to_owned(),
                });
            }
        }
    }
    Ok(requests)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Parameters in memory; records each request's names.
    #[derive(Default)]
    struct Fake {
        values: HashMap<String, String>,
        requests: Mutex<Vec<Vec<String>>>,
        fail: Option<String>,
    }

    #[async_trait]
    impl ParameterSource for Fake {
        async fn get(&self, names: &[String]) -> Result<Fetched, String> {
            self.requests.lock().unwrap().push(names.to_vec());
            if let Some(reason) = &self.fail {
                return Err(reason.clone());
            }
            let mut fetched = Fetched::default();
            for n in names {
                match self.values.get(n) {
                    Some(v) => {
                        fetched.values.insert(n.clone(), v.clone());
                    }
                    None => fetched.missing.push(n.clone()),
                }
            }
            Ok(fetched)
        }
    }

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn fake(pairs: &[(&str, &str)]) -> Fake {
        Fake {
            values: vars(pairs),
            ..Fake::default()
        }
    }

    #[tokio::test]
    async fn every_named_secret_is_read_in_one_request() {
        let source = fake(&[("/r/daily", "dk"), ("/r/whereby", "wk")]);
        let mut v = vars(&[
            ("DAILY_API_KEY_PARAMETER", "/r/daily"),
            ("WHEREBY_API_KEY_PARAMETER", "/r/whereby"),
        ]);
        let requests = resolve(
            &mut v,
            &[Secret::DailyApiKey, Secret::WherebyApiKey],
            &source,
        )
        .await
        .unwrap();
        assert_eq!(requests, 1);
        assert_eq!(v["DAILY_API_KEY"], "dk");
        assert_eq!(v["WHEREBY_API_KEY"], "wk");
    }

    #[tokio::test]
    async fn a_set_plain_variable_wins_and_nothing_is_fetched() {
        let source = fake(&[("/r/daily", "from-ssm")]);
        let mut v = vars(&[
            ("DAILY_API_KEY", "plain"),
            ("DAILY_API_KEY_PARAMETER", "/r/daily"),
        ]);
        assert_eq!(
            resolve(&mut v, &[Secret::DailyApiKey], &source)
                .await
                .unwrap(),
            0
        );
        assert_eq!(v["DAILY_API_KEY"], "plain");
        assert!(source.requests.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn only_the_secrets_a_function_asks_for_are_read() {
        // The webhook secret's parameter is named too, but this function does not need it.
        let source = fake(&[("/r/daily", "dk"), ("/r/hook", "hs")]);
        let mut v = vars(&[
            ("DAILY_API_KEY_PARAMETER", "/r/daily"),
            ("DAILY_WEBHOOK_SECRET_PARAMETER", "/r/hook"),
        ]);
        resolve(&mut v, &[Secret::DailyApiKey], &source)
            .await
            .unwrap();
        assert_eq!(
            *source.requests.lock().unwrap(),
            vec![vec!["/r/daily".to_owned()]]
        );
        assert!(!v.contains_key("DAILY_WEBHOOK_SECRET"));
    }

    #[tokio::test]
    async fn nothing_named_makes_no_request() {
        let source = Fake::default();
        let mut v = vars(&[("DAILY_API_KEY_PARAMETER", "  ")]);
        assert_eq!(resolve(&mut v, &Secret::ALL, &source).await.unwrap(), 0);
        assert!(source.requests.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_missing_parameter_names_the_variable_and_the_parameter_not_a_value() {
        let source = fake(&[("/r/daily", "dk-value")]);
        let mut v = vars(&[
            ("DAILY_API_KEY_PARAMETER", "/r/daily"),
            ("WHEREBY_API_KEY_PARAMETER", "/r/absent"),
        ]);
        let e = resolve(
            &mut v,
            &[Secret::DailyApiKey, Secret::WherebyApiKey],
            &source,
        )
        .await
        .unwrap_err();
        let text = e.to_string();
        assert!(text.contains("WHEREBY_API_KEY_PARAMETER"), "{text}");
        assert!(text.contains("/r/absent"), "{text}");
        assert!(text.contains("no such parameter"), "{text}");
        assert!(!text.contains("dk-value"), "{text}");
    }

    #[tokio::test]
    async fn a_failed_request_names_the_parameter() {
        let source = Fake {
            fail: Some("AccessDeniedException".into()),
            ..Fake::default()
        };
        let mut v = vars(&[("DAILY_WEBHOOK_SECRET_PARAMETER", "/r/hook")]);
        let e = resolve(&mut v, &[Secret::DailyWebhookSecret], &source)
            .await
            .unwrap_err();
        assert_eq!(
            e,
            ConfigError::SecretUnavailable {
                var: "DAILY_WEBHOOK_SECRET_PARAMETER",
                parameter: "/r/hook".into(),
                reason: "AccessDeniedException".into(),
            }
        );
    }

    #[tokio::test]
    async fn one_parameter_shared_by_two_secrets_is_read_once() {
        let source = fake(&[("/r/shared", "v")]);
        let mut v = vars(&[
            ("DAILY_API_KEY_PARAMETER", "/r/shared"),
            ("WHEREBY_API_KEY_PARAMETER", "/r/shared"),
        ]);
        resolve(
            &mut v,
            &[Secret::DailyApiKey, Secret::WherebyApiKey],
            &source,
        )
        .await
        .unwrap();
        assert_eq!(
            *source.requests.lock().unwrap(),
            vec![vec!["/r/shared".to_owned()]]
        );
        assert_eq!(
            (v["DAILY_API_KEY"].as_str(), v["WHEREBY_API_KEY"].as_str()),
            ("v", "v")
        );
    }
}

/// Against the emulator's Parameter Store: the start-up path of a function with none of its
/// plain secret variables set.
#[cfg(test)]
mod emulator_tests {
    use super::*;
    use crate::config::{Config, Part};
    use crate::testing::{emulator_sdk_config, unique_prefix};
    use aws_sdk_ssm::types::ParameterType;
    use secrecy::ExposeSecret;

    async fn put_secure(sdk: &aws_config::SdkConfig, name: &str, value: &str) {
        // Overwrite: a fresh emulator's first SSM call can outlast one attempt's timeout, and the
        // SDK's retry must not find the parameter made by the attempt it gave up on.
        aws_sdk_ssm::Client::new(sdk)
            .put_parameter()
            .name(name)
            .value(value)
            .overwrite(true)
            .r#type(ParameterType::SecureString)
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "putting {name}: {}",
                    aws_sdk_ssm::error::DisplayErrorContext(e)
                )
            });
    }

    #[tokio::test]
    async fn the_rooms_api_start_reads_its_three_secrets_from_parameter_store_in_one_request() {
        let sdk = emulator_sdk_config().await;
        let base = format!("/{}", unique_prefix("secrets"));
        put_secure(&sdk, &format!("{base}/daily-api-key"), "daily-key-value").await;
        put_secure(
            &sdk,
            &format!("{base}/whereby-api-key"),
            "whereby-key-value",
        )
        .await;
        put_secure(
            &sdk,
            &format!("{base}/whereby-s3-secret"),
            "s3-secret-value",
        )
        .await;
        put_secure(&sdk, &format!("{base}/daily-hook"), "not-for-the-rooms-api").await;
        let mut vars: HashMap<String, String> = [
            ("DAILY_API_KEY_PARAMETER", format!("{base}/daily-api-key")),
            (
                "WHEREBY_API_KEY_PARAMETER",
                format!("{base}/whereby-api-key"),
            ),
            (
                "AWS_WHEREBY_ACCESS_KEY_SECRET_PARAMETER",
                format!("{base}/whereby-s3-secret"),
            ),
            (
                "DAILY_WEBHOOK_SECRET_PARAMETER",
                format!("{base}/daily-hook"),
            ),
            ("AWS_WHEREBY_S3_BUCKET", "whereby-recordings".into()),
            ("AWS_WHEREBY_ACCESS_KEY_ID", "AKIAEXAMPLE".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let source = SsmParameters::new(&sdk);
        let secrets = [
            Secret::DailyApiKey,
            Secret::WherebyApiKey,
            Secret::WherebyAccessKeySecret,
        ];
        let requests = resolve(&mut vars.clone(), &secrets, &source).await.unwrap();
        assert_eq!(requests, 1, "one GetParameters for every secret");

        let config = Config::from_vars_with_secrets(
            &mut vars,
            &[Part::Daily, Part::Whereby],
            &secrets,
            &source,
        )
        .await
        .unwrap();
        let exposed =
            |s: &Option<secrecy::SecretString>| s.as_ref().map(|s| s.expose_secret().to_owned());
        assert_eq!(
            exposed(&config.daily.api_key).as_deref(),
            Some("daily-key-value")
        );
        assert_eq!(
            exposed(&config.whereby.api_key).as_deref(),
            Some("whereby-key-value")
        );
        assert_eq!(
            exposed(&config.whereby.access_key_secret).as_deref(),
            Some("s3-secret-value")
        );
        // Named, but not a secret this function reads.
        assert_eq!(config.daily.webhook_secret.as_ref().map(|_| ()), None);
    }

    #[tokio::test]
    async fn a_missing_parameter_stops_the_start_naming_it() {
        let sdk = emulator_sdk_config().await;
        let base = format!("/{}", unique_prefix("secrets"));
        put_secure(&sdk, &format!("{base}/present"), "present-value").await;
        let mut vars: HashMap<String, String> = [
            ("DAILY_API_KEY_PARAMETER", format!("{base}/present")),
            (
                "DAILY_WEBHOOK_SECRET_PARAMETER",
                format!("{base}/never-created"),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let e = Config::from_vars_with_secrets(
            &mut vars,
            &[Part::Daily],
            &[Secret::DailyApiKey, Secret::DailyWebhookSecret],
            &SsmParameters::new(&sdk),
        )
        .await
        .unwrap_err();
        let text = e.to_string();
        assert!(text.contains("DAILY_WEBHOOK_SECRET_PARAMETER"), "{text}");
        assert!(text.contains(&format!("{base}/never-created")), "{text}");
        assert!(!text.contains("present-value"), "{text}");
    }

    #[tokio::test]
    async fn plain_variables_win_without_any_request() {
        // The parameter does not exist: reading it would fail the start.
        let sdk = emulator_sdk_config().await;
        let mut vars: HashMap<String, String> = [
            ("DAILY_WEBHOOK_SECRET", "plain-secret"),
            ("DAILY_WEBHOOK_SECRET_PARAMETER", "/nowhere/at-all"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let config = Config::from_vars_with_secrets(
            &mut vars,
            &[Part::Daily],
            &[Secret::DailyWebhookSecret],
            &SsmParameters::new(&sdk),
        )
        .await
        .unwrap();
        assert_eq!(
            config
                .daily
                .webhook_secret
                .map(|s| s.expose_secret().to_owned())
                .as_deref(),
            Some("plain-secret")
        );
    }
}
