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
    /// A search query was longer than [`MAX_QUERY_CHARS`](crate::MAX_QUERY_CHARS) or
    /// contained control characters.
    #[error("invalid search query: {0}")]
    InvalidQuery(&'static str),
    /// An audit log filter was rejected (an unknown action, an actor id over 200 characters).
    #[error("invalid audit filter: {0}")]
    InvalidAuditFilter(&'static str),
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
    /// The caller asked for a change at a version (`If-Match`, `--if-version`) and the
    /// token is at another: someone else changed it in between. Changes that name no version
    /// never fail this way.
    #[error(
        "token {id} is at version {actual}, not at the expected version {expected}: it was changed in between; read it again and retry"
    )]
    VersionConflict {
        /// The token that changed.
        id: TokenId,
        /// The version the caller expected.
        expected: u64,
        /// The version it is at; `0` when the store did not say.
        actual: u64,
    },
    /// The change would leave the owner without any enabled, unexpired token holding the
    /// protected `scope` (see [`TokenManager::with_protected_scope`](crate::TokenManager::with_protected_scope)),
    /// so nobody could manage tokens any more. Force it to go ahead anyway.
    #[error(
        "refused: this is the last enabled token with the scope {scope:?}; without it nobody could manage tokens (force it to go ahead)"
    )]
    LockOut {
        /// The protected scope.
        scope: String,
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
    /// The store cannot be reached right now (connection refused, file locked, pool exhausted,
    /// no answer within the deadline). Retrying later may succeed; a guard must fail closed.
    /// The cause is in [`source()`](std::error::Error::source).
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
        self.kind() == ErrorKind::InvalidInput
    }

    /// What kind of failure this is. Every surface derives its answer from this one
    /// classification: the HTTP status, the CLI's exit code, the console's message.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidName(_)
            | Self::InvalidOwner(_)
            | Self::InvalidScope { .. }
            | Self::InvalidDescription(_)
            | Self::InvalidPrefix { .. }
            | Self::ExpiryInPast(_)
            | Self::InvalidGracePeriod(_)
            | Self::InvalidQuery(_)
            | Self::InvalidAuditFilter(_)
            | Self::InvalidCursor
            | Self::InvalidLimit { .. }
            | Self::InvalidId
            | Self::InvalidKey(_) => ErrorKind::InvalidInput,
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::NameTaken { .. } | Self::Duplicate(_) | Self::LockOut { .. } => {
                ErrorKind::Conflict
            }
            Self::VersionConflict { .. } => ErrorKind::PreconditionFailed,
            Self::Unavailable(_) => ErrorKind::Unavailable,
            Self::SealedSecret(_) | Self::Random(_) | Self::Backend(_) => ErrorKind::Internal,
        }
    }

    /// A short, stable, machine-readable code for this error (`invalid_name`, `not_found`,
    /// `version_conflict`…), as the management API's error bodies carry it.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidName(_) => "invalid_name",
            Self::InvalidOwner(_) => "invalid_owner",
            Self::InvalidScope { .. } => "invalid_scope",
            Self::InvalidDescription(_) => "invalid_description",
            Self::InvalidPrefix { .. } => "invalid_prefix",
            Self::ExpiryInPast(_) => "invalid_expiry",
            Self::InvalidGracePeriod(_) => "invalid_grace_period",
            Self::InvalidQuery(_) => "invalid_query",
            Self::InvalidAuditFilter(_) => "invalid_audit_filter",
            Self::InvalidCursor => "invalid_cursor",
            Self::InvalidLimit { .. } => "invalid_limit",
            Self::InvalidId => "invalid_id",
            Self::InvalidKey(_) => "invalid_key",
            Self::NotFound(_) => "not_found",
            Self::NameTaken { .. } => "name_taken",
            Self::VersionConflict { .. } => "version_conflict",
            Self::LockOut { .. } => "lockout",
            Self::Duplicate(_) => "duplicate",
            Self::SealedSecret(_) => "sealed_secret",
            Self::Random(_) => "random_failed",
            Self::Unavailable(_) => "unavailable",
            Self::Backend(_) => "store_error",
        }
    }

    /// The message with the chain of causes, for people: `token store unavailable:
    /// connection refused`. Never contains a secret.
    pub fn report(&self) -> String {
        let mut message = self.to_string();
        let mut source = StdError::source(self);
        while let Some(cause) = source {
            let text = cause.to_string();
            if !message.ends_with(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = cause.source();
        }
        message
    }
}

/// What kind of failure an [`Error`] is: the one classification from which the management
/// API's HTTP status and the CLI's exit code are both derived.
///
/// | kind | HTTP | CLI exit code |
/// |---|---|---|
/// | [`InvalidInput`](Self::InvalidInput) | 400 | 2 |
/// | [`NotFound`](Self::NotFound) | 404 | 1 |
/// | [`Conflict`](Self::Conflict) | 409 | 2 |
/// | [`PreconditionFailed`](Self::PreconditionFailed) | 412 | 2 |
/// | [`Unavailable`](Self::Unavailable) | 503 + `Retry-After` | 3 |
/// | [`Internal`](Self::Internal) | 500 | 3 |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The caller's input was rejected; nothing changed. Fix the input.
    InvalidInput,
    /// No such token (for this owner).
    NotFound,
    /// The request conflicts with the store's state: a taken name, a change that would lock
    /// every administrator out.
    Conflict,
    /// The caller made the change conditional on a version (`If-Match`, `--if-version`) and
    /// the token is at another one.
    PreconditionFailed,
    /// The store cannot answer now (down, locked, too slow); retrying later may work.
    Unavailable,
    /// The store or the system failed in a way retrying will not fix.
    Internal,
}

impl ErrorKind {
    /// The HTTP status code for this kind of failure.
    pub fn http_status(self) -> u16 {
        match self {
            Self::InvalidInput => 400,
            Self::NotFound => 404,
            Self::Conflict => 409,
            Self::PreconditionFailed => 412,
            Self::Unavailable => 503,
            Self::Internal => 500,
        }
    }

    /// The exit code of a command that failed this way: 1 not found, 2 bad input or
    /// conflict or a failed precondition, 3 the store failed.
    pub fn exit_code(self) -> u8 {
        match self {
            Self::NotFound => 1,
            Self::InvalidInput | Self::Conflict | Self::PreconditionFailed => 2,
            Self::Unavailable | Self::Internal => 3,
        }
    }
}

/// A store call that did not finish within the [`TokenManager`](crate::TokenManager)'s
/// deadline (see [`with_deadlines`](crate::TokenManager::with_deadlines)); the
/// source of the [`Error::Unavailable`] it causes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the token store did not answer within {} ms", .after.as_millis())]
pub struct StoreTimeout {
    after: std::time::Duration,
}

impl StoreTimeout {
    pub(crate) fn new(after: std::time::Duration) -> Self {
        Self { after }
    }

    /// The deadline that passed.
    pub fn after(&self) -> std::time::Duration {
        self.after
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
