//! The success page after apply and regenerate: the token, once, with copy and download.
//!
//! The new token waits in the session (wiped with it) for a few minutes, so that a reload or
//! the download still finds it; going back to the list forgets it.

use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::extract::{Path, State};
use axum::response::Response;
use http::StatusCode;
use zeroize::Zeroizing;

use super::{Layout, Time, TokenRow, attachment, render};
use crate::console::Console;
use crate::console::session::{Ctx, ISSUED_TTL};

#[derive(Template)]
#[template(path = "issued.html")]
struct IssuedPage {
    layout: Layout,
    key: String,
    row: TokenRow,
    secret: Zeroizing<String>,
    regenerated: bool,
    grace_until: Option<Time>,
    minutes: u64,
}

#[derive(Template)]
#[template(path = "gone.html")]
struct GonePage {
    layout: Layout,
}

/// `GET /issued/{key}`.
pub(crate) async fn show(
    State(console): State<Arc<Console>>,
    Extension(ctx): Extension<Ctx>,
    Path(key): Path<String>,
) -> Response {
    let now = console.manager.now();
    let shown = console.sessions.with_issued(&ctx.key, &key, |pending| {
        (
            TokenRow::new(&pending.issued.record, now),
            Zeroizing::new(pending.issued.token.expose_secret().to_owned()),
            pending.regenerated,
        )
    });
    let Some((row, secret, regenerated)) = shown else {
        let layout = Layout::new(&console, &ctx, "Token no longer shown");
        return render(StatusCode::GONE, &GonePage { layout });
    };
    let title = if regenerated {
        "Token regenerated"
    } else {
        "Token created"
    };
    let page = IssuedPage {
        layout: Layout::new(&console, &ctx, title),
        key,
        grace_until: row.grace_until.clone(),
        row,
        secret,
        regenerated,
        minutes: ISSUED_TTL.as_secs() / 60,
    };
    render(StatusCode::OK, &page)
}

/// `GET /issued/{key}/download`: the token file with the secret.
pub(crate) async fn download(
    State(console): State<Arc<Console>>,
    Extension(ctx): Extension<Ctx>,
    Path(key): Path<String>,
) -> Response {
    let now = console.manager.now();
    let file = console.sessions.with_issued(&ctx.key, &key, |pending| {
        (
            pending.issued.record.clone(),
            Zeroizing::new(pending.issued.token_file(now).to_json()),
        )
    });
    match file {
        Some((record, json)) => attachment(&record, json.as_str().to_owned()),
        None => {
            let layout = Layout::new(&console, &ctx, "Token no longer shown");
            render(StatusCode::GONE, &GonePage { layout })
        }
    }
}
