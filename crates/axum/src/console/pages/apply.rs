//! Apply for a new token.

use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use http::StatusCode;
use tollgate::NewToken;

use super::{Errors, Layout, render, see_other};
use crate::console::Console;
use crate::console::forms::{self, CheckedForm, EXPIRY_CHOICES, ExpiryChoice, Fields};
use crate::console::problem::Problem;
use crate::console::session::Ctx;

/// What the apply and modify forms hold, as typed.
#[derive(Debug, Clone, Default)]
pub(crate) struct TokenForm {
    pub(crate) name: String,
    pub(crate) description: String,
    /// The chosen expiry option.
    pub(crate) expiry: String,
    pub(crate) expiry_date: String,
    /// The free text scopes field.
    pub(crate) scopes_text: String,
    /// The ticked scopes, when the console offers a fixed set.
    pub(crate) scopes: Vec<String>,
    pub(crate) enabled: bool,
}

impl TokenForm {
    pub(crate) fn from_fields(fields: &Fields) -> Self {
        Self {
            name: fields.text("name"),
            description: fields.text("description"),
            expiry: fields.get("expiry").unwrap_or("never").to_owned(),
            expiry_date: fields.text("expiry_date"),
            scopes_text: fields.text("scopes"),
            scopes: fields.all("scope"),
            enabled: fields.get("enabled").is_some(),
        }
    }
}

/// A scope check box.
#[derive(Debug, Clone)]
pub(crate) struct ScopeChoice {
    pub(crate) scope: String,
    pub(crate) checked: bool,
}

/// The check boxes for `form`, when the console offers a fixed set of scopes.
pub(crate) fn scope_choices(console: &Console, form: &TokenForm) -> Option<Vec<ScopeChoice>> {
    console.scope_choices.as_ref().map(|choices| {
        choices
            .iter()
            .map(|scope| ScopeChoice {
                scope: scope.clone(),
                checked: form.scopes.contains(scope),
            })
            .collect()
    })
}

#[derive(Template)]
#[template(path = "apply.html")]
struct ApplyPage {
    layout: Layout,
    form: TokenForm,
    errors: Errors,
    expiry_choices: &'static [(&'static str, &'static str)],
    scope_choices: Option<Vec<ScopeChoice>>,
    today: String,
    /// The fields of a new token: no "keep" expiry, no enabled box.
    editing: bool,
    keep_label: String,
}

fn page(console: &Console, ctx: &Ctx, form: TokenForm, errors: Errors) -> ApplyPage {
    ApplyPage {
        layout: Layout::new(console, ctx, "New token"),
        scope_choices: scope_choices(console, &form),
        form,
        errors,
        expiry_choices: EXPIRY_CHOICES,
        today: forms::date_value(console.manager.now()),
        editing: false,
        keep_label: String::new(),
    }
}

/// `GET /new`.
pub(crate) async fn form(
    State(console): State<Arc<Console>>,
    Extension(ctx): Extension<Ctx>,
) -> Response {
    let form = TokenForm {
        expiry: "90d".to_owned(),
        enabled: true,
        ..Default::default()
    };
    render(
        StatusCode::OK,
        &page(&console, &ctx, form, Errors::default()),
    )
}

/// `POST /new`: issues the token and sends the browser to its success page.
pub(crate) async fn submit(
    State(console): State<Arc<Console>>,
    Extension(ctx): Extension<Ctx>,
    CheckedForm(fields): CheckedForm,
) -> Response {
    let form = TokenForm::from_fields(&fields);
    let mut errors = Errors::default();
    let expiry = forms::expiry(&fields, console.manager.now())
        .map_err(|message| errors.expiry = Some(message))
        .ok();
    let scopes = forms::scopes(&fields, console.scope_choices.as_deref())
        .map_err(|message| errors.scopes = Some(message))
        .ok();
    let (Some(expiry), Some(scopes)) = (expiry, scopes) else {
        return render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &page(&console, &ctx, form, errors),
        );
    };
    let mut new = NewToken::new(form.name.clone())
        .description(form.description.clone())
        .scopes(scopes);
    if let ExpiryChoice::At(at) = expiry {
        new = new.expires_at(at);
    }
    match console
        .manager
        .acting(&ctx.audit)
        .apply(&ctx.owner, new)
        .await
    {
        Ok(issued) => match console.sessions.keep_issued(&ctx.key, issued, false) {
            Some(key) => see_other(&format!("{}/issued/{key}", ctx.base)),
            None => super::internal_error_page(&console),
        },
        Err(err) => {
            let problem = Problem::of(&err);
            let status = problem.status();
            let mut page = page(&console, &ctx, form, errors);
            match problem {
                Problem::Invalid { field, message } => page.errors.set(field, message),
                Problem::Unavailable(cause) => page.layout.banner = Some(cause),
                other => return super::problem_page(&console, &ctx.base, other),
            }
            render(status, &page)
        }
    }
}
