//! sd_notify without systemd: the test plays the service manager. It binds a Unix datagram
//! socket as `NOTIFY_SOCKET`, sets `WATCHDOG_USEC`, runs the real `doorbelld --demo` with test
//! sources, and reads what the daemon tells systemd.

use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// systemd's watchdog timeout for the test; the daemon must ping at half of it.
const WATCHDOG: Duration = Duration::from_millis(1000);

/// Kills the daemon if the test fails before it exits by itself.
struct Daemon(Option<Child>);

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Daemon {
    fn child(&self) -> &Child {
        self.0.as_ref().expect("daemon still owned by the test")
    }
}

fn signal(child: &Child, sig: libc::c_int) {
    // SAFETY: kill(2) on our own child's pid.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, sig) };
    assert_eq!(rc, 0, "kill({sig}) failed");
}

/// The next datagram, or None after `timeout`.
fn next(socket: &UnixDatagram, timeout: Duration) -> Option<String> {
    socket.set_read_timeout(Some(timeout)).expect("timeout");
    let mut buf = [0u8; 4096];
    match socket.recv(&mut buf) {
        Ok(n) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            None
        }
        Err(e) => panic!("recv: {e}"),
    }
}

/// Read until a message contains `line`; panics with everything seen after `timeout`.
fn wait_for(socket: &UnixDatagram, line: &str, timeout: Duration) -> (String, Instant) {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match next(socket, left) {
            Some(msg) if msg.lines().any(|l| l == line) => return (msg, Instant::now()),
            Some(msg) => seen.push(msg),
            None => break,
        }
    }
    panic!("no {line:?} within {timeout:?}; saw {seen:?}");
}

#[test]
fn ready_watchdog_cadence_hang_and_stopping() {
    let dir = tempfile::tempdir().expect("tempdir");
    let notify_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&notify_path).expect("bind NOTIFY_SOCKET");

    // Cross-built tests run under qemu-user, which cannot exec a foreign binary by itself.
    let mut command = match std::env::var_os("DOORBELL_TEST_RUNNER") {
        Some(runner) => {
            let mut command = Command::new(runner);
            command.arg(env!("CARGO_BIN_EXE_doorbelld"));
            command
        }
        None => Command::new(env!("CARGO_BIN_EXE_doorbelld")),
    };
    let child = command
        .args(["--demo", "--listen", "127.0.0.1:0"])
        .env("NOTIFY_SOCKET", &notify_path)
        .env("WATCHDOG_USEC", WATCHDOG.as_micros().to_string())
        .env("DOORBELL__STATE_DIR", dir.path().join("state"))
        .env("DOORBELL__MEDIA__CAMERA", "test")
        .env("DOORBELL__MEDIA__MICROPHONE", "test")
        .env("DOORBELL__MEDIA__SPEAKER", "none")
        .env("DOORBELL__BUTTON__STDIN", "false")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("start doorbelld");
    let mut daemon = Daemon(Some(child));

    // READY only once the hub link is up; it carries a status line.
    let (ready, _) = wait_for(&socket, "READY=1", Duration::from_secs(60));
    assert!(ready.contains("STATUS=online as"), "{ready:?}");

    // Pings at about half the timeout, never a gap systemd would punish.
    let (_, mut last) = wait_for(&socket, "WATCHDOG=1", WATCHDOG);
    for _ in 0..3 {
        let (_, at) = wait_for(&socket, "WATCHDOG=1", WATCHDOG);
        let gap = at - last;
        assert!(gap < WATCHDOG, "watchdog gap {gap:?} exceeds {WATCHDOG:?}");
        assert!(gap > WATCHDOG / 4, "pinging far too often: {gap:?}");
        last = at;
    }

    // A hung process sends nothing: stop it, drain what was in flight, expect silence for a
    // whole watchdog period (systemd would restart it now), then pings resume on SIGCONT.
    signal(daemon.child(), libc::SIGSTOP);
    while next(&socket, Duration::from_millis(50)).is_some() {}
    assert_eq!(next(&socket, WATCHDOG), None, "pinged while stopped");
    signal(daemon.child(), libc::SIGCONT);
    wait_for(&socket, "WATCHDOG=1", WATCHDOG);

    // SIGTERM: STOPPING=1, then a clean exit.
    signal(daemon.child(), libc::SIGTERM);
    wait_for(&socket, "STOPPING=1", Duration::from_secs(10));
    // Wait for the exit on a thread, so the wait itself has a timeout.
    let mut child = daemon.0.take().expect("daemon");
    let pid = child.id();
    let (exited, exit) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = exited.send(child.wait());
    });
    let status = match exit.recv_timeout(Duration::from_secs(10)) {
        Ok(status) => status.expect("wait"),
        Err(_) => {
            // SAFETY: kill(2) on our own child, which has not been reaped.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            panic!("doorbelld did not exit within 10 s of SIGTERM");
        }
    };
    assert!(status.success(), "exit status {status}");
}
