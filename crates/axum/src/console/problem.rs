//! What the console tells a person when an operation fails: derived from the core's
//! [`ErrorKind`] in [`Problem::of`], the way the management API derives its status and the
//! CLI its exit code, and worded for people.

use http::StatusCode;
use tollgate::{Error, ErrorKind, NameError};

/// The form field an error concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    Name,
    Description,
    Expiry,
    Scopes,
    Grace,
    Search,
    /// The form as a whole.
    Form,
}

/// A failure, as the console presents it.
#[derive(Debug, Clone)]
pub(crate) enum Problem {
    /// Shown next to `field`; the form is shown again with what was typed.
    Invalid { field: Field, message: String },
    /// Someone else changed the token: the form is shown again with its current state.
    Stale,
    /// The token does not exist (for this owner).
    NotFound,
    /// The store cannot answer now: a banner with the cause.
    Unavailable(String),
    /// Anything else: the details go to the server's log only.
    Internal,
}

/// "it is empty" → "The name is empty.": the core words its reasons as "it …".
fn about(subject: &str, reason: &str) -> String {
    let rest = reason.strip_prefix("it ").unwrap_or(reason);
    format!("{subject} {rest}.")
}

impl Problem {
    /// The one place that decides what a failure looks like in the console.
    pub(crate) fn of(err: &Error) -> Self {
        match err.kind() {
            ErrorKind::InvalidInput | ErrorKind::Conflict => {
                let (field, message) = wording(err);
                Self::Invalid { field, message }
            }
            ErrorKind::PreconditionFailed => Self::Stale,
            ErrorKind::NotFound => Self::NotFound,
            ErrorKind::Unavailable => {
                tracing::warn!(error = %err.report(), "token store unavailable");
                Self::Unavailable(err.report())
            }
            _ => {
                tracing::error!(error = %err.report(), "console request failed");
                Self::Internal
            }
        }
    }

    /// The status of a page showing this problem.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Stale => StatusCode::CONFLICT,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The field and the sentence for invalid input and conflicts.
fn wording(err: &Error) -> (Field, String) {
    match err {
        Error::InvalidName(NameError::Empty) => (Field::Name, "Enter a name.".to_owned()),
        Error::InvalidName(reason) => (Field::Name, about("The name", &reason.to_string())),
        Error::NameTaken { name } => (
            Field::Name,
            format!("A token named “{name}” already exists. Choose another name."),
        ),
        Error::InvalidDescription(reason) => (Field::Description, about("The description", reason)),
        Error::InvalidScope { scope, reason } => (
            Field::Scopes,
            about(&format!("The scope “{scope}”"), reason),
        ),
        Error::ExpiryInPast(_) => (
            Field::Expiry,
            "The expiry must be in the future.".to_owned(),
        ),
        Error::InvalidGracePeriod(reason) => (Field::Grace, about("The grace period", reason)),
        Error::InvalidQuery(reason) => (Field::Search, about("The search", reason)),
        Error::InvalidCursor => (
            Field::Search,
            "This page of results is out of date. Search again.".to_owned(),
        ),
        Error::InvalidOwner(reason) => (Field::Form, about("The owner", &reason.to_string())),
        Error::LockOut { scope } => (
            Field::Form,
            format!(
                "Refused: this is the last enabled token with the scope “{scope}”. Without it nobody could manage tokens. Issue another token with that scope first."
            ),
        ),
        other => (Field::Form, capitalized(&other.report())),
    }
}

fn capitalized(message: &str) -> String {
    let mut chars = message.chars();
    let mut out: String = chars
        .next()
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_default();
    out.push_str(chars.as_str());
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_as_sentences() {
        let Problem::Invalid { field, message } =
            Problem::of(&Error::InvalidName(NameError::TooLong {
                len: 120,
                max: 100,
            }))
        else {
            panic!("not invalid input");
        };
        assert_eq!(field, Field::Name);
        assert_eq!(
            message,
            "The name has 120 characters; at most 100 are allowed."
        );
        let Problem::Invalid { message, .. } = Problem::of(&Error::InvalidDescription(
            "it is longer than 1000 characters",
        )) else {
            panic!("not invalid input");
        };
        assert_eq!(message, "The description is longer than 1000 characters.");
    }

    #[test]
    fn kinds_decide() {
        assert!(matches!(
            Problem::of(&Error::unavailable(std::io::Error::other("refused"))),
            Problem::Unavailable(m) if m.contains("refused")
        ));
        assert!(matches!(
            Problem::of(&Error::backend(std::io::Error::other("disk"))),
            Problem::Internal
        ));
    }
}
