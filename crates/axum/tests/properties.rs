//! Property tests of the credential reader, through the extractor and the layer: arbitrary
//! `Authorization` and `X-API-Key` bytes never panic, are answered 400, 401 or 403, and pass
//! exactly when they present one valid, issued token in one readable header. The fuzz target
//! `fuzz/fuzz_targets/credentials.rs` checks the same for minutes on nightly.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::Response;
use http::{HeaderName, HeaderValue, Request, StatusCode, header};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tollgate::{MemoryStore, NewToken, TokenManager, TokenUpdate};
use tollgate_axum::{Tollgate, VerifiedToken};
use tower::{Layer, ServiceExt};

struct World {
    plain: Tollgate,
    with_api_key: Tollgate,
    /// Valid, with the scope `deploy`: `$T` in generated header bytes.
    scoped: String,
    /// Valid, without scopes: `$U`.
    unscoped: String,
    /// Disabled: `$D`.
    disabled: String,
}

async fn world() -> World {
    let manager = Arc::new(TokenManager::new(MemoryStore::new()));
    let scoped = manager
        .apply("acme", NewToken::new("scoped").scopes(["deploy"]))
        .await
        .unwrap();
    let unscoped = manager
        .apply("acme", NewToken::new("unscoped"))
        .await
        .unwrap();
    let disabled = manager
        .apply("acme", NewToken::new("disabled").scopes(["deploy"]))
        .await
        .unwrap();
    manager
        .modify(
            "acme",
            disabled.record.id,
            TokenUpdate::default().enabled(false),
        )
        .await
        .unwrap();
    World {
        plain: Tollgate::new(manager.clone()),
        with_api_key: Tollgate::new(manager)
            .with_api_key_header(HeaderName::from_static("x-api-key")),
        scoped: scoped.token.expose_secret().to_owned(),
        unscoped: unscoped.token.expose_secret().to_owned(),
        disabled: disabled.token.expose_secret().to_owned(),
    }
}

/// Replaces the placeholders `$T`, `$U` and `$D` with the world's tokens.
fn substitute(raw: &[u8], world: &World) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + 64);
    let mut i = 0;
    while i < raw.len() {
        let secret = match raw[i..] {
            [b'$', b'T', ..] => Some(&world.scoped),
            [b'$', b'U', ..] => Some(&world.unscoped),
            [b'$', b'D', ..] => Some(&world.disabled),
            _ => None,
        };
        match secret {
            Some(secret) => {
                out.extend_from_slice(secret.as_bytes());
                i += 2;
            }
            None => {
                out.push(raw[i]);
                i += 1;
            }
        }
    }
    out
}

/// The token a request presents, read from RFC 6750 and the guard's documentation rather
/// than from its code: exactly one credential header of at most 528 bytes; `Bearer` (any
/// case), one or more spaces and the token; or the API-key header's value, spaces trimmed.
fn presented<'v>(authorization: &[&'v [u8]], api_key: &[&'v [u8]]) -> Option<&'v [u8]> {
    if authorization
        .iter()
        .chain(api_key)
        .any(|v| v.len() > 512 + 16)
    {
        return None;
    }
    match (authorization, api_key) {
        ([value], []) => {
            let (scheme, rest) = value.split_at_checked(6)?;
            if !scheme.eq_ignore_ascii_case(b"bearer") || rest.first() != Some(&b' ') {
                return None;
            }
            let start = rest.iter().position(|&b| b != b' ')?;
            Some(&rest[start..])
        }
        ([], [value]) => {
            let start = value.iter().position(|&b| b != b' ')?;
            let end = value.iter().rposition(|&b| b != b' ')?;
            Some(&value[start..=end])
        }
        _ => None,
    }
}

#[derive(Debug, Clone, Copy)]
enum Guard {
    Extractor,
    OptionalExtractor,
    Layer,
    RequireDeploy,
}

/// Header bytes: anything, visible ASCII, and credentials close to valid ones.
fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..48),
        "[ -~]{0,40}".prop_map(String::into_bytes),
        "(?i)(bearer|basic|token)( {0,3}|\t)\\$[TUD]( |=|==|x)?".prop_map(String::into_bytes),
        " {0,2}\\$[TUD] {0,2}".prop_map(String::into_bytes),
        "Bearer \\$[TUD][A-Za-z0-9._~+/-]{0,2}".prop_map(String::into_bytes),
        "Bearer [A-Za-z0-9._~+/=-]{0,60}".prop_map(String::into_bytes),
        "Bearer {500,530}\\$T".prop_map(String::into_bytes),
        (
            "(Bearer )?\\$[TUD]",
            proptest::collection::vec(128u8..=255, 1..3)
        )
            .prop_map(|(text, high)| [text.into_bytes(), high].concat()),
    ]
}

fn input() -> impl Strategy<Value = (Vec<Vec<u8>>, Vec<Vec<u8>>, bool, Guard)> {
    (
        proptest::collection::vec(header_value(), 0..3),
        proptest::collection::vec(header_value(), 0..2),
        any::<bool>(),
        prop_oneof![
            Just(Guard::Extractor),
            Just(Guard::OptionalExtractor),
            Just(Guard::Layer),
            Just(Guard::RequireDeploy),
        ],
    )
}

/// Whether the request has one `Authorization` header, with a scheme other than Bearer.
fn other_scheme(authorization: &[HeaderValue]) -> bool {
    match authorization {
        [value] => {
            let bytes = value.as_bytes();
            let scheme = bytes.split(|&b| b == b' ').next().unwrap_or_default();
            !scheme.eq_ignore_ascii_case(b"bearer")
        }
        _ => false,
    }
}

async fn ok(_: Request<Body>) -> Result<Response, Infallible> {
    Ok(Response::new(Body::empty()))
}

/// Sends one request through `guard` and returns its status (`Option<VerifiedToken>`
/// answering `None` counts as 401).
async fn status(
    world: &World,
    authorization: &[HeaderValue],
    api_key: &[HeaderValue],
    api_key_header: bool,
    guard: Guard,
) -> StatusCode {
    let tollgate = if api_key_header {
        &world.with_api_key
    } else {
        &world.plain
    };
    let mut request = Request::get("/");
    for value in authorization {
        request = request.header(header::AUTHORIZATION, value.clone());
    }
    for value in api_key {
        request = request.header("x-api-key", value.clone());
    }
    let request = request.body(Body::empty()).unwrap();
    match guard {
        Guard::Extractor => {
            let (mut parts, _) = request.into_parts();
            parts.extensions.insert(tollgate.clone());
            match <VerifiedToken as FromRequestParts<()>>::from_request_parts(&mut parts, &()).await
            {
                Ok(_) => StatusCode::OK,
                Err(rejection) => rejection.status(),
            }
        }
        Guard::OptionalExtractor => {
            let (mut parts, _) = request.into_parts();
            parts.extensions.insert(tollgate.clone());
            let outcome = <VerifiedToken as OptionalFromRequestParts<()>>::from_request_parts(
                &mut parts,
                &(),
            )
            .await;
            let sent = !authorization.is_empty() || (api_key_header && !api_key.is_empty());
            match outcome {
                Ok(Some(_)) => StatusCode::OK,
                Ok(None) => {
                    // Without credentials, or with another scheme than Bearer (RFC 6750
                    // §3.1: answered as no credentials).
                    assert!(
                        !sent || other_scheme(authorization),
                        "credentials were sent and ignored"
                    );
                    StatusCode::UNAUTHORIZED
                }
                Err(rejection) => {
                    assert!(sent, "no credentials, yet {rejection:?}");
                    rejection.status()
                }
            }
        }
        Guard::Layer | Guard::RequireDeploy => {
            let layer = match guard {
                Guard::Layer => tollgate.layer(),
                _ => tollgate.require(["deploy"]),
            };
            let service = layer.layer(tower::service_fn(ok));
            service.oneshot(request).await.unwrap().status()
        }
    }
}

#[test]
fn credentials_pass_exactly_with_one_valid_token() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let world = runtime.block_on(world());
    let config = Config {
        cases: 1024,
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new(config)
        .run(
            &input(),
            |(authorization, api_key, api_key_header, guard)| {
                let values = |raw: &[Vec<u8>]| -> Vec<HeaderValue> {
                    raw.iter()
                        .filter_map(|v| HeaderValue::from_bytes(&substitute(v, &world)).ok())
                        .collect()
                };
                let (authorization, api_key) = (values(&authorization), values(&api_key));
                let got = runtime.block_on(status(
                    &world,
                    &authorization,
                    &api_key,
                    api_key_header,
                    guard,
                ));

                let auth: Vec<&[u8]> = authorization.iter().map(HeaderValue::as_bytes).collect();
                let keys: Vec<&[u8]> = if api_key_header {
                    api_key.iter().map(HeaderValue::as_bytes).collect()
                } else {
                    Vec::new()
                };
                let token = presented(&auth, &keys);
                let scoped = token == Some(world.scoped.as_bytes());
                let valid = scoped || token == Some(world.unscoped.as_bytes());
                let needs_scope = matches!(guard, Guard::RequireDeploy);
                if valid && (scoped || !needs_scope) {
                    prop_assert_eq!(got, StatusCode::OK, "a valid token was refused");
                } else {
                    prop_assert_ne!(got, StatusCode::OK, "passed without a valid token");
                    prop_assert!(matches!(got.as_u16(), 400 | 401 | 403), "status {}", got);
                    if got == StatusCode::FORBIDDEN {
                        prop_assert!(valid && needs_scope, "403 without a valid token");
                    }
                }
                Ok(())
            },
        )
        .unwrap();
}

/// The placeholders work, and each kind of answer is reached: the property above is not
/// vacuous.
#[test]
fn each_answer_is_reachable() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let world = runtime.block_on(world());
    let value = |raw: &str| HeaderValue::from_bytes(&substitute(raw.as_bytes(), &world)).unwrap();
    let cases = [
        (vec![value("Bearer $T")], vec![], Guard::RequireDeploy, 200),
        (vec![value("bEaReR   $U")], vec![], Guard::Layer, 200),
        (vec![], vec![value(" $U ")], Guard::Extractor, 200),
        (vec![value("Bearer $U")], vec![], Guard::RequireDeploy, 403),
        (vec![value("Bearer $D")], vec![], Guard::Layer, 401),
        (vec![], vec![], Guard::Extractor, 401),
        (vec![value("Basic $T")], vec![], Guard::Layer, 401),
        (vec![value("Bearer $T x")], vec![], Guard::Layer, 400),
        (
            vec![value("Bearer $T"), value("Bearer $T")],
            vec![],
            Guard::Layer,
            400,
        ),
        (
            vec![value("Bearer $T")],
            vec![value("$T")],
            Guard::Layer,
            400,
        ),
    ];
    for (authorization, api_key, guard, expected) in cases {
        let got = runtime.block_on(status(&world, &authorization, &api_key, true, guard));
        assert_eq!(
            got.as_u16(),
            expected,
            "{authorization:?} {api_key:?} {guard:?}"
        );
    }
}
