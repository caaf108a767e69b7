//! The door's decisions on pairing: a proof only the code's holder can make, once, in time.

use super::codes::Codes;
use super::*;
use doorbell_protocol::Role;

const FP: &str = "3B:7A:0C:55:91:DE:4F:20:8B:11:C3:9A:76:E2:05:B8:44:1D:F0:6C:A9:32:87:5E:D4:10:6B:C8:2F:93:E7:01";
const SECRET: [u8; 16] = *b"0123456789abcdef";
const NOW: u64 = 1_767_225_600_000;

fn codes() -> Codes {
    let mut codes = Codes::default();
    codes.insert_for_test(NOW, true, "c1", &SECRET);
    codes
}

#[test]
fn the_holder_of_the_code_pairs_once() {
    let mut codes = codes();
    let proof = proof_hex(&SECRET, "d-1", "c1", FP);
    let (access, key) = codes.redeem(NOW + 1, "d-1", "c1", FP, &proof).unwrap();
    assert_eq!(
        key,
        phone_key(&SECRET),
        "the door and the phone derive the same key"
    );
    assert_eq!(access.role, Role::Owner);
    assert!(access.may_unlock);
    assert_eq!(
        codes.redeem(NOW + 2, "d-1", "c1", FP, &proof),
        Err(PairRefusal::Used)
    );
}

#[test]
fn a_forged_proof_is_refused() {
    let mut codes = codes();
    // Whoever does not know the secret (the hub) can only guess.
    let forged = proof_hex(b"not-the-secret!!", "d-1", "c1", FP);
    assert_eq!(
        codes.redeem(NOW, "d-1", "c1", FP, &forged),
        Err(PairRefusal::BadProof)
    );
    assert_eq!(
        codes.redeem(NOW, "d-1", "c1", FP, "zz"),
        Err(PairRefusal::BadProof)
    );
    // A real proof for another certificate (the hub swapping in its own) fails too.
    let other = FP.replacen("3B", "3C", 1);
    let proof = proof_hex(&SECRET, "d-1", "c1", FP);
    assert_eq!(
        codes.redeem(NOW, "d-1", "c1", &other, &proof),
        Err(PairRefusal::BadProof)
    );
    // Or for another door.
    assert_eq!(
        codes.redeem(NOW, "d-2", "c1", FP, &proof),
        Err(PairRefusal::BadProof)
    );
    // The forgeries did not use the code up.
    assert!(codes.redeem(NOW, "d-1", "c1", FP, &proof).is_ok());
}

#[test]
fn unknown_and_expired_codes_are_refused() {
    let mut codes = codes();
    let proof = proof_hex(&SECRET, "d-1", "c1", FP);
    assert_eq!(
        codes.redeem(NOW, "d-1", "c2", FP, &proof),
        Err(PairRefusal::UnknownCode)
    );
    let late = NOW + PAIR_CODE_TTL.as_millis() as u64;
    assert_eq!(
        codes.redeem(late, "d-1", "c1", FP, &proof),
        Err(PairRefusal::Expired)
    );
}

#[test]
fn pairing_pins_the_phone_and_keeps_it_across_restarts() {
    let dir = std::env::temp_dir().join(format!("doorbell-pairing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut pairing = Pairing::load(&dir, "d-1").unwrap();
    assert!(pairing.pins().is_empty());
    let code = pairing.new_code(NOW).unwrap();
    let secret: Vec<u8> = (0..code.secret_hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&code.secret_hex[i..i + 2], 16).unwrap())
        .collect();
    let phone = PhoneId::new("p-1");
    let lower = FP.to_lowercase();
    let proof = proof_hex(&secret, "d-1", &code.code_id, FP);
    // The phone may send its fingerprint in lowercase: the proof is over the normalised one.
    let access = pairing
        .redeem(NOW, &code.code_id, &phone, &lower, &proof)
        .unwrap();
    assert_eq!(
        access.role,
        Role::Owner,
        "the first pinned phone owns the door"
    );
    let second = pairing.new_code(NOW).unwrap();
    assert_ne!(second.code_id, code.code_id);

    let again = Pairing::load(&dir, "d-1").unwrap();
    assert_eq!(again.pinned().len(), 1);
    assert_eq!(again.pinned()[0].fingerprint, FP);
    assert_eq!(again.pins(), pairing.pins());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.join(PINS_FILE))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // A later code makes members.
    let mut again = again;
    let member = again.new_code(NOW).unwrap();
    let secret: Vec<u8> = (0..member.secret_hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&member.secret_hex[i..i + 2], 16).unwrap())
        .collect();
    let other = FP.replacen("3B", "4B", 1);
    let proof = proof_hex(&secret, "d-1", &member.code_id, &other);
    let access = again
        .redeem(NOW, &member.code_id, &PhoneId::new("p-2"), &other, &proof)
        .unwrap();
    assert_eq!(access.role, Role::Member);
    assert_eq!(
        again.redeem(NOW, "nope", &PhoneId::new("p-3"), "AA", "00"),
        Err(PairRefusal::BadFingerprint)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn links_carry_the_code_the_door_and_its_fingerprint_in_the_fragment() {
    let code = NewCode {
        code_id: "0a1b".into(),
        secret_hex: "ff00".into(),
    };
    assert_eq!(
        pairing_link("https://h:1/", &code, "Küche & Hof", "d-1", "AA:BB"),
        "https://h:1/#pair=d-1.0a1b.ff00&door=K%C3%BCche%20%26%20Hof&fp=AA:BB"
    );
    assert_eq!(base_url_of("wss://hub.example/ws"), "https://hub.example");
    assert_eq!(
        base_url_of("ws://127.0.0.1:8080/ws"),
        "http://127.0.0.1:8080"
    );
}

#[test]
fn the_proof_matches_the_phones() {
    // The same vector as web/pairing-proof.test.mjs (WebCrypto on the phone).
    assert_eq!(
        proof_hex(&SECRET, "d-1", "c1", FP),
        "a75a776a9b140b4a991d63609455ad7e60217efdd1166069cd852bceca7eb62f"
    );
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn an_owner_invites_with_its_key_and_nobody_else_can() {
    let dir = std::env::temp_dir().join(format!("doorbell-invite-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut pairing = Pairing::load(&dir, "d-1").unwrap();
    let code = pairing.new_code(NOW).unwrap();
    let secret = unhex(&code.secret_hex);
    let owner = PhoneId::new("p-owner");
    let proof = proof_hex(&secret, "d-1", &code.code_id, FP);
    pairing
        .redeem(NOW, &code.code_id, &owner, FP, &proof)
        .unwrap();
    let key = phone_key(&secret);

    let guest = Access {
        role: Role::Guest,
        may_unlock: true,
        may_view: false,
        until_ms: Some(NOW + 86_400_000),
    };
    let code_id = "0f1e2d3c4b5a6978";
    // The hub, without the owner's key, cannot authorise one.
    let forged = invite_auth_hex(b"not the owner's key", "d-1", code_id, &guest);
    assert_eq!(
        pairing.invite(NOW, &owner, code_id, guest, &forged),
        Err(PairRefusal::BadProof)
    );
    // Nor raise what the owner authorised.
    let auth = invite_auth_hex(&key, "d-1", code_id, &guest);
    let raised = Access {
        role: Role::Owner,
        ..guest
    };
    assert_eq!(
        pairing.invite(NOW, &owner, code_id, raised, &auth),
        Err(PairRefusal::BadProof)
    );
    // Nor pass it off as another phone's.
    assert_eq!(
        pairing.invite(NOW, &PhoneId::new("p-other"), code_id, guest, &auth),
        Err(PairRefusal::NotOwner)
    );
    assert_eq!(
        pairing.invite(NOW, &owner, code_id, guest, &auth),
        Ok(guest)
    );
    // The invited phone redeems it with the secret the owner's phone put in the link.
    let invited = FP.replacen("3B", "5B", 1);
    let secret = invite_secret(&key, code_id);
    let proof = proof_hex(&secret, "d-1", code_id, &invited);
    let access = pairing
        .redeem(NOW, code_id, &PhoneId::new("p-guest"), &invited, &proof)
        .unwrap();
    assert_eq!(access, guest);
    // A member cannot invite.
    let member_key = phone_key(&secret);
    let auth = invite_auth_hex(&member_key, "d-1", "1111111111111111", &guest);
    assert_eq!(
        pairing.invite(
            NOW,
            &PhoneId::new("p-guest"),
            "1111111111111111",
            guest,
            &auth
        ),
        Err(PairRefusal::NotOwner)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn invite_vectors_match_the_phones() {
    // The same vectors as web/pairing-proof.test.mjs (WebCrypto on the phone).
    let key = phone_key(&SECRET);
    assert_eq!(
        super::codes::hex(&key),
        "bc0931ed90d12c27ff0c20134c57d64288065f2e3d8b0fa4868a20de8188d6f6"
    );
    assert_eq!(
        super::codes::hex(&invite_secret(&key, "0f1e2d3c4b5a6978")),
        "e991a3b5a74f0c251e596824028d3456"
    );
    let access = Access {
        role: Role::Guest,
        may_unlock: true,
        may_view: false,
        until_ms: Some(1_767_312_000_000),
    };
    assert_eq!(
        invite_auth_hex(&key, "d-1", "0f1e2d3c4b5a6978", &access),
        "0ffadbda1d79eebfbded13e3ffe7827ac555c6e04426a95139a4d27f82aa00df"
    );
}

#[test]
fn only_an_owners_grant_raises_a_pinned_phones_permissions() {
    let dir = std::env::temp_dir().join(format!("doorbell-grant-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut pairing = Pairing::load(&dir, "d-1").unwrap();
    let owner = PhoneId::new("p-owner");
    let code = pairing.new_code(NOW).unwrap();
    let secret = unhex(&code.secret_hex);
    let proof = proof_hex(&secret, "d-1", &code.code_id, FP);
    pairing
        .redeem(NOW, &code.code_id, &owner, FP, &proof)
        .unwrap();
    let key = phone_key(&secret);
    // A member invited without unlock.
    let no_unlock = Access {
        role: Role::Member,
        may_unlock: false,
        may_view: true,
        until_ms: None,
    };
    let code_id = "2222222222222222";
    let auth = invite_auth_hex(&key, "d-1", code_id, &no_unlock);
    pairing
        .invite(NOW, &owner, code_id, no_unlock, &auth)
        .unwrap();
    let member = PhoneId::new("p-member");
    let member_fp = FP.replacen("3B", "6B", 1);
    let proof = proof_hex(&invite_secret(&key, code_id), "d-1", code_id, &member_fp);
    pairing
        .redeem(NOW, code_id, &member, &member_fp, &proof)
        .unwrap();
    let raised = Access {
        may_unlock: true,
        ..no_unlock
    };
    // The hub cannot grant it.
    let forged = grant_auth_hex(b"hub", "d-1", "p-member", &raised);
    assert_eq!(
        pairing.grant(&owner, &member, raised, &forged),
        Err(PairRefusal::BadProof)
    );
    // The owner's grant for another phone is not this one's.
    let other = grant_auth_hex(&key, "d-1", "p-other", &raised);
    assert_eq!(
        pairing.grant(&owner, &member, raised, &other),
        Err(PairRefusal::BadProof)
    );
    let auth = grant_auth_hex(&key, "d-1", "p-member", &raised);
    assert_eq!(
        pairing.grant(
            &owner,
            &PhoneId::new("p-x"),
            raised,
            &grant_auth_hex(&key, "d-1", "p-x", &raised)
        ),
        Err(PairRefusal::UnknownPhone)
    );
    assert_eq!(
        pairing.grant(&member, &member, raised, &auth),
        Err(PairRefusal::NotOwner)
    );
    assert_eq!(pairing.grant(&owner, &member, raised, &auth), Ok(raised));
    let again = Pairing::load(&dir, "d-1").unwrap();
    assert_eq!(again.pins(), pairing.pins(), "the grant was saved");
    assert!(again
        .pinned()
        .iter()
        .any(|p| p.phone_id == member && p.access.may_unlock));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The renewed certificate the re-pin tests move to.
const NEW_FP: &str = "C4:19:8E:02:7F:B3:56:DA:21:90:4C:E8:0B:A7:63:1F:5D:C2:38:94:E0:7B:16:AF:49:D3:82:05:6E:B1:FA:27";

#[test]
fn repin_vector_matches_the_phones() {
    // The same vector as web/pairing-proof.test.mjs (WebCrypto on the phone).
    let key = phone_key(&SECRET);
    assert_eq!(
        repin_proof_hex(&key, "d-1", "p-1", FP, NEW_FP),
        "a2168b8b0787511f55764dcdddf8acb78a2c837699c9e2f0a3a6aa02cdda8ca2"
    );
}

#[test]
fn a_phone_moves_its_own_pin_with_its_key_and_nobody_else_can() {
    let dir = std::env::temp_dir().join(format!("doorbell-repin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut pairing = Pairing::load(&dir, "d-1").unwrap();
    let phone = PhoneId::new("p-1");
    let code = pairing.new_code(NOW).unwrap();
    let secret = unhex(&code.secret_hex);
    let proof = proof_hex(&secret, "d-1", &code.code_id, FP);
    let access = pairing
        .redeem(NOW, &code.code_id, &phone, FP, &proof)
        .unwrap();
    let key = phone_key(&secret);
    let pinned = |p: &Pairing| p.pinned()[0].fingerprint.clone();

    // A hub that forges the proof (it has no key), or replays it for another certificate.
    let forged = repin_proof_hex(b"hub", "d-1", "p-1", FP, NEW_FP);
    assert_eq!(
        pairing.repin(&phone, FP, NEW_FP, &forged),
        Err(PairRefusal::BadProof)
    );
    let proof = repin_proof_hex(&key, "d-1", "p-1", FP, NEW_FP);
    let other_fp = FP.replacen("3B", "5B", 1);
    assert_eq!(
        pairing.repin(&phone, FP, &other_fp, &proof),
        Err(PairRefusal::BadProof)
    );
    assert_eq!(
        pairing.repin(&PhoneId::new("p-x"), FP, NEW_FP, &proof),
        Err(PairRefusal::UnknownPhone)
    );
    assert_eq!(
        pairing.repin(&phone, FP, "AA", &proof),
        Err(PairRefusal::BadFingerprint)
    );
    // A proof the phone made from an old fingerprint the door does not pin.
    let stale = repin_proof_hex(&key, "d-1", "p-1", &other_fp, NEW_FP);
    assert_eq!(
        pairing.repin(&phone, &other_fp, NEW_FP, &stale),
        Err(PairRefusal::NotPinned)
    );
    assert_eq!(pinned(&pairing), FP, "no refusal moved the pin");

    // The phone's own proof, its fingerprints in lowercase: normalised like pairing's.
    let lower = repin_proof_hex(&key, "d-1", "p-1", FP, NEW_FP);
    assert_eq!(
        pairing.repin(&phone, &FP.to_lowercase(), &NEW_FP.to_lowercase(), &lower),
        Ok(access)
    );
    assert_eq!(pinned(&pairing), NEW_FP);
    let answer = |fp: &str| format!("v=0\r\na=fingerprint:sha-256 {fp}\r\n");
    use crate::core::pins::{check, PinCheck};
    assert!(matches!(
        check(&pairing.pins(), &phone, &answer(NEW_FP)),
        PinCheck::Pinned { .. }
    ));
    assert_eq!(
        check(&pairing.pins(), &phone, &answer(FP)),
        PinCheck::Mismatch,
        "the old certificate no longer calls"
    );
    // A retry whose answer was lost is a success, and changes nothing.
    assert_eq!(pairing.repin(&phone, FP, NEW_FP, &proof), Ok(access));
    let again = Pairing::load(&dir, "d-1").unwrap();
    assert_eq!(pinned(&again), NEW_FP, "the re-pin was saved");
    std::fs::remove_dir_all(&dir).unwrap();
}
