//! The `[push]` configuration table, shared by `doorbell-hub serve --config` and `doorbelld`
//! (whose embedded hub reads the same table from its own layered config).
//!
//! ```toml
//! [push]
//! vapid_subject = "mailto:admin@example.net"   # or an https: URL; Apple refuses pushes without one
//! allow_insecure_endpoints = []                # TESTS ONLY: loopback hosts allowed over http://
//! ```

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The `[push]` table. Unknown keys are errors.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PushConfig {
    /// The operator's contact, sent as the VAPID `sub` claim so a push service can reach
    /// whoever runs the hub: `mailto:` or `https:` (Apple's push service rejects others and
    /// pushes without one). Absent: no `sub` (a warning at start on a non-loopback hub).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vapid_subject: Option<String>,
    /// Hosts whose push endpoints may be plain `http://` and on a loopback address: only
    /// loopback hosts are accepted here (`127.0.0.1`, `::1`, `localhost`). For tests with a
    /// mock push service; never needed with real browsers.
    pub allow_insecure_endpoints: Vec<String>,
}

/// A mistake in `[push]` or `[notify.ntfy]`: names the key, what is wrong and the fix.
#[derive(Debug, thiserror::Error)]
#[error("configuration key `{key}`: {problem}\n  fix: {fix}")]
pub struct NotifyConfigError {
    pub key: &'static str,
    pub problem: String,
    pub fix: &'static str,
}

/// Whether `host` (as written in a URL, IPv6 with or without brackets) names this machine.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl PushConfig {
    /// Checks the table; an error names the key and the fix.
    pub fn validate(&self) -> Result<(), NotifyConfigError> {
        if let Some(subject) = &self.vapid_subject {
            let ok = match subject.split_once(':') {
                Some(("mailto", address)) => {
                    address.contains('@') && !address.chars().any(char::is_whitespace)
                }
                Some(("https", rest)) => {
                    rest.len() > 2 && rest.starts_with("//") && !rest.contains(char::is_whitespace)
                }
                _ => false,
            };
            if !ok {
                return Err(NotifyConfigError {
                    key: "push.vapid_subject",
                    problem: format!("{subject:?} is not a mailto: or https: URL"),
                    fix: "write your contact, e.g. vapid_subject = \"mailto:you@example.net\" (push services, Apple's in particular, accept only these two kinds)",
                });
            }
        }
        if let Some(host) = self
            .allow_insecure_endpoints
            .iter()
            .find(|h| !is_loopback_host(h))
        {
            return Err(NotifyConfigError {
                key: "push.allow_insecure_endpoints",
                problem: format!("{host:?} is not a loopback host"),
                fix: "list only 127.0.0.1, ::1 or localhost (this key exists for tests with a local mock push service), or remove it",
            });
        }
        Ok(())
    }

    /// Whether endpoints on `host` may use `http://` and a loopback address.
    pub(crate) fn insecure_allowed(&self, host: &str) -> bool {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        self.allow_insecure_endpoints.iter().any(|h| {
            h.trim_start_matches('[')
                .trim_end_matches(']')
                .eq_ignore_ascii_case(bare)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_subject(s: &str) -> PushConfig {
        PushConfig {
            vapid_subject: Some(s.into()),
            ..PushConfig::default()
        }
    }

    #[test]
    fn subject_must_be_mailto_or_https() {
        assert!(with_subject("mailto:admin@example.net").validate().is_ok());
        assert!(with_subject("https://example.net/contact")
            .validate()
            .is_ok());
        for bad in [
            "admin@example.net",
            "http://example.net",
            "mailto:nobody",
            "https:",
        ] {
            let e = with_subject(bad).validate().expect_err(bad);
            assert_eq!(e.key, "push.vapid_subject");
        }
        assert!(PushConfig::default().validate().is_ok());
    }

    #[test]
    fn insecure_endpoints_are_loopback_only() {
        let mut c = PushConfig {
            allow_insecure_endpoints: vec!["127.0.0.1".into(), "[::1]".into(), "localhost".into()],
            ..PushConfig::default()
        };
        assert!(c.validate().is_ok());
        assert!(c.insecure_allowed("127.0.0.1") && c.insecure_allowed("::1"));
        assert!(!c.insecure_allowed("127.0.0.2"));
        c.allow_insecure_endpoints.push("192.168.1.2".into());
        assert_eq!(
            c.validate().expect_err("private").key,
            "push.allow_insecure_endpoints"
        );
    }
}
