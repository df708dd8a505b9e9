//! The token list: search, pages, the owner switcher.

use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use http::StatusCode;
use tollgate::ListOptions;

use super::{Flash, Layout, TokenRow, encode, home_of, render, see_other};
use crate::console::Console;
use crate::console::forms::{CheckedForm, QueryFields};
use crate::console::problem::Problem;
use crate::console::session::Ctx;

/// Tokens per page.
pub(crate) const PAGE_SIZE: usize = 50;

#[derive(Template)]
#[template(path = "list.html")]
struct ListPage {
    layout: Layout,
    query: String,
    search_error: Option<String>,
    rows: Vec<TokenRow>,
    /// The next page's URL.
    more: Option<String>,
    /// Whether this is a later page (reached without the script).
    continued: bool,
    /// The first page of the same search.
    first_page: String,
}

/// `GET /?q=&cursor=`: newest first, or the best matches of a fuzzy search.
pub(crate) async fn list(
    State(console): State<Arc<Console>>,
    Extension(ctx): Extension<Ctx>,
    QueryFields(fields): QueryFields,
) -> Response {
    // Whoever is on the list has left any success page: its secret is not shown again.
    console.sessions.forget_issued(&ctx.key);
    let query = fields.text("q").trim().to_owned();
    let cursor = fields
        .get("cursor")
        .filter(|c| !c.is_empty())
        .map(str::to_owned);
    let continued = cursor.is_some();
    let layout = Layout::new(&console, &ctx, "Tokens");
    let first_page = if query.is_empty() {
        layout.home.clone()
    } else {
        format!("{}?q={}", layout.home, encode(&query))
    };
    let mut page = ListPage {
        layout,
        first_page,
        query,
        search_error: None,
        rows: Vec::new(),
        more: None,
        continued,
    };
    let options = ListOptions {
        query: (!page.query.is_empty()).then(|| page.query.clone()),
        limit: Some(PAGE_SIZE),
        cursor,
        ..Default::default()
    };
    match console.manager.list(&ctx.owner, options).await {
        Ok(found) => {
            let now = console.manager.now();
            page.rows = found.items.iter().map(|r| TokenRow::new(r, now)).collect();
            page.more = found.next_cursor.map(|cursor| {
                format!(
                    "{}?q={}&cursor={}",
                    page.layout.home,
                    encode(&page.query),
                    encode(&cursor)
                )
            });
            render(StatusCode::OK, &page)
        }
        Err(err) => {
            let problem = Problem::of(&err);
            let status = problem.status();
            match problem {
                Problem::Invalid { message, .. } => page.search_error = Some(message),
                Problem::Unavailable(cause) => page.layout.banner = Some(cause),
                other => return super::problem_page(&console, &ctx.base, other),
            }
            render(status, &page)
        }
    }
}

/// `POST /owner`: an administrator switches to another owner's tokens.
pub(crate) async fn switch_owner(
    State(console): State<Arc<Console>>,
    Extension(ctx): Extension<Ctx>,
    CheckedForm(fields): CheckedForm,
) -> Response {
    let home = &home_of(&ctx.base);
    if !ctx.admin {
        return see_other(home);
    }
    let owner = fields.text("owner").trim().to_owned();
    // Listing one token validates the owner the way every other operation will.
    let probe = ListOptions {
        limit: Some(1),
        ..Default::default()
    };
    match console.manager.list(&owner, probe).await {
        Ok(_) => {
            console.sessions.flash(
                &ctx.key,
                Flash::info(format!("Showing the tokens of “{owner}”.")),
            );
            console.sessions.switch_owner(&ctx.key, owner);
        }
        Err(err) => {
            let text = match Problem::of(&err) {
                Problem::Invalid { message, .. } => message,
                Problem::Unavailable(cause) => format!("The token store is not answering: {cause}"),
                _ => "The owner could not be switched.".to_owned(),
            };
            console.sessions.flash(&ctx.key, Flash::error(text));
        }
    }
    see_other(home)
}
