//! The pages, one module each, and what they share: the layout, the token row, responses.

pub(crate) mod activity;
pub(crate) mod apply;
pub(crate) mod issued;
pub(crate) mod list;
pub(crate) mod signin;
pub(crate) mod token;

use askama::Template;
use axum::response::{Html, IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use tollgate::jiff::Timestamp;
use tollgate::{Error, TokenRecord};

use super::Console;
use super::assets;
use super::problem::{Field, Problem};
use super::session::Ctx;
use crate::management::{TokenView, token_file_name};

/// A message shown once at the top of the next page.
#[derive(Debug, Clone)]
pub(crate) struct Flash {
    /// `success`, `info` or `error`: the style, and whether it is announced at once.
    pub(crate) kind: &'static str,
    pub(crate) text: String,
}

impl Flash {
    pub(crate) fn success(text: impl Into<String>) -> Self {
        Self {
            kind: "success",
            text: text.into(),
        }
    }

    pub(crate) fn info(text: impl Into<String>) -> Self {
        Self {
            kind: "info",
            text: text.into(),
        }
    }

    pub(crate) fn error(text: impl Into<String>) -> Self {
        Self {
            kind: "error",
            text: text.into(),
        }
    }
}

/// What the frame around every page shows.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub(crate) product: String,
    pub(crate) page_title: String,
    /// The mount path (`""` at the root), for links.
    pub(crate) base: String,
    /// The token list's URL.
    pub(crate) home: String,
    pub(crate) csrf: String,
    /// An administrator's session: owner switcher and sign-out.
    pub(crate) admin: bool,
    /// Whether there is a session (the navigation is shown).
    pub(crate) session: bool,
    pub(crate) owner: String,
    pub(crate) owners: Vec<String>,
    pub(crate) flash: Option<Flash>,
    /// The store is unavailable: the cause.
    pub(crate) banner: Option<String>,
    pub(crate) assets: &'static str,
    /// The part of the console the page belongs to (`tokens` or `activity`), for the
    /// navigation.
    pub(crate) section: &'static str,
}

/// The token list's URL under the mount path `base`.
pub(crate) fn home_of(base: &str) -> String {
    if base.is_empty() {
        "/".to_owned()
    } else {
        base.to_owned()
    }
}

impl Layout {
    /// The frame of a page in a session; takes the session's waiting message.
    pub(crate) fn new(console: &Console, ctx: &Ctx, title: impl Into<String>) -> Self {
        Self {
            product: console.title.clone(),
            page_title: title.into(),
            base: ctx.base.clone(),
            home: home_of(&ctx.base),
            csrf: ctx.csrf.clone(),
            admin: ctx.admin,
            session: true,
            owner: ctx.owner.clone(),
            owners: ctx.owners.clone(),
            flash: console.sessions.take_flash(&ctx.key),
            banner: None,
            assets: assets::version(),
            section: "tokens",
        }
    }

    /// The same frame, in another part of the console.
    pub(crate) fn section(mut self, section: &'static str) -> Self {
        self.section = section;
        self
    }

    /// The frame of a page outside a session (sign-in, errors).
    pub(crate) fn bare(product: &str, base: &str, title: impl Into<String>) -> Self {
        Self {
            product: product.to_owned(),
            page_title: title.into(),
            base: base.to_owned(),
            home: home_of(base),
            csrf: String::new(),
            admin: false,
            session: false,
            owner: String::new(),
            owners: Vec::new(),
            flash: None,
            banner: None,
            assets: assets::version(),
            section: "tokens",
        }
    }
}

/// A time as shown: `text` for people, `short` where a heading says UTC, `iso` for
/// `<time datetime>`.
#[derive(Debug, Clone)]
pub(crate) struct Time {
    pub(crate) iso: String,
    pub(crate) text: String,
    pub(crate) short: String,
}

impl Time {
    pub(crate) fn of(at: Timestamp) -> Self {
        Self {
            iso: at.to_string(),
            text: super::forms::display_time(at),
            short: at.strftime("%Y-%m-%d %H:%M").to_string(),
        }
    }
}

/// A token as the pages show it, from the management API's [`TokenView`].
#[derive(Debug, Clone)]
pub(crate) struct TokenRow {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) hint: String,
    pub(crate) scopes: Vec<String>,
    /// `active`, `grace`, `disabled` or `expired`.
    pub(crate) status: &'static str,
    pub(crate) created: Time,
    pub(crate) updated: Time,
    pub(crate) expires: Option<Time>,
    pub(crate) last_used: Option<Time>,
    pub(crate) grace_until: Option<Time>,
    pub(crate) version: u64,
}

impl TokenRow {
    pub(crate) fn new(record: &TokenRecord, now: Timestamp) -> Self {
        let view = TokenView::new(record, now);
        Self {
            id: view.id.to_string(),
            name: view.name,
            description: view.description,
            hint: view.hint,
            scopes: view.scopes,
            status: view.status.as_str(),
            created: Time::of(view.created_at),
            updated: Time::of(view.updated_at),
            expires: view.expires_at.map(Time::of),
            last_used: view.last_used_at.map(Time::of),
            grace_until: view.grace_until.map(Time::of),
            version: record.version,
        }
    }
}

/// The errors a form shows next to its fields.
#[derive(Debug, Clone, Default)]
pub(crate) struct Errors {
    pub(crate) name: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) expiry: Option<String>,
    pub(crate) scopes: Option<String>,
    pub(crate) grace: Option<String>,
    /// About the form as a whole.
    pub(crate) form: Option<String>,
}

impl Errors {
    pub(crate) fn set(&mut self, field: Field, message: String) {
        let slot = match field {
            Field::Name => &mut self.name,
            Field::Description => &mut self.description,
            Field::Expiry => &mut self.expiry,
            Field::Scopes => &mut self.scopes,
            Field::Grace => &mut self.grace,
            Field::Search | Field::Form => &mut self.form,
        };
        slot.get_or_insert(message);
    }
}

/// Renders a page.
pub(crate) fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(err) => {
            tracing::error!(%err, "console page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page failed to render",
            )
                .into_response()
        }
    }
}

/// A page with a heading, a sentence and, maybe, a link.
#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    layout: Layout,
    text: String,
    link: Option<(String, String)>,
}

fn message(
    status: StatusCode,
    layout: Layout,
    text: impl Into<String>,
    link: Option<(String, String)>,
) -> Response {
    let mut response = render(
        status,
        &MessagePage {
            layout,
            text: text.into(),
            link,
        },
    );
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// A plain page for requests refused before any session is known.
pub(crate) fn plain_page(status: StatusCode, title: &str, text: &str) -> Response {
    message(status, Layout::bare("Tollgate", "", title), text, None)
}

/// A state-changing request from another site.
pub(crate) fn cross_site_page() -> Response {
    plain_page(
        StatusCode::FORBIDDEN,
        "Request refused",
        "This request came from another site, so it was refused. Use the console's own pages.",
    )
}

/// 303 See Other to `location`.
pub(crate) fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// The page for a failure outside any form.
pub(crate) fn failure_page(console: &Console, base: &str, err: &Error) -> Response {
    problem_page(console, base, Problem::of(err))
}

/// The page for a problem outside any form.
pub(crate) fn problem_page(console: &Console, base: &str, problem: Problem) -> Response {
    let home = home_of(base);
    let back = Some((home, "Return to the token list".to_owned()));
    let status = problem.status();
    match problem {
        Problem::Unavailable(cause) => {
            let mut layout = Layout::bare(&console.title, base, "Token store unavailable");
            layout.banner = Some(cause);
            message(
                status,
                layout,
                "The token store is not answering right now. Try again in a moment.",
                back,
            )
        }
        Problem::NotFound => message(
            status,
            Layout::bare(&console.title, base, "No such token"),
            "There is no such token. It may have been deleted.",
            back,
        ),
        Problem::Invalid { message: text, .. } => message(
            status,
            Layout::bare(&console.title, base, "Request refused"),
            text,
            back,
        ),
        Problem::Stale => message(
            status,
            Layout::bare(&console.title, base, "Changed meanwhile"),
            "Someone else changed this token meanwhile. Open it again to see its current state.",
            back,
        ),
        Problem::Internal => internal_error_page(console),
    }
}

/// Something failed on the server; the details are in its log.
pub(crate) fn internal_error_page(console: &Console) -> Response {
    message(
        StatusCode::INTERNAL_SERVER_ERROR,
        Layout::bare(&console.title, "", "Something went wrong"),
        "The request failed on the server. Try again; if it keeps failing, the server's log says why.",
        None,
    )
}

/// A token file as a download: JSON, `Content-Disposition: attachment` with an ASCII
/// `filename` and the UTF-8 name in `filename*` (RFC 6266).
pub(crate) fn attachment(record: &TokenRecord, json: String) -> Response {
    let name = token_file_name(record);
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = form_urlencoded::byte_serialize(name.as_bytes())
        .collect::<String>()
        .replace('+', "%20");
    let disposition = format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}");
    let mut response = json.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    // Token files are never kept by caches, with a secret or without.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Percent-encodes a query-string value.
pub(crate) fn encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
