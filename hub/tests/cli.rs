//! The `doorbell-hub` binary: add-door, pair, serve's stdout contract, SIGTERM drain.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

fn hub_cmd(db: &std::path::Path) -> Command {
    // Cross-built tests run under qemu-user, which cannot exec a foreign binary by itself.
    let mut cmd = match std::env::var_os("DOORBELL_TEST_RUNNER") {
        Some(runner) => {
            let mut cmd = Command::new(runner);
            cmd.arg(env!("CARGO_BIN_EXE_doorbell-hub"));
            cmd
        }
        None => Command::new(env!("CARGO_BIN_EXE_doorbell-hub")),
    };
    cmd.arg("--db")
        .arg(db)
        .env_remove("DOORBELL_HUB_DB")
        .env_remove("STATE_DIRECTORY");
    cmd
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run doorbell-hub");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

#[test]
fn add_door_pair_serve_and_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("hub.sqlite3");

    let line = run_ok(hub_cmd(&db).args(["add-door", "Front door", "--json"]));
    let v: serde_json::Value = serde_json::from_str(line.trim()).expect("one JSON line");
    assert!(v["door_id"].as_str().expect("door_id").starts_with("d-"));
    assert_eq!(v["secret"].as_str().expect("secret").len(), 32);
    assert_eq!(v["name"], "Front door");

    // Only the door admits a phone: the hub's `pair` refuses and says where to go.
    let out = hub_cmd(&db)
        .args([
            "pair",
            "Front door",
            "--public-url",
            "https://door.example/",
        ])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "no link printed");
    assert!(String::from_utf8_lossy(&out.stderr).contains("doorbelld pair"));

    let out = hub_cmd(&db)
        .args(["serve", "--listen", "0.0.0.0:0", "--insecure-http"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));

    let mut server = hub_cmd(&db)
        .args(["serve", "--listen", "127.0.0.1:0", "--insecure-http"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let stdout = server.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let _ = tx.send(lines.next());
    });
    let listening = rx
        .recv_timeout(WAIT)
        .expect("serve printed nothing in time")
        .expect("a line")
        .expect("utf-8 line");
    let base = listening
        .strip_prefix("Listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {listening:?}"))
        .to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");

    // The server stored its base URL for other processes.
    let store = doorbell_hub::Store::open(&db).expect("open");
    assert_eq!(
        store.base_url().expect("read").as_deref(),
        Some(base.as_str())
    );
    let phones = run_ok(hub_cmd(&db).args(["doors"]));
    assert!(phones.contains("Front door"));

    let status = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(server.wait());
    });
    let exit = rx
        .recv_timeout(WAIT)
        .expect("serve did not exit after SIGTERM")
        .expect("wait");
    assert!(exit.success(), "{exit:?}");
}

#[test]
fn serve_config_turn_mistakes_name_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("hub.sqlite3");
    let conf = dir.path().join("hub.toml");
    for (text, key) in [
        // A wildcard listener needs the public address spelled out.
        (
            "[turn]\nmode = \"embedded\"\nlisten = \"0.0.0.0:0\"\n",
            "turn.relay_address",
        ),
        ("[turn]\nmode = \"external\"\n", "turn.urls"),
        (
            "[turn]\nmode = \"embedded\"\nrelay_adress = \"1.2.3.4\"\n",
            "relay_adress",
        ),
        ("[tunr]\nmode = \"embedded\"\n", "tunr"),
        ("[history]\nmax_dayz = 3\n", "max_dayz"),
        ("[history]\nmax_bytes = -1\n", "max_bytes"),
        (
            "[push]\nvapid_subject = \"admin@example.net\"\n",
            "push.vapid_subject",
        ),
        (
            "[push]\nallow_insecure_endpoints = [\"10.0.0.1\"]\n",
            "push.allow_insecure_endpoints",
        ),
        (
            "[notify.ntfy]\ntopic_url = \"ntfy.sh\"\n",
            "notify.ntfy.topic_url",
        ),
        ("[notify.ntfy]\ntopic = \"https://ntfy.sh/x\"\n", "topic"),
    ] {
        std::fs::write(&conf, text).expect("write config");
        let out = hub_cmd(&db)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--insecure-http",
                "--config",
            ])
            .arg(&conf)
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{text:?} was accepted");
        assert!(err.contains(key), "{text:?}: expected {key} in {err}");
    }
}

#[test]
fn serve_acme_mistakes_name_the_flag() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("hub.sqlite3");
    let domain = ["--acme-domain", "hub.example.net"];
    let cases: [(&[&str], &str); 6] = [
        (
            &["--acme-contact", "mailto:me@example.net"],
            "--acme-domain",
        ),
        (&["--acme-domain", "192.168.1.20"], "--acme-domain"),
        (
            &[domain[0], domain[1], "--acme-contact", "me@example.net"],
            "--acme-contact",
        ),
        (
            &[
                domain[0],
                domain[1],
                "--acme-directory",
                "http://ca.example/dir",
            ],
            "--acme-directory",
        ),
        (
            &[
                domain[0],
                domain[1],
                "--acme-ca-file",
                "/nonexistent/ca.pem",
            ],
            "--acme-ca-file",
        ),
        (&[domain[0], domain[1], "--self-signed"], "--self-signed"),
    ];
    for (args, flag) in cases {
        let out = hub_cmd(&db)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(err.contains(flag), "{args:?}: expected {flag} in {err}");
    }
}

#[test]
fn serve_acme_links_use_the_domain_and_start_before_a_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("hub.sqlite3");
    let line = run_ok(hub_cmd(&db).args(["add-door", "Front door", "--json"]));
    let v: serde_json::Value = serde_json::from_str(line.trim()).expect("one JSON line");
    assert!(v["door_id"].is_string(), "{line}");
    // No CA answers on port 1: the hub listens anyway and keeps retrying in the background.
    let mut server = hub_cmd(&db)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(["--acme-domain", "hub.example.net"])
        .args(["--acme-directory", "https://127.0.0.1:1/directory"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let stdout = server.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let _ = tx.send(lines.next());
    });
    let listening = rx
        .recv_timeout(WAIT)
        .expect("serve printed nothing in time");
    let listening = listening.expect("a line").expect("utf-8 line");
    assert!(
        listening.starts_with("Listening on https://127.0.0.1:"),
        "{listening}"
    );
    let store = doorbell_hub::Store::open(&db).expect("open");
    assert_eq!(
        store.base_url().expect("read").as_deref(),
        Some("https://hub.example.net")
    );
    let _ = server.kill();
    let _ = server.wait();
}
