//! Sign-in with an admin token, and sign-out.

use std::net::SocketAddr;
use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::extract::{ConnectInfo, NestedPath, State};
use axum::response::Response;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use tollgate::{Actor, Client, Context, Verification};
use zeroize::Zeroizing;

use super::{Layout, home_of, render, see_other};
use crate::console::forms::{CheckedForm, QueryFields, SignInForm};
use crate::console::session::{Ctx, cookie};
use crate::console::throttle::client_key;
use crate::console::{Access, Console};

#[derive(Template)]
#[template(path = "signin.html")]
struct SignInPage {
    layout: Layout,
    scope: String,
    notice: Option<String>,
    error: Option<String>,
}

fn base_of(nested: Option<&NestedPath>) -> String {
    nested
        .map(|p| p.as_str().trim_end_matches('/').to_owned())
        .unwrap_or_default()
}

fn sign_in_page(
    console: &Console,
    base: &str,
    notice: Option<String>,
    error: Option<String>,
) -> SignInPage {
    let scope = match &console.access {
        Access::Admin { scope, .. } => scope.to_string(),
        Access::SelfService(_) => String::new(),
    };
    SignInPage {
        layout: Layout::bare(&console.title, base, "Sign in"),
        scope,
        notice,
        error,
    }
}

/// `GET /signin`.
pub(crate) async fn form(
    State(console): State<Arc<Console>>,
    nested: Option<Extension<NestedPath>>,
    QueryFields(fields): QueryFields,
) -> Response {
    let base = base_of(nested.as_deref());
    let notice = match fields.get("ended") {
        Some("token") => Some(
            "Your session has ended: its admin token was deleted, disabled or expired, or lost the admin scope. Sign in again.",
        ),
        Some("timeout") => Some("Your session has ended. Sign in again."),
        Some("signed_out") => Some("You have signed out."),
        _ => None,
    };
    render(
        StatusCode::OK,
        &sign_in_page(&console, &base, notice.map(str::to_owned), None),
    )
}

/// `POST /signin`: verifies the token, starts a session, and remembers wrong tokens per
/// client address.
pub(crate) async fn submit(
    State(console): State<Arc<Console>>,
    nested: Option<Extension<NestedPath>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    SignInForm(fields): SignInForm,
) -> Response {
    let address = peer.as_ref().map(|Extension(ConnectInfo(addr))| *addr);
    let base = base_of(nested.as_deref());
    let Access::Admin { scope, owner } = &console.access else {
        return see_other(&home_of(&base));
    };
    let client = client_key(address.map(|addr| addr.ip()));
    if let Err(wait) = console.throttle.check(client) {
        let seconds = wait.as_secs() + 1;
        let error = format!(
            "Too many wrong tokens from your address. Wait {seconds} seconds, then try again."
        );
        let mut response = render(
            StatusCode::TOO_MANY_REQUESTS,
            &sign_in_page(&console, &base, None, Some(error)),
        );
        if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    let token = Zeroizing::new(fields.text("token").trim().to_owned());
    if token.is_empty() {
        return render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &sign_in_page(
                &console,
                &base,
                None,
                Some("Enter an admin token.".to_owned()),
            ),
        );
    }
    let (actor, refused) = match console.manager.verify(&token).await {
        Ok(Verification::Valid(record)) if record.has_scope(scope) && *record.owner == **owner => {
            console.throttle.success(client);
            let Some(id) = console.sessions.start_admin(
                token,
                console.default_owner.clone(),
                record.owner.clone(),
            ) else {
                return super::internal_error_page(&console);
            };
            let mut response = see_other(&home_of(&base));
            response
                .headers_mut()
                .append(header::SET_COOKIE, cookie(&console, &base, Some(&id)));
            return response;
        }
        Ok(Verification::Valid(record)) => (
            Actor::token(record.id, record.name.clone()),
            format!("This token does not have the admin scope “{scope}”."),
        ),
        Ok(_) => (
            Actor::anonymous(),
            "This token is not valid: it may be mistyped, deleted, disabled or expired.".to_owned(),
        ),
        Err(err) => return super::failure_page(&console, &base, &err),
    };
    console.throttle.failure(client);
    // The audit log keeps refused sign-ins too, never the token presented.
    let ctx = Context::new(actor).client(Client {
        address: address.map(|addr| addr.to_string()),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(256).collect()),
    });
    if let Err(err) = console
        .manager
        .acting(&ctx)
        .record_refusal("console sign-in refused", None)
        .await
    {
        tracing::warn!(error = %err.report(), "could not record a refused sign-in");
    }
    render(
        StatusCode::UNAUTHORIZED,
        &sign_in_page(&console, &base, None, Some(refused)),
    )
}

/// `POST /signout`: ends the session and wipes the token it held.
pub(crate) async fn sign_out(
    State(console): State<Arc<Console>>,
    Extension(ctx): Extension<Ctx>,
    CheckedForm(_): CheckedForm,
) -> Response {
    if !ctx.admin {
        return see_other(&home_of(&ctx.base));
    }
    console.sessions.end(&ctx.key);
    let mut response = see_other(&format!("{}/signin?ended=signed_out", ctx.base));
    response
        .headers_mut()
        .append(header::SET_COOKIE, cookie(&console, &ctx.base, None));
    response
}
