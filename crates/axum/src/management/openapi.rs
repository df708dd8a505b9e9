//! The OpenAPI 3.1 document, generated from the handlers and the types they use.

use utoipa::OpenApi as _;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{OpenApi, Server};

use super::handlers;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Tollgate token management",
        description = "Manage API tokens: list (with fuzzy search), apply, download, modify, regenerate and delete.\n\nEvery error is `{\"error\": {\"code\", \"message\"}}`.",
        license(name = "MIT OR Apache-2.0", identifier = "MIT OR Apache-2.0")
    ),
    paths(
        handlers::list_tokens,
        handlers::apply_token,
        handlers::get_token,
        handlers::modify_token,
        handlers::regenerate_token,
        handlers::delete_token,
        handlers::download_token
    ),
    tags((name = "tokens", description = "Token management."))
)]
struct ApiDoc;

/// The management API's OpenAPI 3.1 document, with paths relative to `base` (the path the
/// router is mounted at, such as `/api/v1`), and the admin scope `scope` required by every
/// operation (`None` for self-service, where the application authenticates).
pub fn openapi(base: &str, scope: Option<&str>) -> OpenApi {
    let mut doc = ApiDoc::openapi();
    let base = base.trim_end_matches('/');
    doc.servers = Some(vec![Server::new(if base.is_empty() { "/" } else { base })]);
    if let Some(scope) = scope {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(format!(
                        "A Tollgate token with the `{scope}` scope: `Authorization: Bearer tg_…`."
                    )))
                    .build(),
            ),
        );
        doc.security = Some(vec![SecurityRequirement::new("bearer", [scope])]);
    }
    doc
}
