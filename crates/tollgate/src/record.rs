//! Token records and ids.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use rand::TryRng;
use rand::rngs::SysRng;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::name::name_key;
use crate::secret::SecretHash;

/// A token's id: 128 random bits, shown as 32 lower-case hexadecimal characters.
///
/// Ids are not secret and not sequential: they reveal neither how many tokens exist nor when
/// one was issued.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenId([u8; 16]);

impl TokenId {
    /// A fresh random id from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, Error> {
        let mut bytes = [0u8; 16];
        SysRng
            .try_fill_bytes(&mut bytes)
            .map_err(|e| Error::Random(Box::new(e)))?;
        Ok(Self(bytes))
    }

    /// Wraps stored bytes.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenId({self})")
    }
}

impl FromStr for TokenId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let invalid = || Error::InvalidId;
        let s = s.trim();
        if s.len() != 32 {
            return Err(invalid());
        }
        let mut bytes = [0u8; 16];
        for (out, pair) in bytes.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
            let digit = |c: u8| (c as char).to_digit(16);
            match (digit(pair[0]), digit(pair[1])) {
                (Some(hi), Some(lo)) => *out = (hi * 16 + lo) as u8,
                _ => return Err(invalid()),
            }
        }
        Ok(Self(bytes))
    }
}

impl Serialize for TokenId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TokenId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The secret a token had before it was regenerated, still accepted until `valid_until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviousSecret {
    /// Hash of the old secret.
    pub hash: SecretHash,
    /// The end of the grace period (never past the token's expiry).
    pub valid_until: Timestamp,
}

/// A secret kept encrypted at rest, in recoverable mode only (see
/// [`EncryptionKey`](crate::EncryptionKey)). Its `Debug` shows only the length.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret(pub Vec<u8>);

impl fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealedSecret({} bytes)", self.0.len())
    }
}

/// A token as stored. Holds the secret's hash, never the secret.
///
/// Stores persist every field and hand records back unchanged; the
/// [`TokenManager`](crate::TokenManager) maintains the invariants (validated name and scopes,
/// timestamps truncated to microseconds, version bumped on each change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// The token's id.
    pub id: TokenId,
    /// The account or tenant the token belongs to.
    pub owner: String,
    /// The name, as given (trimmed). Unique per owner by [`TokenRecord::name_key`].
    pub name: String,
    /// A free-form description; empty when none was given.
    pub description: String,
    /// Scopes, sorted and without duplicates.
    pub scopes: Vec<String>,
    /// Whether the token may be used.
    pub enabled: bool,
    /// When the token was issued.
    pub created_at: Timestamp,
    /// When the record last changed (not counting `last_used_at`).
    pub updated_at: Timestamp,
    /// When the token stops working, if ever.
    pub expires_at: Option<Timestamp>,
    /// When the token was last seen in a successful verification, if ever.
    pub last_used_at: Option<Timestamp>,
    /// The last characters of the current secret ([`PlaintextToken::hint`]), so that people
    /// can tell tokens apart; empty for records written before hints were kept.
    ///
    /// [`PlaintextToken::hint`]: crate::PlaintextToken::hint
    pub hint: String,
    /// Hash of the current secret.
    pub secret_hash: SecretHash,
    /// The previous secret, during a regeneration grace period.
    pub previous_secret: Option<PreviousSecret>,
    /// The secret encrypted at rest, in recoverable mode only.
    pub sealed_secret: Option<SealedSecret>,
    /// Incremented on each change; stores update only when the version matches.
    pub version: u64,
}

impl TokenRecord {
    /// The key names are unique by: NFKC-normalized, lower-cased.
    pub fn name_key(&self) -> String {
        name_key(&self.name)
    }

    /// Whether the token has expired at `now`.
    pub fn is_expired_at(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|expiry| expiry <= now)
    }

    /// Whether the token carries `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes
            .binary_search_by(|s| s.as_str().cmp(scope))
            .is_ok()
    }

    /// The public view of the record: everything but secrets and hashes.
    pub fn info(&self) -> TokenInfo {
        TokenInfo {
            id: self.id,
            owner: self.owner.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
            scopes: self.scopes.clone(),
            enabled: self.enabled,
            created_at: self.created_at,
            updated_at: self.updated_at,
            expires_at: self.expires_at,
            last_used_at: self.last_used_at,
            hint: self.hint.clone(),
        }
    }
}

/// What may be shown about a token: the record without its hash or secret. Serializes with
/// the field names the CLI's `--json` output and the HTTP API use; times are RFC 3339.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// The token's id.
    pub id: TokenId,
    /// The owning account or tenant.
    pub owner: String,
    /// The token's name.
    pub name: String,
    /// The description; empty when none was given.
    pub description: String,
    /// Scopes, sorted.
    pub scopes: Vec<String>,
    /// Whether the token may be used.
    pub enabled: bool,
    /// When it was issued.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// When it expires, or `null`.
    pub expires_at: Option<Timestamp>,
    /// When it was last used, or `null`.
    pub last_used_at: Option<Timestamp>,
    /// The last characters of the token, to tell it apart from others (not secret); empty
    /// when unknown.
    #[serde(default)]
    pub hint: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_text() {
        let id = TokenId::generate().unwrap();
        let text = id.to_string();
        assert_eq!(text.len(), 32);
        assert_eq!(text.parse::<TokenId>().unwrap(), id);
        assert_ne!(TokenId::generate().unwrap(), id);
        assert!("xyz".parse::<TokenId>().is_err());
        assert!("g".repeat(32).parse::<TokenId>().is_err());
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{text}\""));
        assert_eq!(serde_json::from_str::<TokenId>(&json).unwrap(), id);
    }

    #[test]
    fn sealed_secret_debug_reports_length_not_contents() {
        assert_eq!(
            format!("{:?}", SealedSecret(vec![0xAB; 5])),
            "SealedSecret(5 bytes)"
        );
    }
}
