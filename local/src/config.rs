//! The local stack's own settings (`LOCAL_*`), parsed here and nowhere else so that no Lambda
//! function reads them: a bad `LOCAL_LISTEN_ADDR` cannot stop a function from starting.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use shared::config::ConfigError;

pub const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:3000";
pub const DEFAULT_SWEEP_SECONDS: u64 = 60;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalConfig {
    /// `LOCAL_LISTEN_ADDR`: where the HTTP server listens.
    pub listen_addr: SocketAddr,
    /// `LOCAL_SWEEP_SECONDS`: how often the sweeper runs.
    pub sweep_interval: Duration,
}

impl LocalConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&std::env::vars().collect())
    }

    /// Empty values count as unset, as in the shared configuration.
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let get = |var: &str| vars.get(var).map(|v| v.trim()).filter(|v| !v.is_empty());
        let listen = get("LOCAL_LISTEN_ADDR").unwrap_or(DEFAULT_LISTEN_ADDR);
        let listen_addr = listen.parse().map_err(|_| ConfigError::Invalid {
            var: "LOCAL_LISTEN_ADDR",
            value: listen.to_owned(),
            expected: "an address and port such as 127.0.0.1:3000".into(),
        })?;
        let sweep_seconds =
            match get("LOCAL_SWEEP_SECONDS") {
                None => DEFAULT_SWEEP_SECONDS,
                Some(v) => v.parse::<u64>().ok().filter(|&s| s > 0).ok_or_else(|| {
                    ConfigError::Invalid {
                        var: "LOCAL_SWEEP_SECONDS",
                        value: v.to_owned(),
                        expected: "a whole number of seconds, at least 1".into(),
                    }
                })?,
            };
        Ok(Self {
            listen_addr,
            sweep_interval: Duration::from_secs(sweep_seconds),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<LocalConfig, ConfigError> {
        LocalConfig::from_vars(
            &pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn defaults_listen_on_port_3000_and_sweep_every_minute() {
        let c = parse(&[("LOCAL_LISTEN_ADDR", " ")]).unwrap();
        assert_eq!(c.listen_addr, "127.0.0.1:3000".parse().unwrap());
        assert_eq!(c.sweep_interval, Duration::from_secs(60));
    }

    #[test]
    fn values_are_read_and_bad_ones_are_refused_by_name() {
        let c = parse(&[
            ("LOCAL_LISTEN_ADDR", "127.0.0.1:0"),
            ("LOCAL_SWEEP_SECONDS", "5"),
        ])
        .unwrap();
        assert_eq!(c.listen_addr, "127.0.0.1:0".parse().unwrap());
        assert_eq!(c.sweep_interval, Duration::from_secs(5));
        for (var, bad) in [
            ("LOCAL_SWEEP_SECONDS", "0"),
            ("LOCAL_SWEEP_SECONDS", "soon"),
            ("LOCAL_LISTEN_ADDR", "localhost"),
        ] {
            let msg = parse(&[(var, bad)]).unwrap_err().to_string();
            assert!(msg.contains(var) && msg.contains(bad), "{var}={bad}: {msg}");
        }
    }
}
