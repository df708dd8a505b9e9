//! The activity: the audit log of the owner being viewed, store-wide and per token.

use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::extract::{Path, State};
use axum::response::Response;
use http::StatusCode;
use tollgate::{ActorKind, AuditAction, AuditEntry, AuditFilter, Outcome, TokenId};

use super::{Layout, Time, encode, render};
use crate::console::Console;
use crate::console::forms::QueryFields;
use crate::console::problem::Problem;
use crate::console::session::Ctx;

/// Entries per page.
pub(crate) const PAGE_SIZE: usize = 50;

/// An entry as the pages show it.
#[derive(Debug, Clone)]
pub(crate) struct ActivityRow {
    pub(crate) time: Time,
    /// `2026-11-27 10:00:05`, UTC.
    pub(crate) seconds: String,
    pub(crate) action: &'static str,
    pub(crate) refused: bool,
    /// The actor's name, else its id, else `""`.
    pub(crate) actor: String,
    /// The actor's id when it differs from the name shown.
    pub(crate) actor_id: Option<String>,
    pub(crate) actor_kind: &'static str,
    pub(crate) token_id: Option<String>,
    pub(crate) token_name: String,
    /// The fields changed.
    pub(crate) changes: Vec<String>,
    /// After a regeneration: how long the previous secret keeps working.
    pub(crate) grace: Option<String>,
    pub(crate) reason: Option<String>,
    pub(crate) address: Option<String>,
}

fn kind_word(kind: ActorKind) -> &'static str {
    match kind {
        ActorKind::Token => "admin token",
        ActorKind::User => "user",
        ActorKind::Local => "command line",
        ActorKind::Application => "application",
        ActorKind::Anonymous => "anonymous",
        _ => "other",
    }
}

/// `0` → `none`, `3600` → `1 hour`, `90` → `90 seconds`.
fn duration_words(seconds: i64) -> String {
    let unit = |n: i64, word: &str| {
        if n == 1 {
            format!("1 {word}")
        } else {
            format!("{n} {word}s")
        }
    };
    match seconds {
        0 => "none".to_owned(),
        s if s % 86_400 == 0 => unit(s / 86_400, "day"),
        s if s % 3_600 == 0 => unit(s / 3_600, "hour"),
        s if s % 60 == 0 => unit(s / 60, "minute"),
        s => unit(s, "second"),
    }
}

impl ActivityRow {
    pub(crate) fn new(entry: &AuditEntry) -> Self {
        let (actor, actor_id) = if entry.actor.name.is_empty() {
            (entry.actor.id.clone(), None)
        } else {
            let id = (entry.actor.id != entry.actor.name && !entry.actor.id.is_empty())
                .then(|| entry.actor.id.clone());
            (entry.actor.name.clone(), id)
        };
        Self {
            time: Time::of(entry.at),
            seconds: entry.at.strftime("%Y-%m-%d %H:%M:%S").to_string(),
            action: entry.action.as_str(),
            refused: entry.outcome == Outcome::Refused,
            actor,
            actor_id,
            actor_kind: kind_word(entry.actor.kind),
            token_id: entry.token_id.map(|id| id.to_string()),
            token_name: entry.token_name.clone().unwrap_or_default(),
            changes: entry.changes.clone(),
            grace: entry.grace_seconds.map(duration_words),
            reason: entry.reason.clone(),
            address: entry.client.address.clone(),
        }
    }
}

#[derive(Template)]
#[template(path = "activity.html")]
struct ActivityPage {
    layout: Layout,
    /// The token whose activity this is: `(id, name)`; `None` for the whole owner.
    token: Option<(String, String)>,
    /// This page's URL, without a query.
    here: String,
    /// The action filtered on, or `""`.
    action: String,
    actions: Vec<&'static str>,
    filter_error: Option<String>,
    rows: Vec<ActivityRow>,
    /// The next page's URL.
    more: Option<String>,
    /// Whether this is a later page.
    continued: bool,
    /// The first page with the same filter.
    first_page: String,
}

/// `GET /activity?action=&cursor=`: every entry about the owner being viewed.
pub(crate) async fn all(
    State(console): State<Arc<Console>>,
    Extension(ctx): Extension<Ctx>,
    QueryFields(fields): QueryFields,
) -> Response {
    let here = format!("{}/activity", ctx.base);
    let layout = Layout::new(&console, &ctx, "Activity").section("activity");
    show(&console, &ctx, layout, None, here, &fields).await
}

/// `GET /tokens/{id}/activity?action=&cursor=`: the entries about one token of the owner
/// being viewed, deleted or not.
pub(crate) async fn token(
    State(console): State<Arc<Console>>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    QueryFields(fields): QueryFields,
) -> Response {
    let Ok(id) = id.parse::<TokenId>() else {
        return super::problem_page(&console, &ctx.base, Problem::NotFound);
    };
    // The name now, or (deleted) the name the newest entry knew.
    let name = match console.manager.get(&ctx.owner, id).await {
        Ok(record) => Some(record.name),
        Err(_) => None,
    };
    let here = format!("{}/tokens/{id}/activity", ctx.base);
    let layout = Layout::new(&console, &ctx, "Activity").section("activity");
    show(&console, &ctx, layout, Some((id, name)), here, &fields).await
}

async fn show(
    console: &Console,
    ctx: &Ctx,
    layout: Layout,
    token: Option<(TokenId, Option<String>)>,
    here: String,
    fields: &crate::console::forms::Fields,
) -> Response {
    let action_text = fields.text("action").trim().to_owned();
    let cursor = fields
        .get("cursor")
        .filter(|c| !c.is_empty())
        .map(str::to_owned);
    let first_page = if action_text.is_empty() {
        here.clone()
    } else {
        format!("{here}?action={}", encode(&action_text))
    };
    let mut page = ActivityPage {
        layout,
        token: None,
        here,
        action: action_text.clone(),
        actions: AuditAction::ALL.iter().map(|a| a.as_str()).collect(),
        filter_error: None,
        rows: Vec::new(),
        more: None,
        continued: cursor.is_some(),
        first_page,
    };
    let action = if action_text.is_empty() {
        None
    } else if let Ok(action) = action_text.parse::<AuditAction>() {
        Some(action)
    } else {
        page.filter_error = Some("Choose an action from the list.".to_owned());
        page.action = String::new();
        return render(StatusCode::BAD_REQUEST, &page);
    };
    // Always this owner's entries only: an administrator's the owner being viewed, a user's
    // their own; refusals without an owner belong to nobody's activity.
    let filter = AuditFilter {
        token: token.as_ref().map(|(id, _)| *id),
        action,
        owner: Some(ctx.owner.clone()),
        ..Default::default()
    };
    match console
        .manager
        .audit(&filter, cursor.as_deref(), Some(PAGE_SIZE))
        .await
    {
        Ok(found) => {
            page.rows = found.entries.iter().map(ActivityRow::new).collect();
            if let Some((id, name)) = token {
                let name = name
                    .or_else(|| found.entries.iter().find_map(|e| e.token_name.clone()))
                    .unwrap_or_default();
                if name.is_empty() && page.rows.is_empty() && !page.continued && action.is_none() {
                    // Neither a token of this owner nor any trace of one.
                    return super::problem_page(console, &ctx.base, Problem::NotFound);
                }
                page.layout.page_title = format!("Activity of “{name}”");
                page.token = Some((id.to_string(), name));
            }
            page.more = found.next_cursor.map(|cursor| {
                format!(
                    "{}?action={}&cursor={}",
                    page.here,
                    encode(&page.action),
                    encode(&cursor)
                )
            });
            render(StatusCode::OK, &page)
        }
        Err(err) => {
            let problem = Problem::of(&err);
            let status = problem.status();
            match problem {
                Problem::Invalid { message, .. } => page.filter_error = Some(message),
                Problem::Unavailable(cause) => page.layout.banner = Some(cause),
                other => return super::problem_page(console, &ctx.base, other),
            }
            if let Some((id, name)) = token {
                page.token = Some((id.to_string(), name.unwrap_or_default()));
            }
            render(status, &page)
        }
    }
}
