//! Parsing what a phone sends to `POST`/`DELETE /api/push/subscription`: the browser's
//! `PushSubscription.toJSON()`, checked field by field so every refusal names the field.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;
use serde_json::{Map, Value};

use super::config::PushConfig;
use super::endpoint::{self, EndpointError};

/// Longest endpoint accepted. Real ones (FCM, Mozilla, Apple, Microsoft) are 150-500
/// characters; 2048 leaves room and bounds what one phone can make the hub store.
pub const MAX_ENDPOINT_CHARS: usize = 2048;
/// Longest key string looked at before decoding (a 65-byte key is 87 base64url characters).
pub const MAX_KEY_CHARS: usize = 128;
/// `keys.p256dh`: an uncompressed P-256 point (0x04, X, Y), RFC 8291 section 3.1.
pub const P256DH_BYTES: usize = 65;
/// `keys.auth`: the 16-byte authentication secret, RFC 8291 section 3.2.
pub const AUTH_BYTES: usize = 16;

/// Machine-readable reason in an API error (`"code"` in the JSON body).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiErrorCode {
    /// The body is not JSON.
    NotJson,
    /// A required field is absent (or null).
    MissingField,
    /// A field has the wrong JSON type.
    WrongType,
    /// A field is longer than the hub accepts.
    TooLong,
    /// A key is not base64url.
    NotBase64url,
    /// A key decodes to the wrong number of bytes.
    WrongLength,
    /// `keys.p256dh` is not a point on P-256.
    InvalidKey,
    /// The endpoint is not an absolute URL.
    InvalidUrl,
    /// The endpoint is not `https://`.
    NotHttps,
    /// The endpoint's host is loopback, private, link-local or otherwise not public.
    ForbiddenHost,
    /// `expirationTime` is in the past.
    Expired,
    /// The body is larger than the hub reads.
    BodyTooLarge,
    /// Missing or unknown phone token.
    Unauthorized,
    /// The hub failed (database); retry.
    Internal,
}

/// A refused request: which field, why (code) and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// `"body"`, `"endpoint"`, `"expirationTime"`, `"keys"`, `"keys.p256dh"` or `"keys.auth"`.
    pub field: &'static str,
    pub code: ApiErrorCode,
    pub message: String,
}

fn refuse(field: &'static str, code: ApiErrorCode, message: impl Into<String>) -> FieldError {
    FieldError {
        field,
        code,
        message: format!("{field}: {}", message.into()),
    }
}

/// What passed every check (defined by the store, which keeps it).
pub(crate) use crate::store::NewSubscription;

fn object(body: &[u8]) -> Result<Map<String, Value>, FieldError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(refuse(
            "body",
            ApiErrorCode::WrongType,
            "must be a JSON object",
        )),
        Err(e) => Err(refuse(
            "body",
            ApiErrorCode::NotJson,
            format!("not JSON ({e})"),
        )),
    }
}

fn string<'a>(
    map: &'a Map<String, Value>,
    key: &str,
    field: &'static str,
    max: usize,
) -> Result<&'a str, FieldError> {
    match map.get(key) {
        None | Some(Value::Null) => Err(refuse(field, ApiErrorCode::MissingField, "is required")),
        Some(Value::String(s)) if s.len() > max => Err(refuse(
            field,
            ApiErrorCode::TooLong,
            format!("is {} characters; at most {max} are accepted", s.len()),
        )),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(refuse(field, ApiErrorCode::WrongType, "must be a string")),
    }
}

/// The endpoint field, length-checked (its URL is checked by [`endpoint::check`]).
fn endpoint_field(map: &Map<String, Value>) -> Result<&str, FieldError> {
    string(map, "endpoint", "endpoint", MAX_ENDPOINT_CHARS)
}

/// Decodes a base64url key (padding tolerated) of exactly `len` bytes.
fn key(
    map: &Map<String, Value>,
    name: &str,
    field: &'static str,
    len: usize,
) -> Result<Vec<u8>, FieldError> {
    let text = string(map, name, field, MAX_KEY_CHARS)?;
    let bytes = URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|_| refuse(field, ApiErrorCode::NotBase64url, "must be base64url"))?;
    if bytes.len() != len {
        return Err(refuse(
            field,
            ApiErrorCode::WrongLength,
            format!("must decode to {len} bytes, got {}", bytes.len()),
        ));
    }
    Ok(bytes)
}

/// Parses and checks a `POST /api/push/subscription` body.
pub fn parse_subscription(
    body: &[u8],
    config: &PushConfig,
    now_ms: i64,
) -> Result<NewSubscription, FieldError> {
    let map = object(body)?;
    let endpoint = endpoint_field(&map)?;
    endpoint::check(endpoint, config).map_err(|e| {
        let code = match e {
            EndpointError::InvalidUrl | EndpointError::UserInfo => ApiErrorCode::InvalidUrl,
            EndpointError::NotHttps => ApiErrorCode::NotHttps,
            EndpointError::ForbiddenHost(_) => ApiErrorCode::ForbiddenHost,
        };
        refuse("endpoint", code, e.to_string())
    })?;
    let expires_at = match map.get("expirationTime") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => {
            let ms = n
                .as_f64()
                .filter(|v| v.is_finite() && *v >= 0.0 && *v < 1e15)
                .ok_or_else(|| {
                    refuse(
                        "expirationTime",
                        ApiErrorCode::WrongType,
                        "must be null or Unix milliseconds",
                    )
                })? as i64;
            if ms <= now_ms {
                return Err(refuse(
                    "expirationTime",
                    ApiErrorCode::Expired,
                    "is in the past; subscribe again",
                ));
            }
            Some(ms)
        }
        Some(_) => {
            return Err(refuse(
                "expirationTime",
                ApiErrorCode::WrongType,
                "must be null or a number",
            ))
        }
    };
    let keys = match map.get("keys") {
        None | Some(Value::Null) => {
            return Err(refuse("keys", ApiErrorCode::MissingField, "is required"))
        }
        Some(Value::Object(keys)) => keys,
        Some(_) => {
            return Err(refuse(
                "keys",
                ApiErrorCode::WrongType,
                "must be an object with p256dh and auth",
            ))
        }
    };
    let p256dh = key(keys, "p256dh", "keys.p256dh", P256DH_BYTES)?;
    if web_push_native::p256::PublicKey::from_sec1_bytes(&p256dh).is_err() || p256dh[0] != 0x04 {
        return Err(refuse(
            "keys.p256dh",
            ApiErrorCode::InvalidKey,
            "is not an uncompressed point on P-256",
        ));
    }
    let auth = key(keys, "auth", "keys.auth", AUTH_BYTES)?;
    Ok(NewSubscription {
        endpoint: endpoint.to_owned(),
        p256dh: URL_SAFE_NO_PAD.encode(p256dh),
        auth: URL_SAFE_NO_PAD.encode(auth),
        expires_at,
    })
}

/// Parses a `DELETE /api/push/subscription` body: `{"endpoint": "..."}`.
pub fn parse_unsubscribe(body: &[u8]) -> Result<String, FieldError> {
    let map = object(body)?;
    endpoint_field(&map).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    const P256DH: &str =
        "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
    const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";

    fn parse(v: Value) -> Result<NewSubscription, FieldError> {
        parse_subscription(v.to_string().as_bytes(), &PushConfig::default(), 1000)
    }

    fn good() -> Value {
        serde_json::json!({
            "endpoint": "https://push.example.net/s/1",
            "expirationTime": null,
            "keys": {"p256dh": P256DH, "auth": AUTH}
        })
    }

    #[test]
    fn a_browser_subscription_parses() {
        let s = parse(good()).unwrap();
        assert_eq!(s.p256dh, P256DH);
        assert_eq!(s.auth, AUTH);
        assert_eq!(s.expires_at, None);
        let mut padded = good();
        padded["keys"]["auth"] = Value::from(format!("{AUTH}=="));
        padded["expirationTime"] = Value::from(5000);
        let s = parse(padded).unwrap();
        assert_eq!((s.auth.as_str(), s.expires_at), (AUTH, Some(5000)));
    }

    #[test]
    fn every_bad_field_is_named() {
        let cases: Vec<(Value, &str, ApiErrorCode)> = vec![
            (Value::from(3), "body", ApiErrorCode::WrongType),
            (
                serde_json::json!({"keys": good()["keys"]}),
                "endpoint",
                ApiErrorCode::MissingField,
            ),
            (
                serde_json::json!({"endpoint": "https://push.example.net/"}),
                "keys",
                ApiErrorCode::MissingField,
            ),
            (
                serde_json::json!({"endpoint": 7, "keys": good()["keys"]}),
                "endpoint",
                ApiErrorCode::WrongType,
            ),
            (
                serde_json::json!({"endpoint": "https://push.example.net/", "keys": {"auth": AUTH}}),
                "keys.p256dh",
                ApiErrorCode::MissingField,
            ),
            (
                serde_json::json!({"endpoint": "https://push.example.net/", "keys": {"p256dh": P256DH}}),
                "keys.auth",
                ApiErrorCode::MissingField,
            ),
        ];
        for (body, field, code) in cases {
            let e = parse(body.clone()).expect_err(&body.to_string());
            assert_eq!((e.field, e.code), (field, code), "{body}: {e:?}");
        }
        let with = |path: &[&str], v: Value| {
            let mut body = good();
            let mut at = &mut body;
            for p in &path[..path.len() - 1] {
                at = &mut at[*p];
            }
            at[path[path.len() - 1]] = v;
            body
        };
        let long = format!(
            "https://push.example.net/{}",
            "a".repeat(MAX_ENDPOINT_CHARS)
        );
        let cases = [
            (
                with(&["endpoint"], long.into()),
                "endpoint",
                ApiErrorCode::TooLong,
            ),
            (
                with(&["endpoint"], "http://push.example.net/".into()),
                "endpoint",
                ApiErrorCode::NotHttps,
            ),
            (
                with(&["endpoint"], "https://192.168.1.1/".into()),
                "endpoint",
                ApiErrorCode::ForbiddenHost,
            ),
            (
                with(&["endpoint"], "push".into()),
                "endpoint",
                ApiErrorCode::InvalidUrl,
            ),
            (
                with(&["expirationTime"], 999.into()),
                "expirationTime",
                ApiErrorCode::Expired,
            ),
            (
                with(&["expirationTime"], "soon".into()),
                "expirationTime",
                ApiErrorCode::WrongType,
            ),
            (with(&["keys"], "k".into()), "keys", ApiErrorCode::WrongType),
            (
                with(&["keys", "p256dh"], "!!".into()),
                "keys.p256dh",
                ApiErrorCode::NotBase64url,
            ),
            (
                with(&["keys", "p256dh"], AUTH.into()),
                "keys.p256dh",
                ApiErrorCode::WrongLength,
            ),
            (
                with(&["keys", "p256dh"], "A".repeat(200).into()),
                "keys.p256dh",
                ApiErrorCode::TooLong,
            ),
            (
                with(
                    &["keys", "p256dh"],
                    URL_SAFE_NO_PAD.encode([4u8; 65]).into(),
                ),
                "keys.p256dh",
                ApiErrorCode::InvalidKey,
            ),
            (
                with(&["keys", "auth"], P256DH.into()),
                "keys.auth",
                ApiErrorCode::WrongLength,
            ),
            (
                with(&["keys", "auth"], 5.into()),
                "keys.auth",
                ApiErrorCode::WrongType,
            ),
        ];
        for (body, field, code) in cases {
            let e = parse(body.clone()).expect_err(&body.to_string());
            assert_eq!((e.field, e.code), (field, code), "{body}: {e:?}");
            assert!(e.message.starts_with(field), "{}", e.message);
        }
        let e = parse_subscription(b"{nope", &PushConfig::default(), 0).unwrap_err();
        assert_eq!((e.field, e.code), ("body", ApiErrorCode::NotJson));
    }

    #[test]
    fn unsubscribe_needs_an_endpoint() {
        assert_eq!(parse_unsubscribe(br#"{"endpoint":"x"}"#).unwrap(), "x");
        assert_eq!(parse_unsubscribe(b"{}").unwrap_err().field, "endpoint");
    }
}
