//! A pairing link admits a phone, so it must never reach a log. The test runs `doorbelld` as
//! systemd runs the local-first service (no `--demo`, `hub.listen` set, stdout and stderr
//! captured as the journal would, debug logging), waits until it is ready, gets a link the
//! documented way (`doorbelld pair`), stops it, and scans everything it printed. On the way
//! it is the trust test with a real door: a pairing proof made without the code's secret
//! (all a hub that forges pairings can make) is refused by the door.

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Generous: the first start makes the door's identity and the hub's database.
const READY: Duration = Duration::from_secs(60);

fn doorbelld() -> Command {
    // Cross-built tests run under qemu-user, which cannot exec a foreign binary by itself.
    match std::env::var_os("DOORBELL_TEST_RUNNER") {
        Some(runner) => {
            let mut command = Command::new(runner);
            command.arg(env!("CARGO_BIN_EXE_doorbelld"));
            command
        }
        None => Command::new(env!("CARGO_BIN_EXE_doorbelld")),
    }
}

#[test]
fn the_service_never_prints_a_pairing_link() {
    let dir = tempfile::tempdir().expect("tempdir");
    let notify_path = dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).expect("bind NOTIFY_SOCKET");
    let out_path = dir.path().join("stdout.log");
    let err_path = dir.path().join("stderr.log");
    let state = dir.path().join("state");
    let env = |c: &mut Command| {
        c.env("DOORBELL__STATE_DIR", &state)
            .env("DOORBELL__HUB__LISTEN", "127.0.0.1:0")
            .env("DOORBELL__MEDIA__CAMERA", "test")
            .env("DOORBELL__MEDIA__MICROPHONE", "test")
            .env("DOORBELL__MEDIA__SPEAKER", "none")
            .env("DOORBELL__BUTTON__STDIN", "false");
    };
    let mut command = doorbelld();
    env(&mut command);
    let mut child = command
        .env("NOTIFY_SOCKET", &notify_path)
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("start doorbelld");

    // READY=1 once the door is online with its embedded hub.
    let deadline = Instant::now() + READY;
    let mut ready = false;
    let mut buf = [0u8; 4096];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        notify.set_read_timeout(Some(left)).expect("timeout");
        match notify.recv(&mut buf) {
            Ok(n)
                if String::from_utf8_lossy(&buf[..n])
                    .lines()
                    .any(|l| l == "READY=1") =>
            {
                ready = true;
                break;
            }
            Ok(_) => continue,
            Err(_) => break,
        }
    }
    if !ready {
        let _ = child.kill();
        panic!(
            "doorbelld was not ready within {READY:?}; stderr:\n{}",
            std::fs::read_to_string(&err_path).unwrap_or_default()
        );
    }

    // The way to get a link: on the machine, through the control socket.
    let control = |args: &[&str]| {
        let mut command = doorbelld();
        env(&mut command);
        command.args(args).output().expect("run doorbelld")
    };
    let pair = control(&["pair"]);
    let link = String::from_utf8_lossy(&pair.stdout).trim().to_owned();
    // A proof made without the code's secret (what a hub that forges pairings can do) is
    // refused by the door, and uses nothing up; the link then pairs a phone, which
    // `doorbelld phones` lists and `phones remove` removes.
    let (forged_status, forged) = redeem(&link, Some(&[0u8; 16]));
    let (status, paired) = redeem(&link, None);
    let phone_id = paired["phone_id"].as_str().unwrap_or_default().to_owned();
    let listed = String::from_utf8_lossy(&control(&["phones"]).stdout).into_owned();
    let removed = control(&["phones", "remove", &phone_id]);
    let after = String::from_utf8_lossy(&control(&["phones"]).stdout).into_owned();
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    rx.recv_timeout(Duration::from_secs(15))
        .expect("doorbelld did not exit within 15 s of SIGTERM")
        .expect("wait");
    assert!(
        pair.status.success() && link.contains("/#pair="),
        "`doorbelld pair` gave no link: {link:?} {}",
        String::from_utf8_lossy(&pair.stderr)
    );

    assert_eq!(forged_status, 403, "{forged}");
    assert!(
        forged["error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("bad_proof"),
        "{forged}"
    );
    assert_eq!(status, 200, "{paired}");
    assert!(listed.contains(&phone_id), "{listed}");
    assert!(
        removed.status.success(),
        "{}",
        String::from_utf8_lossy(&removed.stderr)
    );
    assert_eq!(after.trim(), "[]");

    let stdout = std::fs::read_to_string(&out_path).expect("stdout");
    let stderr = std::fs::read_to_string(&err_path).expect("stderr");
    let code = link
        .rsplit("#pair=")
        .next()
        .and_then(|rest| rest.split('&').next())
        .unwrap_or_default();
    for (name, text) in [("stdout", &stdout), ("stderr", &stderr)] {
        assert!(
            !text.contains("#pair=") && !text.contains(code),
            "the service's {name} contains a pairing link:\n{text}"
        );
    }
    // It does say how to get one.
    assert!(stdout.contains("doorbelld pair"), "{stdout}");
}

/// Redeems the door-made pairing link's code with `POST /api/pair` on the (plain HTTP,
/// loopback) hub of the link, proving a made-up certificate fingerprint with the code's
/// secret, or with `forge_with` instead; returns the HTTP status and the JSON body.
fn redeem(link: &str, forge_with: Option<&[u8]>) -> (u16, serde_json::Value) {
    use std::io::{Read, Write};
    let (base, rest) = link.split_once("/#pair=").expect("a pairing link");
    // `<door_id>.<code_id>.<secret>`, then `&door=…&fp=…`.
    let code = rest.split('&').next().unwrap_or(rest);
    let mut parts = code.rsplitn(3, '.');
    let (secret_hex, code_id, door_id) = (
        parts.next().expect("secret"),
        parts.next().expect("code id"),
        parts.next().expect("door id"),
    );
    let secret: Vec<u8> = (0..secret_hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&secret_hex[i..i + 2], 16).expect("hex"))
        .collect();
    let fingerprint = vec!["AB"; 32].join(":");
    let proof = doorbelld::pairing::proof_hex(
        forge_with.unwrap_or(&secret),
        door_id,
        code_id,
        &fingerprint,
    );
    let host = base
        .strip_prefix("http://")
        .expect("a loopback hub serves plain HTTP");
    let body = format!(
        r#"{{"door_id":"{door_id}","code_id":"{code_id}","fingerprint":"{fingerprint}","proof":"{proof}","name":"Test phone"}}"#
    );
    let mut stream = std::net::TcpStream::connect(host).expect("connect to the hub");
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    write!(
        stream,
        "POST /api/pair HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let json = response.split("\r\n\r\n").nth(1).expect("a body");
    (status, serde_json::from_str(json).expect("JSON"))
}
