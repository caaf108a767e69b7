//! TURN rules without a network: coturn-compatible credentials, the peer policy and the
//! `[turn]` configuration. The server itself, over UDP, is tested in `turn_relay.rs`.

#[path = "support/turn.rs"]
mod support;

use std::time::Duration;

use doorbell_hub::testing::{
    denied_class, parse_port_range, password, Cidr, CredentialError, PeerPolicy, TurnVerifier,
};
use doorbell_hub::{ResolvedTurn, TurnConfig, TurnIssuer};
use support::{at, defaults, ip, parse, DENIED, SECRET};
use tempfile::TempDir;

// ---------------------------------------------------------------------------------------------
// Credentials

#[test]
fn minted_credentials_verify_and_match_coturn_formula() {
    let issuer = TurnIssuer::new(SECRET, Duration::from_secs(300), vec!["turn:x:1".into()]);
    let (user, pass) = issuer.mint_at("p-7c1b", at(1_767_225_300));
    assert_eq!(user, "1767225600:p-7c1b");
    // The fixture value, computed independently (Python hmac / node crypto).
    assert_eq!(
        password(b"doorbell-example-secret", "1767225600:p-7c1b"),
        "sk/11w/xYJNKUPwlCUMAQ6eJdyg="
    );
    let verifier = TurnVerifier::new(SECRET, Duration::from_secs(3600));
    assert_eq!(verifier.check(&user, &pass, at(1_767_225_300)), Ok(()));
    assert_eq!(verifier.check(&user, &pass, at(1_767_225_599)), Ok(()));
}

#[test]
fn expired_far_future_bad_hmac_and_malformed_are_refused() {
    let verifier = TurnVerifier::new(SECRET, Duration::from_secs(3600));
    let now = at(1_767_225_300);
    let ok = |u: &str| password(SECRET.as_bytes(), u);
    // Expired (and exactly at expiry).
    for u in ["1767225299:d-1", "1767225300:d-1", "1:d-1"] {
        assert_eq!(
            verifier.check(u, &ok(u), now),
            Err(CredentialError::Expired),
            "{u}"
        );
    }
    // Further ahead than max_ttl.
    for u in [
        "1767228901:d-1",
        "99999999999:d-1",
        "18446744073709551615:d-1",
    ] {
        assert_eq!(
            verifier.check(u, &ok(u), now),
            Err(CredentialError::TooFarAhead),
            "{u}"
        );
    }
    // Right shape and time, wrong HMAC (other secret, other username, truncated).
    let u = "1767225600:d-1";
    assert_eq!(
        verifier.check(u, &password(b"other", u), now),
        Err(CredentialError::WrongPassword)
    );
    assert_eq!(
        verifier.check(u, &ok("1767225600:d-2"), now),
        Err(CredentialError::WrongPassword)
    );
    assert_eq!(
        verifier.check(u, &ok(u)[..10], now),
        Err(CredentialError::WrongPassword)
    );
    // Malformed: the crate's stock handler's integer-only form, empty parts, signs, spaces,
    // overlong expiry or id, non-ASCII.
    let long_id = format!("1767225600:{}", "x".repeat(65));
    for u in [
        "1767225600",
        "d-1",
        ":d-1",
        "1767225600:",
        "+1767225600:d-1",
        "-1:d-1",
        " 1767225600:d-1",
        "1767225600:d 1",
        "1767225600:dé",
        "123456789012345678901:d-1",
        long_id.as_str(),
    ] {
        assert_eq!(
            verifier.check(u, &ok(u), now),
            Err(CredentialError::Malformed),
            "{u:?}"
        );
    }
    // A colon inside the id is part of the id (coturn splits at the first separator too).
    let u = "1767225600:call:d-1";
    assert_eq!(verifier.check(u, &ok(u), now), Ok(()));
}

// ---------------------------------------------------------------------------------------------
// Peer policy

#[test]
fn every_private_class_is_denied_including_mapped_forms() {
    let policy = PeerPolicy::default();
    for (addr, class) in DENIED {
        assert_eq!(denied_class(ip(addr)), Some(*class), "{addr}");
        assert!(!policy.permits(ip(addr)), "{addr} must be denied");
    }
    for public in [
        "8.8.8.8",
        "1.1.1.1",
        "100.63.255.255",
        "100.128.0.1",
        "172.32.0.1",
        "::ffff:8.8.8.8",
        "2606:4700:4700::1111",
        "64:ff9b::808:808",
    ] {
        assert_eq!(denied_class(ip(public)), None, "{public}");
        assert!(policy.permits(ip(public)), "{public} must be allowed");
    }
}

#[test]
fn allow_list_exempts_exactly_its_blocks_in_every_form() {
    let allow: Vec<Cidr> = ["127.0.0.1/32", "10.1.0.0/16", "fd00::/64"]
        .iter()
        .map(|s| s.parse().expect("cidr"))
        .collect();
    let policy = PeerPolicy::new(allow);
    for yes in ["127.0.0.1", "::ffff:127.0.0.1", "10.1.2.3", "fd00::5"] {
        assert!(policy.permits(ip(yes)), "{yes}");
    }
    for no in [
        "127.0.0.2",
        "10.2.0.1",
        "::ffff:10.2.0.1",
        "fd00:0:0:1::5",
        "::1",
    ] {
        assert!(!policy.permits(ip(no)), "{no}");
    }
    for bad in ["10.0.0.0/33", "fd00::/129", "nope", "10.0.0.1/", "/8"] {
        assert!(bad.parse::<Cidr>().is_err(), "{bad}");
    }
}

#[test]
fn config_errors_name_the_key_and_defaults_fill_in() {
    let dir = TempDir::new().expect("tempdir");
    let d = defaults(dir.path());
    let err = |t: &str| parse(t).resolve(&d).expect_err(t).key;
    assert_eq!(err("[turn]\nmode = \"embedded\""), "turn.relay_address");
    assert_eq!(
        err("[turn]\nmode = \"embedded\"\nrelay_address = \"203.0.113.7\"\nrelay_ports = \"9-1\""),
        "turn.relay_ports"
    );
    assert_eq!(
        err("[turn]\nmode = \"embedded\"\nlisten = \"127.0.0.1:0\"\nallow_peers = [\"10.0.0.0/99\"]"),
        "turn.allow_peers"
    );
    assert_eq!(err("[turn]\nmode = \"external\""), "turn.urls");
    assert_eq!(
        err("[turn]\nmode = \"external\"\nurls = [\"turn:t.example:3478\"]"),
        "turn.secret_file"
    );
    assert_eq!(
        err("[turn]\nmode = \"embedded\"\nlisten = \"127.0.0.1:0\"\ncredential_ttl_secs = 7200"),
        "turn.credential_ttl_secs"
    );
    assert_eq!(
        err("[turn]\nmode = \"external\"\nurls = [\"http://x\"]"),
        "turn.urls"
    );
    // Embedded with only a STUN URL would mint credentials nobody can use.
    assert_eq!(
        err("[turn]\nmode = \"embedded\"\nlisten = \"127.0.0.1:0\"\nurls = [\"stun:127.0.0.1:3478\"]"),
        "turn.urls"
    );
    assert!(
        toml::from_str::<toml::Table>("[turn]\nmdoe = \"embedded\"")
            .ok()
            .and_then(|t| t["turn"].clone().try_into::<TurnConfig>().err())
            .is_some(),
        "unknown keys are errors"
    );
    assert_eq!(parse("[turn]").resolve(&d).expect("off"), ResolvedTurn::Off);
    match parse("[turn]\nmode = \"embedded\"\nlisten = \"127.0.0.1:0\"")
        .resolve(&d)
        .expect("ok")
    {
        ResolvedTurn::Embedded(s) => {
            assert_eq!(s.relay_address, ip("127.0.0.1"));
            assert_eq!(s.relay_ports, (49152, 65535));
            assert_eq!(s.mint.credential_ttl_secs, 900);
            assert_eq!(s.max_ttl_secs, 3600);
            assert_eq!(s.max_allocations_per_credential, 24);
            assert_eq!(s.max_allocations, 2048);
            assert_eq!(s.mint.secret_file, dir.path().join("turn-secret"));
        }
        other => panic!("expected embedded, got {other:?}"),
    }
    assert_eq!(parse_port_range("49152-49407"), Some((49152, 49407)));
    assert_eq!(parse_port_range("0-10"), None);
}
