//! Validated names, owners, scopes and descriptions.

use std::fmt;

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

use crate::error::{Error, NameError};

/// The most characters a token name (or owner) may have after trimming.
pub const MAX_NAME_CHARS: usize = 100;
/// The most characters a description may have.
pub const MAX_DESCRIPTION_CHARS: usize = 1000;
/// The most characters one scope may have.
pub const MAX_SCOPE_CHARS: usize = 128;
/// The most scopes one token may carry.
pub const MAX_SCOPES: usize = 64;
/// The longest search query, in characters: twice the longest name, so that any name can be
/// searched for with separators and in any word order, and short enough that no store's
/// string functions (PostgreSQL's `levenshtein` takes at most 255) can fail on it.
pub const MAX_QUERY_CHARS: usize = 2 * MAX_NAME_CHARS;

/// A token's name: trimmed, 1–[`MAX_NAME_CHARS`] characters of any script, without control or
/// invisible formatting characters.
///
/// Names are unique per owner, compared by [`TokenName::key`]: Unicode-normalized (NFKC) and
/// lower-cased, so `Deploy Bot`, `deploy bot` and `ｄｅｐｌｏｙ ｂｏｔ` are the same name.
///
/// ```
/// use tollgate::TokenName;
///
/// let name = TokenName::new("  CI Deploy  ").unwrap();
/// assert_eq!(name.as_str(), "CI Deploy");
/// assert_eq!(name.key(), "ci deploy");
/// assert!(TokenName::new("tab\there").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TokenName {
    display: String,
    key: String,
}

impl TokenName {
    /// Validates and trims a name.
    pub fn new(name: &str) -> Result<Self, NameError> {
        let display = validate_label(name)?;
        let key = name_key(display);
        Ok(Self {
            display: display.to_owned(),
            key,
        })
    }

    /// The name as given, trimmed.
    pub fn as_str(&self) -> &str {
        &self.display
    }

    /// The form names are compared in: NFKC-normalized and lower-cased.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl fmt::Debug for TokenName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.display, f)
    }
}

impl fmt::Display for TokenName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}

/// The comparison key of a name: NFKC, lower case.
pub(crate) fn name_key(name: &str) -> String {
    name.nfkc().flat_map(char::to_lowercase).collect()
}

/// Trims `label` and checks the rules shared by names and owners.
fn validate_label(label: &str) -> Result<&str, NameError> {
    let trimmed = label.trim();
    if trimmed.is_empty() {
        return Err(NameError::Empty);
    }
    let mut len = 0;
    for (index, character) in trimmed.chars().enumerate() {
        len += 1;
        let position = index + 1;
        match character.general_category() {
            GeneralCategory::Control => {
                return Err(NameError::ControlCharacter {
                    character,
                    position,
                });
            }
            GeneralCategory::Format => {
                return Err(NameError::InvisibleCharacter {
                    character,
                    position,
                });
            }
            GeneralCategory::Unassigned
            | GeneralCategory::PrivateUse
            | GeneralCategory::Surrogate
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator => {
                return Err(NameError::UnsupportedCharacter {
                    character,
                    position,
                });
            }
            _ => {}
        }
    }
    if len > MAX_NAME_CHARS {
        return Err(NameError::TooLong {
            len,
            max: MAX_NAME_CHARS,
        });
    }
    Ok(trimmed)
}

/// Validates an owner (an account or tenant id): the same rules as a [`TokenName`], compared
/// exactly (case-sensitively) after trimming.
pub(crate) fn validate_owner(owner: &str) -> Result<String, Error> {
    validate_label(owner)
        .map(str::to_owned)
        .map_err(Error::InvalidOwner)
}

/// Validates one scope: 1–[`MAX_SCOPE_CHARS`] visible ASCII characters other than `"` and `\`
/// (RFC 6749 §3.3), so that a scope can always be named in an HTTP header.
pub(crate) fn validate_scope(scope: &str) -> Result<(), Error> {
    let invalid = |reason| Error::InvalidScope {
        scope: scope.to_owned(),
        reason,
    };
    if scope.is_empty() {
        return Err(invalid("it is empty"));
    }
    if scope.chars().count() > MAX_SCOPE_CHARS {
        return Err(invalid("it is longer than 128 characters"));
    }
    if !scope
        .bytes()
        .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
    {
        return Err(invalid(
            "only visible ASCII characters other than '\"' and '\\' are allowed",
        ));
    }
    Ok(())
}

/// Validates, de-duplicates and sorts a set of scopes.
pub(crate) fn normalize_scopes<I, S>(scopes: I) -> Result<Vec<String>, Error>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut out = Vec::new();
    for scope in scopes {
        let scope = scope.into();
        validate_scope(&scope)?;
        out.push(scope);
    }
    out.sort_unstable();
    out.dedup();
    if out.len() > MAX_SCOPES {
        return Err(Error::InvalidScope {
            scope: out.join(" "),
            reason: "a token may carry at most 64 scopes",
        });
    }
    Ok(out)
}

/// Validates a search query: at most [`MAX_QUERY_CHARS`] characters and no control
/// characters (a NUL cannot even be sent to PostgreSQL).
pub(crate) fn validate_query(query: &str) -> Result<&str, Error> {
    if query.chars().count() > MAX_QUERY_CHARS {
        return Err(Error::InvalidQuery("it is longer than 200 characters"));
    }
    if query.chars().any(char::is_control) {
        return Err(Error::InvalidQuery("it contains control characters"));
    }
    Ok(query)
}

/// Validates a description: at most [`MAX_DESCRIPTION_CHARS`] characters; newlines and tabs
/// are allowed, other control characters are not. Surrounding white space is trimmed.
pub(crate) fn validate_description(description: &str) -> Result<String, Error> {
    let trimmed = description.trim();
    if trimmed.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(Error::InvalidDescription(
            "it is longer than 1000 characters",
        ));
    }
    if trimmed
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(Error::InvalidDescription(
            "it contains control characters other than newline and tab",
        ));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_keeps_any_script() {
        let name = TokenName::new("  生产环境 部署  ").unwrap();
        assert_eq!(name.as_str(), "生产环境 部署");
        assert_eq!(TokenName::new("Ünïcødé Bot").unwrap().key(), "ünïcødé bot");
    }

    #[test]
    fn key_is_case_and_width_insensitive() {
        let a = TokenName::new("Deploy Bot").unwrap();
        let b = TokenName::new("ｄｅｐｌｏｙ　ｂｏｔ").unwrap();
        assert_eq!(a.key(), b.key());
    }

    #[test]
    fn each_violation_has_its_variant() {
        assert_eq!(TokenName::new("   "), Err(NameError::Empty));
        assert_eq!(
            TokenName::new(&"x".repeat(101)),
            Err(NameError::TooLong { len: 101, max: 100 })
        );
        assert!(TokenName::new(&"字".repeat(100)).is_ok());
        assert_eq!(
            TokenName::new("a\nb"),
            Err(NameError::ControlCharacter {
                character: '\n',
                position: 2
            })
        );
        assert_eq!(
            TokenName::new("ad\u{200B}min"),
            Err(NameError::InvisibleCharacter {
                character: '\u{200B}',
                position: 3
            })
        );
        assert!(matches!(
            TokenName::new("evil\u{202E}gnp.exe"),
            Err(NameError::InvisibleCharacter { .. })
        ));
        assert!(matches!(
            TokenName::new("a\u{E000}"),
            Err(NameError::UnsupportedCharacter { .. })
        ));
    }

    #[test]
    fn messages_are_readable() {
        let err = TokenName::new("a\u{200B}b").unwrap_err();
        assert_eq!(
            err.to_string(),
            "it contains the invisible formatting character U+200B at position 2"
        );
    }

    #[test]
    fn scopes_are_validated_sorted_and_deduplicated() {
        assert_eq!(
            normalize_scopes(["write", "read", "read"]).unwrap(),
            vec!["read", "write"]
        );
        assert!(normalize_scopes([""]).is_err());
        assert!(normalize_scopes(["has space"]).is_err());
        assert!(normalize_scopes(["quote\""]).is_err());
        assert!(normalize_scopes(["ümlaut"]).is_err());
        assert!(normalize_scopes(["tollgate:admin", "repo/read"]).is_ok());
    }

    #[test]
    fn descriptions_allow_newlines_not_other_controls() {
        assert_eq!(validate_description(" a\nb ").unwrap(), "a\nb");
        assert!(validate_description("bell\u{7}").is_err());
        assert!(validate_description(&"d".repeat(1001)).is_err());
    }
}
