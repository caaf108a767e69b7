//! Pairing links: `https://<hub>/#pair=<code>&door=<door's name>`. The name lets the phone ask
//! "Pair this phone with Front door?" before it redeems anything (docs/PROTOCOL.md,
//! "Authentication").

/// "https://host/#pair=CODE&door=Front%20door".
pub fn pairing_url(base_url: &str, code: &str, door_name: &str) -> String {
    format!(
        "{}/#pair={}&door={}",
        base_url.trim_end_matches('/'),
        code,
        encode_component(door_name)
    )
}

/// Percent-encodes everything but RFC 3986's unreserved characters, as JavaScript's
/// `encodeURIComponent` would, so the app's `decodeURIComponent` gets the name back.
fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_carry_the_code_and_the_encoded_name() {
        assert_eq!(
            pairing_url("https://h:1/", "abc", "Front door"),
            "https://h:1/#pair=abc&door=Front%20door"
        );
        assert_eq!(
            pairing_url("http://h", "c", "Küche & Hof #2"),
            "http://h/#pair=c&door=K%C3%BCche%20%26%20Hof%20%232"
        );
    }
}
