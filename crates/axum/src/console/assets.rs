//! The stylesheet and the script, embedded in the binary.
//!
//! Pages link them with a hash of their content in the query string, so that browsers may
//! keep them for good and still fetch a new version after an upgrade.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

const CSS: &str = include_str!("../../assets/console.css");
const JS: &str = include_str!("../../assets/console.js");

/// FNV-1a: a short, stable fingerprint, not a security measure.
fn fingerprint(bytes: &[u8]) -> String {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{:012x}", hash >> 16)
}

static VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut all = CSS.as_bytes().to_vec();
    all.extend_from_slice(JS.as_bytes());
    fingerprint(&all)
});

/// The assets' version, for their URLs.
pub(crate) fn version() -> &'static str {
    &VERSION
}

/// `GET /assets/{file}`.
pub(crate) async fn serve(Path(file): Path<String>) -> Response {
    let (body, content_type) = match file.as_str() {
        "console.css" => (CSS, "text/css; charset=utf-8"),
        "console.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return (StatusCode::NOT_FOUND, "no such asset").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        body,
    )
        .into_response()
}
