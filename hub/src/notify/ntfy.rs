//! ntfy (<https://ntfy.sh>, or a self-hosted server) as a second way to ring: one POST per
//! ring to the configured topic, with a title, priority 5 (max: the phone's ntfy app sounds
//! and vibrates through Do Not Disturb where the user allows it), a click URL that opens the
//! app on the call, Answer and Decline buttons, and the visitor's snapshot once there is one.
//! For Android phones without Google services and for people who already run ntfy.
//!
//! ```toml
//! [notify.ntfy]
//! topic_url = "https://ntfy.sh/doorbell-8f3k2x"   # http(s), the topic as the last path segment
//! access_token = "tk_..."                          # optional; sent as a Bearer token
//! ```

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use http::{header, Method, Request};
use http_body_util::Full;
use serde::{Deserialize, Serialize};

use super::{call_link, CallAction, RingInfo};
use crate::push::client::{self, PlainClient};
use crate::push::config::NotifyConfigError;

/// Longest topic URL or token accepted: real ones are under 100 characters.
const MAX_SETTING_CHARS: usize = 1024;

/// The `[notify]` table: other ways to ring than Web Push.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// `[notify.ntfy]`; absent: no ntfy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ntfy: Option<NtfyConfig>,
}

/// The `[notify.ntfy]` table.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NtfyConfig {
    /// The topic to publish to, e.g. `https://ntfy.sh/doorbell-8f3k2x`. On a public server
    /// the topic name is the only protection: make it long and random, or use a token.
    pub topic_url: String,
    /// An ntfy access token ("tk_..."), sent as `Authorization: Bearer`. Never logged.
    #[serde(default, skip_serializing)]
    pub access_token: Option<String>,
}

impl std::fmt::Debug for NtfyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NtfyConfig")
            .field("topic_url", &self.topic_url)
            .field(
                "access_token",
                &self.access_token.as_ref().map(|_| "<hidden>"),
            )
            .finish()
    }
}

impl NotifyConfig {
    /// Checks the table; an error names the key and the fix.
    pub fn validate(&self) -> Result<(), NotifyConfigError> {
        let Some(ntfy) = &self.ntfy else {
            return Ok(());
        };
        let url_ok = ntfy.topic_url.len() <= MAX_SETTING_CHARS
            && ntfy.topic_url.parse::<http::Uri>().is_ok_and(|u| {
                matches!(u.scheme_str(), Some("http" | "https"))
                    && u.host().is_some_and(|h| !h.is_empty())
                    && !u.path().trim_matches('/').is_empty()
                    && u.query().is_none()
            });
        if !url_ok {
            return Err(NotifyConfigError {
                key: "notify.ntfy.topic_url",
                problem: format!(
                    "{:?} is not an http(s) URL ending in a topic",
                    ntfy.topic_url
                ),
                fix: "write the topic's URL, e.g. topic_url = \"https://ntfy.sh/doorbell-8f3k2x\"",
            });
        }
        if let Some(token) = &ntfy.access_token {
            if token.is_empty()
                || token.len() > MAX_SETTING_CHARS
                || !token.chars().all(|c| c.is_ascii_graphic())
            {
                return Err(NotifyConfigError {
                    key: "notify.ntfy.access_token",
                    problem: "is empty, too long, or has spaces or non-ASCII characters".into(),
                    fix: "paste the token exactly as ntfy printed it (tk_...), or remove the key",
                });
            }
        }
        Ok(())
    }
}

/// A header value for text that may not be ASCII: as is, or RFC 2047 encoded (ntfy decodes
/// `=?UTF-8?B?...?=` in its headers).
fn header_text(text: &str) -> String {
    if text.chars().all(|c| c.is_ascii() && !c.is_ascii_control()) {
        text.to_owned()
    } else {
        format!("=?UTF-8?B?{}?=", STANDARD.encode(text))
    }
}

/// The POST for `ring`.
pub(crate) fn request(
    config: &NtfyConfig,
    app_url: &str,
    ring: &RingInfo,
) -> Result<Request<Full<Bytes>>, http::Error> {
    let answer = call_link(app_url, ring, CallAction::Answer);
    let decline = call_link(app_url, ring, CallAction::Decline);
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri(&config.topic_url)
        .header(
            "Title",
            header_text(&format!("{} is ringing", ring.door_name)),
        )
        .header("Priority", "5")
        .header("Tags", "bell")
        // A tap answers, as a tap on the service worker's notification does.
        .header("Click", &answer)
        .header(
            "Actions",
            format!("view, Answer, {answer}, clear=true; view, Decline, {decline}, clear=true"),
        )
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8");
    if let Some(snapshot) = &ring.snapshot {
        builder = builder.header("Attach", snapshot);
    }
    if let Some(token) = &config.access_token {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    builder.body(Full::new(Bytes::from(format!(
        "Someone is at {}. Tap to answer.",
        ring.door_name
    ))))
}

/// Publishes `ring` (one attempt; a ring is over before a retry would matter) and logs
/// the result.
pub(crate) async fn post(
    config: &NtfyConfig,
    client: &PlainClient,
    app_url: &str,
    ring: &RingInfo,
) {
    let request = match request(config, app_url, ring) {
        Ok(request) => request,
        Err(e) => {
            tracing::warn!(error = %e, "could not build the ntfy request");
            return;
        }
    };
    match client::send(client, request).await {
        Ok(r) if r.status.is_success() => tracing::debug!("ntfy notified"),
        Ok(r) => {
            tracing::warn!(status = %r.status, body = %r.body.chars().take(200).collect::<String>(), "ntfy refused the ring")
        }
        Err(e) => tracing::warn!(error = %e, "ntfy unreachable"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use doorbell_protocol::{CallId, DoorId};

    fn config(url: &str, token: Option<&str>) -> NotifyConfig {
        NotifyConfig {
            ntfy: Some(NtfyConfig {
                topic_url: url.into(),
                access_token: token.map(Into::into),
            }),
        }
    }

    #[test]
    fn topic_url_and_token_are_checked() {
        assert!(config("https://ntfy.sh/doorbell-x", Some("tk_abc"))
            .validate()
            .is_ok());
        assert!(config("http://192.168.1.5:8080/door", None)
            .validate()
            .is_ok());
        for bad in [
            "ntfy.sh/x",
            "https://ntfy.sh/",
            "ftp://ntfy.sh/x",
            "https://ntfy.sh/x?y=1",
        ] {
            assert_eq!(
                config(bad, None).validate().unwrap_err().key,
                "notify.ntfy.topic_url",
                "{bad}"
            );
        }
        let e = config("https://ntfy.sh/x", Some("tk abc\n"))
            .validate()
            .unwrap_err();
        assert_eq!(e.key, "notify.ntfy.access_token");
        assert!(
            !format!("{:?}", config("https://ntfy.sh/x", Some("tk_secret"))).contains("tk_secret")
        );
    }

    #[test]
    fn the_request_carries_title_priority_links_and_actions() {
        let ring = RingInfo {
            door_id: DoorId::new("d-1"),
            door_name: "Haustür".into(),
            call_id: CallId::new("c1"),
            at_ms: 0,
            snapshot: Some("https://hub/s/abc".into()),
        };
        let c = config("https://ntfy.example/door", Some("tk_1"))
            .ntfy
            .unwrap();
        let r = request(&c, "https://hub.example", &ring).unwrap();
        let h = |n: &str| r.headers()[n].to_str().unwrap().to_owned();
        assert_eq!(h("Priority"), "5");
        assert!(h("Title").starts_with("=?UTF-8?B?"));
        assert_eq!(h("Click"), "https://hub.example/#answer=c1");
        assert_eq!(
            h("Actions"),
            "view, Answer, https://hub.example/#answer=c1, clear=true; \
             view, Decline, https://hub.example/#decline=c1, clear=true"
        );
        assert_eq!(h("Attach"), "https://hub/s/abc");
        assert_eq!(h("Authorization"), "Bearer tk_1");
    }
}
