//! What the protocol accepts in ids and free text, checked while a message is decoded.
//!
//! Everything here arrives from outside: a door on the Internet, a phone, a hub. An id is used
//! as a key in the hub's database, in log lines and in file names; free text (`software`) is
//! stored and printed by `doorbell-hub doors`. So ids are short and of a safe character set,
//! and text is bounded and free of control characters (a terminal escape in `software` once
//! reached an operator's terminal). A message that breaks a rule does not decode; the hub
//! answers `invalid_id` or `invalid_text` (see [`crate::ErrorCode::for_decode_error`]) and
//! nothing of it is stored.

use serde::{Deserialize, Deserializer};

/// Longest id on the wire, in bytes (every id character is ASCII). The hub's own ids are
/// about 20 characters; 64 leaves room for other doors' call ids without letting one id fill
/// a database row.
pub const MAX_ID_LEN: usize = 64;

/// Longest `hello.software`, in characters: a product and a version ("doorbelld 0.4.1").
pub const MAX_SOFTWARE_CHARS: usize = 64;

/// Marker the decode error of a bad id starts with; [`crate::ErrorCode::for_decode_error`]
/// finds it in serde_json's message, which adds the position after it.
pub(crate) const INVALID_ID: &str = "invalid id";
/// Marker of a bad free-text field, like [`INVALID_ID`].
pub(crate) const INVALID_TEXT: &str = "invalid text";

/// Whether `c` may appear in an id: ASCII letters and digits, `-`, `_`, `.` and `:`. No
/// spaces, slashes, quotes or control characters, so an id is safe in a path, a log line, SQL
/// text and a shell.
pub fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')
}

/// Checks an id: 1 to [`MAX_ID_LEN`] characters of [`is_id_char`]. The error says what is
/// wrong in words a developer of another client can act on.
pub fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err(format!("{INVALID_ID}: empty"));
    }
    if id.len() > MAX_ID_LEN {
        return Err(format!(
            "{INVALID_ID}: {} bytes, at most {MAX_ID_LEN} allowed",
            id.len()
        ));
    }
    if let Some(bad) = id.chars().find(|c| !is_id_char(*c)) {
        return Err(format!(
            "{INVALID_ID}: {:?} is not allowed (letters, digits, '-', '_', '.', ':')",
            bad
        ));
    }
    Ok(())
}

/// Checks a line of free text: at most `max_chars` characters, no control characters.
pub fn check_text(text: &str, max_chars: usize) -> Result<(), String> {
    let chars = text.chars().count();
    if chars > max_chars {
        return Err(format!(
            "{INVALID_TEXT}: {chars} characters, at most {max_chars} allowed"
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(format!(
            "{INVALID_TEXT}: control characters are not allowed"
        ));
    }
    Ok(())
}

/// Decodes an id string and checks it ([`check_id`]).
pub(crate) fn deserialize_id<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let id = String::deserialize(d)?;
    check_id(&id).map_err(serde::de::Error::custom)?;
    Ok(id)
}

/// Decodes `hello.software` and checks it ([`check_text`], [`MAX_SOFTWARE_CHARS`]).
pub(crate) fn deserialize_software<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let text = String::deserialize(d)?;
    check_text(&text, MAX_SOFTWARE_CHARS).map_err(serde::de::Error::custom)?;
    Ok(text)
}

/// Text made safe to print on a terminal or in a log line: control characters (escape
/// sequences, newlines that would forge a second log line) are shown escaped (`\u{1b}`),
/// everything else as it is. For text stored before these rules existed, and for anything
/// printed that did not come through the decoder.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_of_the_safe_set_up_to_64_bytes_pass() {
        assert!(check_id("c-5e2f01aa-3").is_ok());
        assert!(check_id("v-12-d-0123456789abcdef").is_ok());
        assert!(check_id(&"a".repeat(MAX_ID_LEN)).is_ok());
    }

    #[test]
    fn long_empty_or_unsafe_ids_fail_with_the_marker() {
        for bad in [
            String::new(),
            "a".repeat(MAX_ID_LEN + 1),
            "c 1".into(),
            "../etc".into(),
            "c\u{1b}[31m".into(),
            "é".into(),
        ] {
            let err = check_id(&bad).unwrap_err();
            assert!(err.starts_with(INVALID_ID), "{bad:?}: {err}");
        }
    }

    #[test]
    fn text_is_bounded_and_free_of_control_characters() {
        assert!(check_text("doorbelld 0.4.1", MAX_SOFTWARE_CHARS).is_ok());
        assert!(check_text("Tür – ☃", MAX_SOFTWARE_CHARS).is_ok());
        assert!(check_text(&"x".repeat(65), MAX_SOFTWARE_CHARS)
            .unwrap_err()
            .starts_with(INVALID_TEXT));
        assert!(check_text("x\u{1b}[2J", MAX_SOFTWARE_CHARS)
            .unwrap_err()
            .starts_with(INVALID_TEXT));
        assert!(check_text("a\nb", MAX_SOFTWARE_CHARS).is_err());
    }

    #[test]
    fn printable_escapes_control_characters_only() {
        assert_eq!(printable("Tür\u{1b}[31m\n"), "Tür\\u{1b}[31m\\n");
        assert_eq!(printable("plain"), "plain");
    }
}
