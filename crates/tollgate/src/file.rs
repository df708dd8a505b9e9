//! The token file: a token's information as a downloadable JSON document.

use jiff::Timestamp;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::record::TokenInfo;
use crate::secret::PlaintextToken;

/// The value of a token file's `format` field.
pub const TOKEN_FILE_FORMAT: &str = "tollgate-token-file";
/// The version of the token file layout this crate writes.
pub const TOKEN_FILE_VERSION: u32 = 1;

const NOTE_WITH_SECRET: &str = "This file contains a secret token. Store it like a password and \
    delete this file once the token is in your secret store.";
const NOTE_WITHOUT_SECRET: &str = "The secret is not included: only a hash of it is stored, so it \
    cannot be shown again. To get a usable token, regenerate its secret and download the file \
    offered right after.";

/// A token's information as a file, version 1:
///
/// ```json
/// {
///   "format": "tollgate-token-file",
///   "version": 1,
///   "exported_at": "2026-11-27T10:00:00Z",
///   "token": { "id": "…", "owner": "default", "name": "ci", "description": "",
///              "scopes": [], "enabled": true, "created_at": "…", "updated_at": "…",
///              "expires_at": null, "last_used_at": null },
///   "secret_included": false,
///   "secret": null,
///   "note": "The secret is not included: …"
/// }
/// ```
///
/// `secret` holds the token string only when it was in hand: right after apply or regenerate,
/// or in recoverable mode. The file never holds the secret's hash. `Debug` redacts the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenFile {
    /// When the file was made.
    pub exported_at: Timestamp,
    /// The token's information.
    pub token: TokenInfo,
    /// The secret, when it could be included.
    pub secret: Option<PlaintextToken>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    format: String,
    version: u32,
    exported_at: Timestamp,
    token: TokenInfo,
    secret_included: bool,
    secret: Option<String>,
    note: String,
}

impl TokenFile {
    /// Whether the file carries the secret.
    pub fn secret_included(&self) -> bool {
        self.secret.is_some()
    }

    /// The human-readable note the file carries.
    pub fn note(&self) -> &'static str {
        if self.secret_included() {
            NOTE_WITH_SECRET
        } else {
            NOTE_WITHOUT_SECRET
        }
    }

    /// The file as pretty-printed JSON, ending in a newline.
    pub fn to_json(&self) -> String {
        let mut json = serde_json::to_string_pretty(self).expect("a token file always serializes");
        json.push('\n');
        json
    }
}

impl Serialize for TokenFile {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Wire {
            format: TOKEN_FILE_FORMAT.to_owned(),
            version: TOKEN_FILE_VERSION,
            exported_at: self.exported_at,
            token: self.token.clone(),
            secret_included: self.secret_included(),
            secret: self.secret.as_ref().map(|s| s.expose_secret().to_owned()),
            note: self.note().to_owned(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for TokenFile {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let wire = Wire::deserialize(deserializer)?;
        if wire.format != TOKEN_FILE_FORMAT {
            return Err(D::Error::custom(format!(
                "not a token file: format is {:?}, expected {TOKEN_FILE_FORMAT:?}",
                wire.format
            )));
        }
        if wire.version != TOKEN_FILE_VERSION {
            return Err(D::Error::custom(format!(
                "unsupported token file version {}; this build reads version {TOKEN_FILE_VERSION}",
                wire.version
            )));
        }
        if wire.secret_included != wire.secret.is_some() {
            return Err(D::Error::custom(
                "secret_included does not agree with secret",
            ));
        }
        Ok(Self {
            exported_at: wire.exported_at,
            token: wire.token,
            secret: wire.secret.map(PlaintextToken::from_unchecked),
        })
    }
}
