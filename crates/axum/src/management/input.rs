//! Reading requests: JSON bodies, query strings, `If-Match`, with messages in our words.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use http::request::Parts;
use http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use tollgate::jiff::Timestamp;

use super::error::ApiError;

/// A JSON body: 415 without `Content-Type: application/json`, 413 over the body limit, 400
/// for anything that is not the expected object, naming the field at fault.
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(request.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with `Content-Type: application/json`",
            ));
        }
        let bytes = read_body(request, state).await?;
        parse(&bytes).map(Self)
    }
}

/// A body that may be absent: empty, `null` or the object. A body sent without a JSON
/// content type is refused unless it is empty.
pub(crate) struct OptionalJson<T>(pub(crate) Option<T>);

impl<S, T> FromRequest<S> for OptionalJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = is_json(request.headers());
        let bytes = read_body(request, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(None));
        }
        if !json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with `Content-Type: application/json`",
            ));
        }
        parse::<Option<T>>(&bytes).map(Self)
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| {
            let essence = essence.trim();
            essence.eq_ignore_ascii_case("application/json")
                || (essence.len() > 5
                    && essence[..essence.len() - 5].contains('/')
                    && essence.to_ascii_lowercase().ends_with("+json"))
        })
}

async fn read_body<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "the request body is too large",
                )
            } else {
                ApiError::bad_request("invalid_body", "the request body could not be read")
            }
        })
}

/// Parses a JSON object with messages that name the field and say what it must be, never a
/// Rust type's name. `null` is accepted only when `T` is an `Option`.
fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|err| {
        let message = match err.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => format!(
                "the body is not valid JSON (line {}, column {})",
                err.line(),
                err.column()
            ),
            _ => "the body is not valid JSON".to_owned(),
        };
        ApiError::bad_request("invalid_json", message)
    })?;
    // serde reads a struct from an array too (`["CI deploy", …]`); the document says object.
    if !(value.is_object() || value.is_null()) {
        return Err(ApiError::bad_request(
            "invalid_json",
            "the body must be a JSON object",
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let reason = plain(&err.into_inner().to_string());
        let message = if path == "." {
            format!("the body must be a JSON object: {reason}")
        } else {
            format!("`{path}`: {reason}")
        };
        ApiError::bad_request("invalid_json", message)
    })
}

/// serde's message without its position suffix, Rust type names or the standard library's
/// wording.
pub(crate) fn plain(message: &str) -> String {
    let message = message.split(" at line ").next().unwrap_or(message);
    if message.contains("expected struct") {
        return "expected a JSON object".to_owned();
    }
    // What `str::parse` says about a number or a boolean in a query string.
    for (rust, ours) in [
        ("invalid digit found in string", "expected a whole number"),
        (
            "cannot parse integer from empty string",
            "expected a whole number",
        ),
        (
            "number too large to fit in target type",
            "the number is too large",
        ),
        (
            "number too small to fit in target type",
            "the number is too small",
        ),
        (
            "provided string was not `true` or `false`",
            "expected `true` or `false`",
        ),
    ] {
        if message.contains(rust) {
            return ours.to_owned();
        }
    }
    let mut message = message
        .replace("expected a sequence", "expected a JSON array")
        .replace("expected a map", "expected a JSON object");
    for rust in ["u8", "u16", "u32", "u64", "usize", "i32", "i64"] {
        let suffix = format!("expected {rust}");
        if let Some(start) = message.strip_suffix(suffix.as_str()).map(str::len) {
            message.truncate(start);
            message.push_str(if rust.starts_with('u') {
                "expected a whole number, 0 or more"
            } else {
                "expected a whole number"
            });
        }
    }
    message
}

/// Query parameters: 400 `invalid_parameter` naming the parameter.
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(Self)
            .map_err(|err| {
                let path = err.path().to_string();
                let reason = plain(&err.into_inner().to_string());
                let message = if path == "." {
                    format!("invalid query string: {reason}")
                } else {
                    format!("invalid query parameter `{path}`: {reason}")
                };
                ApiError::bad_request("invalid_parameter", message)
            })
    }
}

/// An RFC 3339 timestamp, with a message that says so.
pub(crate) fn timestamp<'de, D>(deserializer: D) -> Result<Option<Timestamp>, D::Error>
where
    D: Deserializer<'de>,
{
    let Some(text) = Option::<String>::deserialize(deserializer)? else {
        return Ok(None);
    };
    parse_timestamp(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

/// [`timestamp`] where absent and `null` differ.
pub(crate) fn present_timestamp<'de, D>(
    deserializer: D,
) -> Result<Option<Option<Timestamp>>, D::Error>
where
    D: Deserializer<'de>,
{
    timestamp(deserializer).map(Some)
}

/// A whole number, 0 or more, as JSON Schema's `integer` reads it: `600` and `600.0` alike.
pub(crate) fn whole_number<'de, D>(deserializer: D) -> Result<Option<u64>, D::Error>
where
    D: Deserializer<'de>,
{
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    if let Some(whole) = number.as_u64() {
        return Ok(Some(whole));
    }
    match number.as_f64() {
        // 2^64: the first value a u64 cannot hold.
        Some(f) if f.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&f) => {
            Ok(Some(f as u64))
        }
        _ => Err(serde::de::Error::custom(
            "expected a whole number, 0 or more",
        )),
    }
}

/// The largest year an expiry may be written with: the instants of year 9999 do not all fit
/// in a timestamp, and the document says so with a pattern.
const MAX_YEAR: u32 = 9998;

/// Parses what JSON Schema's `date-time` format accepts (RFC 3339 §5.6: `T` and `Z` in either
/// case, any number of fraction digits, a leap second at 23:59:60 UTC) and nothing else, in
/// the years 0000–9998.
pub(crate) fn parse_timestamp(text: &str) -> Result<Timestamp, String> {
    const EXPECTED: &str =
        "expected an RFC 3339 date and time with an offset, such as 2027-01-01T00:00:00Z";
    let invalid = || EXPECTED.to_owned();
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(range)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| part.iter().fold(0, |n, d| n * 10 + u32::from(*d - b'0')))
    };
    let at = |i: usize, allowed: &[u8]| b.get(i).is_some_and(|c| allowed.contains(c));
    let (Some(year), Some(month), Some(day)) = (digits(0..4), digits(5..7), digits(8..10)) else {
        return Err(invalid());
    };
    if !(at(4, b"-") && at(7, b"-") && at(10, b"Tt") && at(13, b":") && at(16, b":")) {
        return Err(invalid());
    }
    let (Some(hour), Some(minute), Some(second)) = (digits(11..13), digits(14..16), digits(17..19))
    else {
        return Err(invalid());
    };
    let leap_year = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap_year => 29,
        2 => 28,
        _ => return Err(invalid()),
    };
    if day == 0 || day > month_days || hour > 23 || minute > 59 || second > 60 {
        return Err(invalid());
    }
    let mut i = 19;
    let mut fraction = "";
    if at(i, b".") {
        let end = b[i + 1..]
            .iter()
            .position(|c| !c.is_ascii_digit())
            .map_or(b.len(), |n| i + 1 + n);
        if end == i + 1 {
            return Err(invalid());
        }
        // Nanoseconds at most; the store keeps microseconds anyway.
        fraction = &text[i..end.min(i + 10)];
        i = end;
    }
    let offset_minutes: i64 = match b.get(i) {
        Some(b'Z' | b'z') if b.len() == i + 1 => 0,
        Some(sign @ (b'+' | b'-')) if b.len() == i + 6 && at(i + 3, b":") => {
            let (Some(h), Some(m)) = (digits(i + 1..i + 3), digits(i + 4..i + 6)) else {
                return Err(invalid());
            };
            if h > 23 || m > 59 {
                return Err(invalid());
            }
            let minutes = i64::from(h * 60 + m);
            if *sign == b'-' { -minutes } else { minutes }
        }
        _ => return Err(invalid()),
    };
    // A leap second is 23:59:60 in UTC, whatever the offset it is written in.
    if second == 60 {
        let utc = (i64::from(hour * 60 + minute) - offset_minutes).rem_euclid(24 * 60);
        if utc != 23 * 60 + 59 {
            return Err(invalid());
        }
    }
    if year > MAX_YEAR {
        return Err(format!("{EXPECTED}, before the year {}", MAX_YEAR + 1));
    }
    let offset = if offset_minutes == 0 {
        "Z".to_owned()
    } else {
        text[i..].to_owned()
    };
    // jiff reads the leap second as the second before it, as most systems do.
    let canonical = format!(
        "{}T{:02}:{:02}:{:02}{fraction}{offset}",
        &text[..10],
        hour,
        minute,
        second.min(59)
    );
    canonical.parse().map_err(|_| invalid())
}

/// What an `If-Match` header asks (RFC 9110 §13.1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IfMatch {
    /// No header: the change is unconditional.
    Absent,
    /// `*`: the token must exist, at whatever version.
    Any,
    /// One of these versions. Weak tags never match (`If-Match` compares strongly), nor do
    /// tags this API never issues (`"01"`, `"v1"`), so they are left out; an empty list
    /// matches nothing.
    Versions(Vec<u64>),
}

/// The syntax `If-Match` is read with, as the OpenAPI document states it: `*`, or a list of
/// entity tags (`"3"`, `W/"3"`) separated by commas, where empty elements are ignored.
/// (utoipa takes literals only: a test checks that the document says the same.)
#[cfg(test)]
pub(crate) const IF_MATCH_PATTERN: &str = r#"^[ \t]*(?:\*|(?:,[ \t]*)*(?:W/)?"[\x21\x23-\x7E]*"(?:[ \t]*,(?:[ \t]*(?:W/)?"[\x21\x23-\x7E]*")?)*)[ \t]*$"#;

impl IfMatch {
    pub(crate) fn read(headers: &HeaderMap) -> Result<Self, ApiError> {
        let mut values = headers.get_all(header::IF_MATCH).iter().peekable();
        if values.peek().is_none() {
            return Ok(Self::Absent);
        }
        let invalid = || {
            ApiError::bad_request(
                "invalid_if_match",
                "If-Match must be `*` or a list of entity tags, such as \"3\"",
            )
        };
        let mut versions = Vec::new();
        let mut any = false;
        for value in values {
            let text = value.to_str().map_err(|_| invalid())?;
            if text.trim_matches([' ', '\t']) == "*" {
                any = true;
                continue;
            }
            for (weak, opaque) in entity_tags(text).ok_or_else(invalid)? {
                // Strong comparison: the same characters as an `ETag` this API sent.
                if !weak
                    && let Ok(version) = opaque.parse::<u64>()
                    && version.to_string() == opaque
                {
                    versions.push(version);
                }
            }
        }
        Ok(if any {
            Self::Any
        } else {
            Self::Versions(versions)
        })
    }
}

/// The entity tags of one `If-Match` line as `(weak, opaque)`, or `None` when it is not a
/// list of at least one entity tag ([`IF_MATCH_PATTERN`]).
fn entity_tags(text: &str) -> Option<Vec<(bool, &str)>> {
    let b = text.as_bytes();
    let ows = |mut i: usize| {
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
            i += 1;
        }
        i
    };
    let mut tags = Vec::new();
    let mut i = ows(0);
    while i < b.len() {
        if b[i] == b',' {
            i = ows(i + 1);
            continue;
        }
        let weak = b[i..].starts_with(b"W/");
        if weak {
            i += 2;
        }
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let start = i + 1;
        let len = b[start..]
            .iter()
            .position(|&c| !(c == 0x21 || (0x23..=0x7E).contains(&c)))?;
        if b[start + len] != b'"' {
            return None;
        }
        tags.push((weak, &text[start..start + len]));
        i = ows(start + len + 1);
        if i < b.len() {
            if b[i] != b',' {
                return None;
            }
            i = ows(i + 1);
        }
    }
    (!tags.is_empty()).then_some(tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_states_the_if_match_syntax_read_here() {
        let doc = serde_json::to_value(crate::management::openapi("", None)).unwrap();
        let params = doc["paths"]["/tokens/{id}"]["patch"]["parameters"]
            .as_array()
            .unwrap();
        let if_match = params.iter().find(|p| p["name"] == "If-Match").unwrap();
        assert_eq!(if_match["schema"]["pattern"], IF_MATCH_PATTERN);
    }

    fn read(value: &str) -> Result<IfMatch, ApiError> {
        let mut headers = HeaderMap::new();
        headers.insert(header::IF_MATCH, value.parse().unwrap());
        IfMatch::read(&headers)
    }

    #[test]
    fn if_match_is_star_or_a_list_of_entity_tags() {
        assert_eq!(read("*").unwrap(), IfMatch::Any);
        assert_eq!(read(" * ").unwrap(), IfMatch::Any);
        assert_eq!(read("\"3\"").unwrap(), IfMatch::Versions(vec![3]));
        assert_eq!(
            read(", \"3\" ,, W/\"4\",\"a,b\", \"5\" ,").unwrap(),
            IfMatch::Versions(vec![3, 5])
        );
        // Tags this API never sends are well formed but match nothing.
        assert_eq!(
            read("\"03\", \"+3\", \"x\"").unwrap(),
            IfMatch::Versions(vec![])
        );
        for bad in [
            "",
            " ",
            ",",
            "3",
            "\"3",
            "W/3",
            "w/\"3\"",
            "\"3\" \"4\"",
            "*, \"3\"",
            "\"a b\"",
        ] {
            assert!(read(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn timestamps_are_what_json_schema_calls_date_time() {
        let ok = |text: &str| parse_timestamp(text).unwrap().to_string();
        assert_eq!(ok("2030-01-02T03:04:05Z"), "2030-01-02T03:04:05Z");
        assert_eq!(ok("2030-01-02t03:04:05z"), "2030-01-02T03:04:05Z");
        assert_eq!(ok("2030-01-02T03:04:05+01:00"), "2030-01-02T02:04:05Z");
        assert_eq!(
            ok("2030-01-02T03:04:05.1234567891234Z"),
            "2030-01-02T03:04:05.123456789Z"
        );
        assert_eq!(ok("2030-06-30T23:59:60Z"), "2030-06-30T23:59:59Z");
        assert_eq!(ok("2030-07-01T01:59:60+02:00"), "2030-06-30T23:59:59Z");
        assert_eq!(ok("2032-02-29T00:00:00Z"), "2032-02-29T00:00:00Z");
        assert_eq!(ok("0000-01-01T00:00:00+23:59"), "-000001-12-31T00:01:00Z");
        assert_eq!(ok("9998-12-31T23:59:59-23:59"), "9999-01-01T23:58:59Z");
        for bad in [
            "2030-01-02 03:04:05Z",
            "2030-01-02T03:04Z",
            "2030-01-02T03:04:05",
            "2030-01-02T03:04:05.Z",
            "2030-02-29T00:00:00Z",
            "2030-01-02T24:00:00Z",
            "2030-01-02T12:00:60Z",
            "2030-01-02T03:04:05+24:00",
            "2030-01-02T03:04:05+0100",
            "9999-01-01T00:00:00Z",
            "+2030-01-02T03:04:05Z",
            "2030-01-02T03:04:05Z[UTC]",
        ] {
            assert!(parse_timestamp(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn messages_name_no_rust_type() {
        for (serde, ours) in [
            ("invalid digit found in string", "expected a whole number"),
            (
                "provided string was not `true` or `false`",
                "expected `true` or `false`",
            ),
            (
                "invalid value: integer `-1`, expected u64",
                "invalid value: integer `-1`, expected a whole number, 0 or more",
            ),
            (
                "invalid length 1, expected struct ApplyBody with 5 elements at line 1 column 3",
                "expected a JSON object",
            ),
            (
                "invalid type: string \"a\", expected a sequence",
                "invalid type: string \"a\", expected a JSON array",
            ),
        ] {
            assert_eq!(plain(serde), ours);
        }
    }
}
