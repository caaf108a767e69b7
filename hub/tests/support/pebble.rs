//! Let's Encrypt's `pebble` ACME test server (Debian package `pebble`) on loopback, with what it
//! needs: an HTTPS certificate from a throw-away test CA, and a DNS responder that sends every
//! name to 127.0.0.1, so pebble really validates TLS-ALPN-01 against the hub.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpStream, UdpSocket};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

/// Pebble's start (it generates its CA keys) and any one request to it.
const PEBBLE_WAIT: Duration = Duration::from_secs(15);

/// A free TCP port on 127.0.0.1. Pebble cannot listen on port 0 and report the port, so one
/// is picked here and released just before pebble binds it.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A CA for pebble's own HTTPS listeners; its root is what `--acme-ca-file` trusts.
pub struct TestCa {
    pub root_pem: PathBuf,
    pub cert_pem: PathBuf,
    pub key_pem: PathBuf,
}

impl TestCa {
    pub fn create(dir: &Path) -> TestCa {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "doorbell test CA");
        let root =
            CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("root");
        let key = KeyPair::generate().expect("key");
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("params")
            .signed_by(&key, &root)
            .expect("leaf");
        let ca = TestCa {
            root_pem: dir.join("test-ca.pem"),
            cert_pem: dir.join("pebble-cert.pem"),
            key_pem: dir.join("pebble-key.pem"),
        };
        std::fs::write(&ca.root_pem, root.pem()).expect("write root");
        std::fs::write(&ca.cert_pem, leaf.pem()).expect("write cert");
        std::fs::write(&ca.key_pem, key.serialize_pem()).expect("write key");
        ca
    }
}

/// Answers every A query with 127.0.0.1 and every other query with no records.
pub struct DnsResponder {
    pub addr: std::net::SocketAddr,
    task: JoinHandle<()>,
}

impl DnsResponder {
    pub async fn start() -> DnsResponder {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
        let addr = socket.local_addr().expect("local addr");
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 512];
            while let Ok((len, peer)) = socket.recv_from(&mut buf).await {
                if let Some(reply) = dns_reply(&buf[..len]) {
                    let _ = socket.send_to(&reply, peer).await;
                }
            }
        });
        DnsResponder { addr, task }
    }
}

impl Drop for DnsResponder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// RFC 1035 reply to a one-question query: A → 127.0.0.1 (TTL 0), anything else → NOERROR, empty.
fn dns_reply(query: &[u8]) -> Option<Vec<u8>> {
    const TYPE_A: u16 = 1;
    if query.len() < 12 || u16::from_be_bytes([query[4], query[5]]) != 1 {
        return None;
    }
    // The question: labels up to the zero byte, then type and class.
    let mut end = 12;
    while *query.get(end)? != 0 {
        end += 1 + usize::from(query[end]);
    }
    let qtype = u16::from_be_bytes([*query.get(end + 1)?, *query.get(end + 2)?]);
    let question = query.get(12..end + 5)?;
    let answer_a = qtype == TYPE_A;
    let mut reply = Vec::with_capacity(64);
    reply.extend_from_slice(&query[..2]); // id
    reply.extend_from_slice(&[0x84 | (query[2] & 0x01), 0x80]); // QR, AA, RD copied; RA
    reply.extend_from_slice(&[0, 1, 0, u8::from(answer_a), 0, 0, 0, 0]);
    reply.extend_from_slice(question);
    if answer_a {
        // Name: pointer to the question's name at offset 12; A, IN, TTL 0, 4 bytes.
        reply.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 127, 0, 0, 1]);
    }
    Some(reply)
}

/// Pebble's ports, picked before it starts so the hub can be told its directory URL first.
pub struct PebblePorts {
    listen: u16,
    management: u16,
}

impl PebblePorts {
    pub fn pick() -> PebblePorts {
        PebblePorts {
            listen: free_port(),
            management: free_port(),
        }
    }

    pub fn directory(&self) -> String {
        format!("https://127.0.0.1:{}/dir", self.listen)
    }

    /// Starts pebble; it validates TLS-ALPN-01 on `tls_port` of 127.0.0.1 (every name resolves
    /// there through `dns`) and issues certificates valid for `validity_secs`. Returns once
    /// its management interface answers.
    pub async fn start(
        self,
        dir: &Path,
        ca: &TestCa,
        dns: &DnsResponder,
        tls_port: u16,
        validity_secs: u64,
    ) -> Pebble {
        let config = serde_json::json!({
            "pebble": {
                "listenAddress": format!("127.0.0.1:{}", self.listen),
                "managementListenAddress": format!("127.0.0.1:{}", self.management),
                "certificate": ca.cert_pem,
                "privateKey": ca.key_pem,
                // HTTP-01 is never answered; point it at a closed port.
                "httpPort": free_port(),
                "tlsPort": tls_port,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": false,
                "certificateValidityPeriod": validity_secs,
            }
        });
        let config_path = dir.join("pebble-config.json");
        std::fs::write(&config_path, config.to_string()).expect("write pebble config");
        let mut child = Command::new("pebble")
            .arg("-config")
            .arg(&config_path)
            .arg("-dnsserver")
            .arg(dns.addr.to_string())
            // Validate at once instead of after a random 0-15 s; never reject a good nonce;
            // never reuse an authorization, so every issuance is validated again.
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("run pebble (apt-get install pebble; scripts/install-deps.sh does)");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let mut ready_tx = Some(ready_tx);
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let stdout_log = log.clone();
        // Keeps reading so pebble never blocks on a full pipe.
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("ACME directory available at") {
                    if let Some(tx) = ready_tx.take() {
                        let _ = tx.send(());
                    }
                }
                stdout_log.lock().expect("log").push(line);
            }
        });
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let stderr_log = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stderr.next_line().await {
                stderr_log.lock().expect("log").push(line);
            }
        });
        let pebble = Pebble {
            child,
            management: self.management,
            log,
        };
        if tokio::time::timeout(PEBBLE_WAIT, ready_rx).await.is_err() {
            panic!("pebble did not start: {}", pebble.log_text());
        }
        pebble
    }
}

/// A running pebble; killed on drop.
pub struct Pebble {
    child: Child,
    management: u16,
    /// Everything pebble printed, for failure messages.
    log: Arc<Mutex<Vec<String>>>,
}

impl Pebble {
    pub fn log_text(&self) -> String {
        self.log.lock().expect("log").join("\n")
    }

    /// Pebble's root CA (it makes a new one at every start), from its management interface.
    pub async fn root(&self, ca: &TestCa) -> CertificateDer<'static> {
        let body = tokio::time::timeout(PEBBLE_WAIT, async {
            // Pebble binds its management port in the background after "available".
            loop {
                match https_get(ca, self.management, "/roots/0").await {
                    Ok(body) => break body,
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                        tokio::time::sleep(Duration::from_millis(20)).await
                    }
                    Err(e) => panic!("GET /roots/0: {e}"),
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("GET /roots/0 timed out: {}", self.log_text()));
        let start = body
            .find("-----BEGIN CERTIFICATE-----")
            .unwrap_or_else(|| panic!("no PEM in /roots/0: {body}"));
        CertificateDer::from_pem_slice(&body.as_bytes()[start..]).expect("pebble root PEM")
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// GET over HTTPS to 127.0.0.1:`port`, trusting the test CA; the whole response as text.
async fn https_get(ca: &TestCa, port: u16, path: &str) -> std::io::Result<String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&ca.root_pem).expect("root") {
        roots.add(cert.expect("root pem")).expect("add root");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    let name = ServerName::try_from("127.0.0.1").expect("name");
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?;
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    tls.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    // Go may close without close_notify; what was read is complete by then.
    let _ = tls.read_to_end(&mut response).await;
    Ok(String::from_utf8_lossy(&response).into_owned())
}

#[test]
fn dns_replies_are_well_formed() {
    // id 0x1234, RD, one question: "a.test" A IN.
    let query = [
        0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'a', 4, b't', b'e', b's', b't', 0, 0,
        1, 0, 1,
    ];
    let reply = dns_reply(&query).expect("reply");
    assert_eq!(&reply[..4], &[0x12, 0x34, 0x85, 0x80]);
    assert_eq!(&reply[4..12], &[0, 1, 0, 1, 0, 0, 0, 0]);
    assert_eq!(&reply[reply.len() - 4..], &[127, 0, 0, 1]);
    let mut aaaa = query;
    aaaa[21] = 28;
    let reply = dns_reply(&aaaa).expect("reply");
    assert_eq!(&reply[6..8], &[0, 0], "no answer for AAAA");
    assert_eq!(reply.len(), query.len());
    assert!(dns_reply(&query[..15]).is_none(), "truncated query");
}
