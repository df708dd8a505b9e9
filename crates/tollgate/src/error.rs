//! The crate's error type.

use std::error::Error as StdError;

use crate::TokenId;

/// A boxed error from a storage backend or the operating system.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Everything that can go wrong in Tollgate.
///
/// Variants are things a caller can act on: bad input (`Invalid*`), a missing record
/// ([`Error::NotFound`]), a conflict ([`Error::NameTaken`], [`Error::VersionConflict`]), or a
/// failing backend ([`Error::Unavailable`], [`Error::Backend`]), which keeps its cause in
/// [`source()`](std::error::Error::source).
///
/// Messages never contain a token's secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A token name was rejected.
    #[error("invalid token name: {0}")]
    InvalidName(#[from] NameError),
    /// An owner was rejected.
    #[error("invalid owner: {0}")]
    InvalidOwner(NameError),
    /// A scope was rejected.
    #[error("invalid scope {scope:?}: {reason}")]
    InvalidScope {
        /// The scope as given.
        scope: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A description was longer than [`MAX_DESCRIPTION_CHARS`](crate::MAX_DESCRIPTION_CHARS) or
    /// contained control characters.
    #[error("invalid description: {0}")]
    InvalidDescription(&'static str),
    /// A token prefix was rejected by [`TokenFormat::new`](crate::TokenFormat::new).
    #[error("invalid token prefix {prefix:?}: {reason}")]
    InvalidPrefix {
        /// The prefix as given.
        prefix: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// An expiry lies in the past.
    #[error("the expiry {0} is not in the future")]
    ExpiryInPast(jiff::Timestamp),
    /// A grace period was negative or too long.
    #[error("invalid grace period: {0}")]
    InvalidGracePeriod(&'static str),
    /// A page size outside 1 to `max`.
    #[error("invalid page size: it must be between 1 and {max}")]
    InvalidLimit {
        /// The largest page size allowed.
        max: usize,
    },
    /// A pagination cursor could not be decoded, or belongs to a different query.
    #[error("invalid pagination cursor")]
    InvalidCursor,
    /// A string could not be parsed as a [`TokenId`]. The string is not repeated: people
    /// paste secrets where ids belong.
    #[error("invalid token id: expected 32 hexadecimal characters")]
    InvalidId,
    /// An encryption key or pepper was rejected.
    #[error("invalid key: {0}")]
    InvalidKey(&'static str),
    /// No token with this id exists (for this owner).
    #[error("no token with id {0}")]
    NotFound(TokenId),
    /// The owner already has a token with this name (names compare case-insensitively).
    #[error("a token named {name:?} already exists")]
    NameTaken {
        /// The name that was asked for.
        name: String,
    },
    /// The record changed since it was read: someone else modified it.
    #[error(
        "token {id} was changed concurrently (expected version {expected}); read it again and retry"
    )]
    VersionConflict {
        /// The token that changed.
        id: TokenId,
        /// The version the caller expected.
        expected: u64,
    },
    /// A token with this id or secret hash already exists. With random ids and secrets this
    /// means a bug or a replayed insert.
    #[error("a token with id {0} or the same secret already exists")]
    Duplicate(TokenId),
    /// A kept (recoverable) secret could not be decrypted: the encryption key is not the one
    /// it was sealed with, or the stored data was altered.
    #[error("the stored secret of token {0} cannot be decrypted with the configured key")]
    SealedSecret(TokenId),
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed")]
    Random(#[source] BoxError),
    /// The store cannot be reached right now (connection refused, file locked, pool exhausted).
    /// Retrying later may succeed; a guard must fail closed.
    #[error("token store unavailable")]
    Unavailable(#[source] BoxError),
    /// The store failed in a way retrying will not fix (corrupt data, schema mismatch, I/O).
    #[error("token store error")]
    Backend(#[source] BoxError),
}

impl Error {
    /// Wraps a backend error as [`Error::Backend`].
    pub fn backend(source: impl Into<BoxError>) -> Self {
        Self::Backend(source.into())
    }

    /// Wraps a transient backend error as [`Error::Unavailable`].
    pub fn unavailable(source: impl Into<BoxError>) -> Self {
        Self::Unavailable(source.into())
    }

    /// Whether the error was caused by the caller's input rather than by the store.
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            Self::InvalidName(_)
                | Self::InvalidOwner(_)
                | Self::InvalidScope { .. }
                | Self::InvalidDescription(_)
                | Self::InvalidPrefix { .. }
                | Self::ExpiryInPast(_)
                | Self::InvalidGracePeriod(_)
                | Self::InvalidCursor
                | Self::InvalidLimit { .. }
                | Self::InvalidId
                | Self::InvalidKey(_)
        )
    }
}

/// Why a token name (or owner) was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// Nothing left after trimming white space.
    #[error("it is empty")]
    Empty,
    /// More characters than allowed.
    #[error("it has {len} characters; at most {max} are allowed")]
    TooLong {
        /// Characters after trimming.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A control character such as a newline or tab.
    #[error("it contains the control character U+{:04X} at position {position}", *character as u32)]
    ControlCharacter {
        /// The offending character.
        character: char,
        /// Its position, counted in characters from 1.
        position: usize,
    },
    /// An invisible formatting character (zero-width space, bidirectional override, byte
    /// order mark…), which would let two names look identical.
    #[error("it contains the invisible formatting character U+{:04X} at position {position}", *character as u32)]
    InvisibleCharacter {
        /// The offending character.
        character: char,
        /// Its position, counted in characters from 1.
        position: usize,
    },
    /// A code point that is unassigned, private-use or a line/paragraph separator.
    #[error("it contains the unsupported character U+{:04X} at position {position}", *character as u32)]
    UnsupportedCharacter {
        /// The offending character.
        character: char,
        /// Its position, counted in characters from 1.
        position: usize,
    },
}
