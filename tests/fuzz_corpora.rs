//! Replays the committed fuzz corpora of every decoder of outside input, the door's and the
//! hub's (`fuzz/corpus/<target>/`), and every input a fuzzer once crashed on
//! (`fuzz/regressions/<target>/`) on stable, in every `cargo test`: each must go through
//! without a panic. Long runs: `bash scripts/fuzz.sh` (nightly, cargo-fuzz; fuzz/Cargo.toml).

use std::path::PathBuf;

use doorbell_hub::fuzzing as hub;
use doorbelld::fuzzing;

/// Every file of the corpus and regressions of `target`; at least one seed must exist.
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut out = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("corpus entry").path();
            out.push((
                path.clone(),
                std::fs::read(&path).expect("read corpus file"),
            ));
        }
    }
    assert!(!out.is_empty(), "no seed inputs for fuzz target {target}");
    out
}

fn replay(target: &str, run: fn(&[u8])) {
    for (path, bytes) in inputs(target) {
        for end in [bytes.len(), bytes.len() / 2, bytes.len().min(7)] {
            let result = std::panic::catch_unwind(|| run(&bytes[..end]));
            assert!(
                result.is_ok(),
                "{target} panicked on {} (first {end} bytes)",
                path.display()
            );
        }
    }
}

#[test]
fn sdp_answer_corpus() {
    replay("sdp_answer", fuzzing::sdp_answer);
}

#[test]
fn control_socket_corpus() {
    replay("control_socket", fuzzing::control_socket);
}

#[test]
fn door_config_corpus() {
    replay("door_config", fuzzing::door_config);
}

#[test]
fn wire_json_corpus() {
    replay("wire_json", hub::wire_json);
}

#[test]
fn turn_datagram_corpus() {
    replay("turn_datagram", hub::turn_datagram);
}

#[test]
fn http_bodies_corpus() {
    replay("http_bodies", hub::http_bodies);
}

#[test]
fn media_uploads_corpus() {
    replay("media_uploads", hub::media_uploads);
}
