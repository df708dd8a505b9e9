//! Reading forms and query strings, and the choices the forms offer.

use axum::body::to_bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::response::Response;
use http::request::Parts;
use http::{StatusCode, header};
use tollgate::jiff::civil::Date;
use tollgate::jiff::tz::TimeZone;
use tollgate::jiff::{SignedDuration, Timestamp};

use super::pages;
use super::session::Ctx;

/// The largest form accepted, in bytes.
const FORM_LIMIT: usize = 64 * 1024;

/// Name–value pairs from a form body or a query string, in order; names may repeat.
#[derive(Debug, Default, Clone)]
pub(crate) struct Fields(Vec<(String, String)>);

impl Fields {
    pub(crate) fn parse(input: &[u8]) -> Self {
        Self(form_urlencoded::parse(input).into_owned().collect())
    }

    /// The first value of `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `name`, or `""`.
    pub(crate) fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or_default().to_owned()
    }

    /// Every value of `name`.
    pub(crate) fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// The query string.
#[derive(Debug)]
pub(crate) struct QueryFields(pub(crate) Fields);

impl<S: Send + Sync> FromRequestParts<S> for QueryFields {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        Ok(Self(Fields::parse(
            parts.uri.query().unwrap_or_default().as_bytes(),
        )))
    }
}

/// A posted form whose per-session token (`csrf`) matched: every state-changing form of the
/// console is read through this, so none can forget the check.
#[derive(Debug)]
pub(crate) struct CheckedForm(pub(crate) Fields);

impl<S: Send + Sync> FromRequest<S> for CheckedForm {
    type Rejection = Response;

    async fn from_request(request: Request, _: &S) -> Result<Self, Response> {
        let ctx = request.extensions().get::<Ctx>().cloned();
        let fields = read_form(request).await?;
        let presented = fields.get("csrf").unwrap_or_default();
        if !ctx.is_some_and(|ctx| ctx.csrf_matches(presented)) {
            return Err(pages::plain_page(
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form is out of date or did not come from this console. Go back, reload the page and try again.",
            ));
        }
        Ok(Self(fields))
    }
}

/// A posted form's fields.
async fn read_form(request: Request) -> Result<Fields, Response> {
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';').next().is_some_and(|t| {
                t.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
    if !is_form {
        return Err(pages::plain_page(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Not a form",
            "The console accepts only its own forms.",
        ));
    }
    let bytes = to_bytes(request.into_body(), FORM_LIMIT)
        .await
        .map_err(|_| {
            pages::plain_page(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Form too large",
                "The form was too large to be accepted.",
            )
        })?;
    Ok(Fields::parse(&bytes))
}

/// The sign-in form, which has no session yet (the same-origin check still applies).
#[derive(Debug)]
pub(crate) struct SignInForm(pub(crate) Fields);

impl<S: Send + Sync> FromRequest<S> for SignInForm {
    type Rejection = Response;

    async fn from_request(request: Request, _: &S) -> Result<Self, Response> {
        Ok(Self(read_form(request).await?))
    }
}

/// The expiry choices of the apply and modify forms: `(value, label)`.
pub(crate) const EXPIRY_CHOICES: &[(&str, &str)] = &[
    ("never", "Never"),
    ("7d", "In 7 days"),
    ("30d", "In 30 days"),
    ("90d", "In 90 days"),
    ("365d", "In a year"),
    ("date", "On a date…"),
];

/// The grace periods offered when regenerating: `(seconds, label)`.
pub(crate) const GRACE_CHOICES: &[(&str, &str)] = &[
    ("0", "No time: it stops at once"),
    ("600", "10 minutes"),
    ("3600", "1 hour"),
    ("86400", "1 day"),
    ("604800", "7 days"),
];

/// What an expiry field asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExpiryChoice {
    /// Leave the expiry as it is (modify only).
    Keep,
    /// No expiry.
    Never,
    /// At this instant.
    At(Timestamp),
}

/// Reads the `expiry` select and the `expiry_date` field (`YYYY-MM-DD`, expiring at the end
/// of that day, UTC). `Err` holds the sentence to show next to the field.
pub(crate) fn expiry(fields: &Fields, now: Timestamp) -> Result<ExpiryChoice, String> {
    let days = |n: i64| Ok(ExpiryChoice::At(now + SignedDuration::from_hours(24 * n)));
    match fields.get("expiry").unwrap_or("never") {
        "keep" => Ok(ExpiryChoice::Keep),
        "never" => Ok(ExpiryChoice::Never),
        "7d" => days(7),
        "30d" => days(30),
        "90d" => days(90),
        "365d" => days(365),
        "date" => {
            let text = fields.get("expiry_date").unwrap_or_default().trim();
            if text.is_empty() {
                return Err("Choose the date the token expires on.".to_owned());
            }
            let date: Date = text
                .parse()
                .map_err(|_| "Enter the date as year-month-day, such as 2027-12-31.".to_owned())?;
            let end_of_day = TimeZone::UTC
                .to_timestamp(date.at(23, 59, 59, 0))
                .map_err(|_| "This date is out of range.".to_owned())?;
            Ok(ExpiryChoice::At(end_of_day))
        }
        _ => Err("Choose when the token expires.".to_owned()),
    }
}

/// The scopes of a form: check boxes named `scope` when the console offers a fixed set
/// (anything else is refused), else a free text field `scopes` separated by spaces or
/// commas.
pub(crate) fn scopes(fields: &Fields, choices: Option<&[String]>) -> Result<Vec<String>, String> {
    match choices {
        Some(choices) => {
            let picked = fields.all("scope");
            match picked.iter().find(|s| !choices.contains(s)) {
                Some(other) => Err(format!("The scope “{other}” is not offered here.")),
                None => Ok(picked),
            }
        }
        None => Ok(split_scopes(&fields.text("scopes"))),
    }
}

/// `"read, write  deploy"` → `["read", "write", "deploy"]`.
pub(crate) fn split_scopes(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `2026-11-27 10:00 UTC`.
pub(crate) fn display_time(at: Timestamp) -> String {
    at.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

/// `2026-11-27`, for a date field.
pub(crate) fn date_value(at: Timestamp) -> String {
    at.strftime("%Y-%m-%d").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_names_and_utf8() {
        let fields = Fields::parse("scope=a&scope=b&name=%E4%BA%BA+x".as_bytes());
        assert_eq!(fields.all("scope"), ["a", "b"]);
        assert_eq!(fields.get("name"), Some("人 x"));
        assert_eq!(fields.get("nothing"), None);
    }

    #[test]
    fn expiry_dates_end_the_day() {
        let now: Timestamp = "2026-11-27T10:00:00Z".parse().unwrap();
        let fields = Fields::parse(b"expiry=date&expiry_date=2027-01-31");
        assert_eq!(
            expiry(&fields, now),
            Ok(ExpiryChoice::At("2027-01-31T23:59:59Z".parse().unwrap()))
        );
        assert!(expiry(&Fields::parse(b"expiry=date&expiry_date=31/01/2027"), now).is_err());
        assert_eq!(expiry(&Fields::parse(b""), now), Ok(ExpiryChoice::Never));
    }

    #[test]
    fn scopes_from_text_or_choices() {
        assert_eq!(
            split_scopes(" read, write\tdeploy ,"),
            ["read", "write", "deploy"]
        );
        let choices = vec!["read".to_owned()];
        assert!(scopes(&Fields::parse(b"scope=admin"), Some(&choices)).is_err());
        assert_eq!(
            scopes(&Fields::parse(b"scope=read"), Some(&choices)).unwrap(),
            ["read"]
        );
    }
}
