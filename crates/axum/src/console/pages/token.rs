//! One token: modify, regenerate, download, delete.

use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::extract::{Path, State};
use axum::response::Response;
use http::StatusCode;
use tollgate::jiff::SignedDuration;
use tollgate::{DeleteOptions, Error, Regenerate, TokenId, TokenRecord, TokenUpdate};

use super::apply::{ScopeChoice, TokenForm, scope_choices};
use super::{Errors, Flash, Layout, TokenRow, attachment, home_of, render, see_other};
use crate::console::Console;
use crate::console::forms::{
    self, CheckedForm, EXPIRY_CHOICES, ExpiryChoice, Fields, GRACE_CHOICES,
};
use crate::console::problem::{Field, Problem};
use crate::console::session::Ctx;

#[derive(Template)]
#[template(path = "token.html")]
struct TokenPage {
    layout: Layout,
    row: TokenRow,
    form: TokenForm,
    errors: Errors,
    /// Someone else changed the token while the form was open.
    stale: bool,
    expiry_choices: &'static [(&'static str, &'static str)],
    grace_choices: &'static [(&'static str, &'static str)],
    grace: String,
    scope_choices: Option<Vec<ScopeChoice>>,
    today: String,
    editing: bool,
    /// The current expiry, for the "keep" choice.
    keep_label: String,
}

#[derive(Template)]
#[template(path = "delete.html")]
struct DeletePage {
    layout: Layout,
    row: TokenRow,
    error: Option<String>,
}

/// The form showing `record` as it is.
fn form_of(record: &TokenRecord) -> TokenForm {
    TokenForm {
        name: record.name.clone(),
        description: record.description.clone(),
        expiry: "keep".to_owned(),
        expiry_date: String::new(),
        scopes_text: record.scopes.join(" "),
        scopes: record.scopes.clone(),
        enabled: record.enabled,
    }
}

fn page(console: &Console, ctx: &Ctx, record: &TokenRecord, form: TokenForm) -> TokenPage {
    let row = TokenRow::new(record, console.manager.now());
    TokenPage {
        layout: Layout::new(console, ctx, format!("Token “{}”", record.name)),
        row,
        scope_choices: scope_choices(console, &form),
        form,
        errors: Errors::default(),
        stale: false,
        expiry_choices: EXPIRY_CHOICES,
        grace_choices: GRACE_CHOICES,
        grace: "0".to_owned(),
        today: forms::date_value(console.manager.now()),
        editing: true,
        keep_label: record
            .expires_at
            .map_or_else(|| "never".to_owned(), forms::display_time),
    }
}

/// The token of the URL, for this owner; or the page that says why not.
async fn find(console: &Console, ctx: &Ctx, id: &str) -> Result<TokenRecord, Response> {
    let id: TokenId = id
        .parse()
        .map_err(|_| super::problem_page(console, &ctx.base, Problem::NotFound))?;
    console
        .manager
        .get(&ctx.owner, id)
        .await
        .map_err(|err| super::failure_page(console, &ctx.base, &err))
}

fn version_of(fields: &Fields) -> Option<u64> {
    fields.get("version").and_then(|v| v.parse().ok())
}

/// `GET /tokens/{id}`.
pub(crate) async fn show(
    State(console): State<Arc<Console>>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Response {
    match find(&console, &ctx, &id).await {
        Ok(record) => render(
            StatusCode::OK,
            &page(&console, &ctx, &record, form_of(&record)),
        ),
        Err(response) => response,
    }
}

/// After a failed change: the form again, with what was typed and the error, or with the
/// token's current state when someone else changed it meanwhile.
async fn failed(
    console: &Console,
    ctx: &Ctx,
    record: &TokenRecord,
    form: TokenForm,
    err: &Error,
) -> Response {
    let problem = Problem::of(err);
    let status = problem.status();
    match problem {
        Problem::Invalid { field, message } => {
            let mut page = page(console, ctx, record, form);
            page.errors.set(field, message);
            render(status, &page)
        }
        Problem::Stale => match console.manager.get(&ctx.owner, record.id).await {
            Ok(current) => {
                let mut page = page(console, ctx, &current, form_of(&current));
                page.stale = true;
                render(status, &page)
            }
            Err(err) => super::failure_page(console, &ctx.base, &err),
        },
        Problem::Unavailable(cause) => {
            let mut page = page(console, ctx, record, form);
            page.layout.banner = Some(cause);
            render(status, &page)
        }
        other => super::problem_page(console, &ctx.base, other),
    }
}

/// `POST /tokens/{id}`: saves the form in one change, if the token is still at the version
/// the form showed.
pub(crate) async fn modify(
    State(console): State<Arc<Console>>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    CheckedForm(fields): CheckedForm,
) -> Response {
    let record = match find(&console, &ctx, &id).await {
        Ok(record) => record,
        Err(response) => return response,
    };
    let form = TokenForm::from_fields(&fields);
    let mut errors = Errors::default();
    let expiry = forms::expiry(&fields, console.manager.now())
        .map_err(|m| errors.set(Field::Expiry, m))
        .ok();
    let scopes = forms::scopes(&fields, console.scope_choices.as_deref())
        .map_err(|m| errors.set(Field::Scopes, m))
        .ok();
    let (Some(expiry), Some(scopes)) = (expiry, scopes) else {
        let mut page = page(&console, &ctx, &record, form);
        page.errors = errors;
        return render(StatusCode::UNPROCESSABLE_ENTITY, &page);
    };
    let mut update = TokenUpdate::default()
        .name(form.name.clone())
        .description(form.description.clone())
        .scopes(scopes)
        .enabled(form.enabled)
        .expected_version(version_of(&fields).unwrap_or(record.version));
    match expiry {
        ExpiryChoice::Keep => {}
        ExpiryChoice::Never => update = update.expires_at(None),
        ExpiryChoice::At(at) => update = update.expires_at(Some(at)),
    }
    match console
        .manager
        .acting(&ctx.audit)
        .modify(&ctx.owner, record.id, update)
        .await
    {
        Ok(changed) => {
            console.sessions.flash(
                &ctx.key,
                Flash::success(format!("Saved the changes to “{}”.", changed.name)),
            );
            see_other(&format!("{}/tokens/{}", ctx.base, changed.id))
        }
        Err(err) => failed(&console, &ctx, &record, form, &err).await,
    }
}

/// `POST /tokens/{id}/regenerate`: a new secret, shown once on the success page.
pub(crate) async fn regenerate(
    State(console): State<Arc<Console>>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    CheckedForm(fields): CheckedForm,
) -> Response {
    let record = match find(&console, &ctx, &id).await {
        Ok(record) => record,
        Err(response) => return response,
    };
    let grace = fields.text("grace");
    let seconds = match grace.parse::<i64>() {
        Ok(seconds) if GRACE_CHOICES.iter().any(|(v, _)| *v == grace) => seconds,
        _ => {
            let mut page = page(&console, &ctx, &record, form_of(&record));
            page.errors.grace = Some("Choose a grace period from the list.".to_owned());
            return render(StatusCode::UNPROCESSABLE_ENTITY, &page);
        }
    };
    let mut options =
        Regenerate::default().expected_version(version_of(&fields).unwrap_or(record.version));
    if seconds > 0 {
        options = options.grace(SignedDuration::from_secs(seconds));
    }
    match console
        .manager
        .acting(&ctx.audit)
        .regenerate(&ctx.owner, record.id, options)
        .await
    {
        Ok(issued) => match console.sessions.keep_issued(&ctx.key, issued, true) {
            Some(key) => see_other(&format!("{}/issued/{key}", ctx.base)),
            None => super::internal_error_page(&console),
        },
        Err(err) => failed(&console, &ctx, &record, form_of(&record), &err).await,
    }
}

/// `GET /tokens/{id}/delete`: the confirmation, for browsers without the script's dialog.
pub(crate) async fn confirm_delete(
    State(console): State<Arc<Console>>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Response {
    match find(&console, &ctx, &id).await {
        Ok(record) => {
            let page = DeletePage {
                layout: Layout::new(&console, &ctx, format!("Delete “{}”", record.name)),
                row: TokenRow::new(&record, console.manager.now()),
                error: None,
            };
            render(StatusCode::OK, &page)
        }
        Err(response) => response,
    }
}

/// `POST /tokens/{id}/delete`.
pub(crate) async fn delete(
    State(console): State<Arc<Console>>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    CheckedForm(fields): CheckedForm,
) -> Response {
    let record = match find(&console, &ctx, &id).await {
        Ok(record) => record,
        Err(response) => return response,
    };
    let options =
        DeleteOptions::default().expected_version(version_of(&fields).unwrap_or(record.version));
    match console
        .manager
        .acting(&ctx.audit)
        .delete_with(&ctx.owner, record.id, options)
        .await
    {
        Ok(()) => {
            console.sessions.flash(
                &ctx.key,
                Flash::success(format!(
                    "Deleted “{}”. API calls using it now fail.",
                    record.name
                )),
            );
            see_other(&home_of(&ctx.base))
        }
        Err(err) => {
            let problem = Problem::of(&err);
            let status = problem.status();
            let (current, error) = match problem {
                Problem::Invalid { message, .. } => (record, message),
                Problem::Stale => match console.manager.get(&ctx.owner, record.id).await {
                    Ok(current) => (
                        current,
                        "Someone else changed this token since you opened the page. Check it and confirm again.".to_owned(),
                    ),
                    Err(err) => return super::failure_page(&console, &ctx.base, &err),
                },
                Problem::Unavailable(cause) => {
                    (record, format!("The token store is not answering: {cause}. Try again in a moment."))
                }
                other => return super::problem_page(&console, &ctx.base, other),
            };
            let page = DeletePage {
                layout: Layout::new(&console, &ctx, format!("Delete “{}”", current.name)),
                row: TokenRow::new(&current, console.manager.now()),
                error: Some(error),
            };
            render(status, &page)
        }
    }
}

/// `GET /tokens/{id}/download`: the token file, without the secret unless the manager runs
/// in recoverable mode.
pub(crate) async fn download(
    State(console): State<Arc<Console>>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Response {
    let record = match find(&console, &ctx, &id).await {
        Ok(record) => record,
        Err(response) => return response,
    };
    match console.manager.download(&ctx.owner, record.id).await {
        Ok(file) => attachment(&record, file.to_json()),
        Err(err) => super::failure_page(&console, &ctx.base, &err),
    }
}
