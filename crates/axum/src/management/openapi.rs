//! The OpenAPI 3.1 document, generated from the handlers and the types they use.
//!
//! Every constraint the server enforces is in the schema, so that a client generator, a
//! validator and an API fuzzer (schemathesis, run by `scripts/api-contract.sh`) all see what
//! the server accepts. The patterns for names, owners and descriptions are derived from the
//! core's own validation when the document is first built, so they cannot drift from it.

use std::borrow::Cow;
use std::sync::OnceLock;

use tollgate::{NameError, TokenName};
use utoipa::OpenApi as _;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{OpenApi, RefOr, Server};

use super::views::{
    ErrorBody, ErrorDetail, IssuedOrTokenFile, IssuedView, PageView, TokenFileToken, TokenFileView,
    TokenStatus, TokenView,
};
use super::{audit, handlers};

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Tollgate token management",
        description = "Manage API tokens: list (with fuzzy search), apply, download, modify, regenerate and delete.\n\nEvery error is `{\"error\": {\"code\", \"message\"}}`. `GET`, `PATCH` and the answers of `POST` carry an `ETag`; `PATCH`, `DELETE` and regenerate honour `If-Match` (strong comparison, `*` for any version). Responses that hold a secret carry `Cache-Control: no-store`.",
        license(name = "MIT OR Apache-2.0", identifier = "MIT OR Apache-2.0")
    ),
    paths(
        handlers::list_tokens,
        handlers::apply_token,
        handlers::get_token,
        handlers::modify_token,
        handlers::regenerate_token,
        handlers::delete_token,
        handlers::download_token,
        audit::read_audit
    ),
    components(schemas(
        Label,
        Description,
        Scope,
        TokenView,
        TokenStatus,
        IssuedView,
        IssuedOrTokenFile,
        PageView,
        TokenFileView,
        TokenFileToken,
        ErrorBody,
        ErrorDetail
    )),
    tags(
        (name = "tokens", description = "Token management."),
        (name = "audit", description = "Who changed which token, when; refused requests.")
    )
)]
struct ApiDoc;

/// The management API's OpenAPI 3.1 document, with paths relative to `base` (the path the
/// router is mounted at, such as `/api/v1`), and the admin scope `scope` required by every
/// operation (`None` for self-service, where the application authenticates).
pub fn openapi(base: &str, scope: Option<&str>) -> OpenApi {
    let mut doc = ApiDoc::openapi();
    let base = base.trim_end_matches('/');
    doc.servers = Some(vec![Server::new(if base.is_empty() { "/" } else { base })]);
    if let Some(scope) = scope {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(format!(
                        "A Tollgate token with the `{scope}` scope: `Authorization: Bearer tg_…`."
                    )))
                    .build(),
            ),
        );
        doc.security = Some(vec![SecurityRequirement::new("bearer", [scope])]);
    }
    doc
}

/// A token name or an owner: what the core accepts, as a pattern.
pub(crate) struct Label;

impl utoipa::PartialSchema for Label {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "1–100 characters of any script, not only white space (which is trimmed), \
                 without control characters, invisible formatting characters (such as a \
                 zero-width space or a bidirectional override), private-use characters, line \
                 and paragraph separators, or code points Unicode has not assigned yet. The \
                 pattern states all of this but the last.",
            ))
            .min_length(Some(1))
            .max_length(Some(tollgate::MAX_NAME_CHARS))
            .pattern(Some(label_pattern()))
            .examples(["CI deploy"])
            .into()
    }
}

impl utoipa::ToSchema for Label {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Label")
    }
}

/// A token's description: what the core accepts, as a pattern.
pub(crate) struct Description;

impl utoipa::PartialSchema for Description {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "At most 1000 characters; newlines and tabs are allowed, other control \
                 characters are not. Surrounding white space is trimmed.",
            ))
            .max_length(Some(tollgate::MAX_DESCRIPTION_CHARS))
            .pattern(Some(description_pattern()))
            .examples(["Pushes releases"])
            .into()
    }
}

impl utoipa::ToSchema for Description {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Description")
    }
}

/// One scope: 1–128 visible ASCII characters other than `"` and `\` (RFC 6749 §3.3), so that
/// it can be named in a `WWW-Authenticate` header.
#[derive(utoipa::ToSchema)]
#[schema(
    value_type = String,
    pattern = r"^[\x21\x23-\x5B\x5D-\x7E]{1,128}$",
    min_length = 1,
    max_length = 128,
    example = "deploy"
)]
#[allow(dead_code)]
pub(crate) struct Scope(String);

/// `^(?![\s\S]*[P])W*E(?:N*E)?W*$`: white space the core trims, then characters it accepts,
/// starting and ending with one that is not white space; the length is `maxLength`, which
/// the handlers hold the untrimmed text to. The private-use planes 15 and 16 (`P`) are ruled
/// out up front rather than in each class: a generator negating a class may list every
/// character it leaves out, and these two planes alone hold 131 068.
fn label_pattern() -> String {
    static PATTERN: OnceLock<String> = OnceLock::new();
    PATTERN
        .get_or_init(|| {
            let (planes, refused): (Vec<_>, Vec<_>) = label_refused()
                .into_iter()
                .partition(|&(first, _)| first as u32 >= 0xF_0000);
            let space = whitespace();
            let edge = [refused.as_slice(), space.as_slice()].concat();
            let (planes, space, inner, edge) =
                (class(&planes), class(&space), class(&refused), class(&edge));
            format!(
                r"^(?![\s\S]*[{planes}])[{space}]*[^{edge}](?:[^{inner}]*[^{edge}])?[{space}]*$"
            )
        })
        .clone()
}

/// [`label_pattern`] for a description: everything but control characters, newline and tab
/// excepted; it may be empty.
fn description_pattern() -> String {
    static PATTERN: OnceLock<String> = OnceLock::new();
    PATTERN
        .get_or_init(|| {
            let refused = ranges(|c| c.is_control() && c != '\n' && c != '\t');
            let space = whitespace();
            let edge = [refused.as_slice(), space.as_slice()].concat();
            let (space, inner, edge) = (class(&space), class(&refused), class(&edge));
            format!("^[{space}]*(?:[^{edge}](?:[^{inner}]*[^{edge}])?)?[{space}]*$")
        })
        .clone()
}

/// The white space `str::trim` removes.
fn whitespace() -> Vec<(char, char)> {
    ranges(char::is_whitespace)
}

/// The characters the core refuses inside a name or an owner, but for unassigned code
/// points: control characters, invisible formatting characters, private-use characters, and
/// line and paragraph separators. Found by asking [`TokenName::new`] itself.
///
/// Unassigned code points (about 700 ranges, growing with each Unicode version) are left
/// out: as a pattern they would make the document many times larger and every generator
/// that reads it (schemathesis among them) about a hundred times slower. The schema's
/// description says so in words.
fn label_refused() -> Vec<(char, char)> {
    // Private-use characters and the two separators: stable since Unicode 1.1 and 3.0.
    const FIXED: [(u32, u32); 4] = [
        (0x2028, 0x2029),
        (0xE000, 0xF8FF),
        (0xF_0000, 0xF_FFFD),
        (0x10_0000, 0x10_FFFD),
    ];
    let mut refused = vec![false; char::MAX as usize + 1];
    // Every character of the planes where Unicode puts control and format characters, in one
    // probe string: each call reports the first character it refuses, the next call starts
    // after it, so the whole range takes one pass.
    let probe: String = (0..0x4_0000)
        .chain(0xE_0000..0xF_0000)
        .filter_map(char::from_u32)
        .filter(|c| !c.is_whitespace())
        .collect();
    let mut rest = probe.as_str();
    while !rest.is_empty() {
        let (character, position, format_or_control) = match TokenName::new(rest) {
            Err(
                NameError::ControlCharacter {
                    character,
                    position,
                }
                | NameError::InvisibleCharacter {
                    character,
                    position,
                },
            ) => (character, position, true),
            Err(NameError::UnsupportedCharacter {
                character,
                position,
            }) => (character, position, false),
            // Too long, or short enough to be accepted: nothing left is refused.
            _ => break,
        };
        let fixed = FIXED
            .iter()
            .any(|&(first, last)| (first..=last).contains(&(character as u32)));
        refused[character as usize] = format_or_control || fixed;
        match rest.char_indices().nth(position - 1) {
            Some((at, c)) if c == character => rest = &rest[at + c.len_utf8()..],
            // Never: the probe starts with a character that trimming keeps.
            _ => break,
        }
    }
    let refuses = |c: char| TokenName::new(&format!("a{c}a")).is_err();
    // White space inside a name: the core decides each one.
    for (first, last) in whitespace() {
        for c in (first as u32..=last as u32).filter_map(char::from_u32) {
            refused[c as usize] = refuses(c);
        }
    }
    // The private-use planes, beyond the probe: whole ranges, as the core refuses their ends.
    for (first, last) in FIXED {
        let (Some(a), Some(b)) = (char::from_u32(first), char::from_u32(last)) else {
            continue;
        };
        if refuses(a) && refuses(b) {
            refused[first as usize..=last as usize].fill(true);
        }
    }
    ranges(|c| refused[c as usize])
}

/// The maximal runs of characters `select` picks.
fn ranges(select: impl Fn(char) -> bool) -> Vec<(char, char)> {
    let mut out: Vec<(char, char)> = Vec::new();
    for c in (0..=char::MAX as u32).filter_map(char::from_u32) {
        if !select(c) {
            continue;
        }
        match out.last_mut() {
            // Runs stop at the surrogate gap, which no engine should be asked to span.
            Some((_, last)) if *last as u32 + 1 == c as u32 => *last = c,
            _ => out.push((c, c)),
        }
    }
    out
}

/// The contents of a regular expression character class holding `ranges`, written so that
/// ECMA-262 (with the `u` flag), Python and Rust read it alike: ASCII punctuation and
/// control characters as `\xHH`, the rest of the Basic Multilingual Plane as `\uHHHH`,
/// characters beyond it literally.
fn class(ranges: &[(char, char)]) -> String {
    fn push(out: &mut String, c: char) {
        use std::fmt::Write as _;
        let code = c as u32;
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if code < 0x80 {
            let _ = write!(out, "\\x{code:02X}");
        } else if code <= 0xFFFF {
            let _ = write!(out, "\\u{code:04X}");
        } else {
            out.push(c);
        }
    }
    let mut merged: Vec<(char, char)> = Vec::new();
    let mut sorted = ranges.to_vec();
    sorted.sort_unstable();
    for (first, last) in sorted {
        match merged.last_mut() {
            Some((_, end)) if first as u32 <= *end as u32 + 1 => *end = (*end).max(last),
            _ => merged.push((first, last)),
        }
    }
    let mut out = String::new();
    for (first, last) in merged {
        push(&mut out, first);
        if last as u32 > first as u32 + 1 {
            out.push('-');
        }
        if last != first {
            push(&mut out, last);
        }
    }
    out
}
