//! Why the hub link will not come up by retrying alone: each cause with its own fix.

use doorbell_protocol::ErrorCode;
use std::path::PathBuf;

#[derive(Debug, Clone, thiserror::Error)]
pub enum LinkError {
    /// `hub.ca_file` cannot be used: a problem of this door's configuration, found before
    /// the hub was even asked.
    #[error("hub.ca_file {}: {problem}\n  fix: point hub.ca_file at the PEM certificate the hub serves (for `doorbell-hub serve --self-signed`, the self-signed certificate next to its database), or remove it for a hub with a public certificate", path.display())]
    CaFile { path: PathBuf, problem: String },
    #[error("cannot set up TLS for the hub link: {0}")]
    Tls(String),
    /// The hub answered `hello` with an error: unknown door, wrong secret, old protocol.
    #[error("hub refused the door: {code:?}: {message}\n  fix: check hub.door_id and hub.secret against `doorbell-hub doors`")]
    Refused { code: ErrorCode, message: String },
}

impl LinkError {
    /// One line for systemd's STATUS.
    pub fn status(&self) -> &'static str {
        match self {
            LinkError::CaFile { .. } => "hub.ca_file is unusable: check it",
            LinkError::Tls(_) => "cannot set up TLS for the hub link",
            LinkError::Refused { .. } => {
                "the hub refused this door: check hub.door_id and hub.secret"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_ca_file_does_not_blame_the_credentials() {
        let e = LinkError::CaFile {
            path: "/etc/doorbell/hub.pem".into(),
            problem: "no PEM certificate in it".into(),
        };
        let text = e.to_string();
        assert!(text.contains("hub.ca_file /etc/doorbell/hub.pem"), "{text}");
        assert!(!text.contains("hub.secret"), "{text}");
        assert!(!e.status().contains("hub.secret"));
        let refused = LinkError::Refused {
            code: ErrorCode::Unauthorized,
            message: "bad secret".into(),
        };
        assert!(refused
            .to_string()
            .contains("check hub.door_id and hub.secret"));
    }
}
