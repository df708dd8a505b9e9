//! The credential reader of tollgate-axum (private), driven through the extractor and the
//! layer with arbitrary `Authorization` and `X-API-Key` header bytes: never a panic, the
//! status is one of 400/401/403, and a request passes exactly when it presents one valid,
//! issued token in one readable header.
//!
//! Header values are raw bytes, in which `$T` stands for a valid token with the scope
//! `deploy`, `$U` for a valid token without it and `$D` for a disabled token, or shaped as
//! scheme, separators, token and suffix.

#![no_main]

mod common;

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use arbitrary::Arbitrary;
use axum::body::Body;
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::Response;
use http::{HeaderName, HeaderValue, Request, StatusCode};
use libfuzzer_sys::fuzz_target;
use tollgate::{MemoryStore, NewToken, TokenManager, TokenUpdate};
use tollgate_axum::{Tollgate, VerifiedToken};
use tower::{Layer, ServiceExt};

struct World {
    plain: Tollgate,
    with_api_key: Tollgate,
    scoped: String,
    unscoped: String,
    disabled: String,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        common::block_on(async {
            let manager = Arc::new(TokenManager::new(MemoryStore::new()));
            let apply = |name: &'static str, scopes: &'static [&'static str]| {
                let manager = manager.clone();
                async move {
                    manager
                        .apply("acme", NewToken::new(name).scopes(scopes.iter().copied()))
                        .await
                        .unwrap()
                }
            };
            let scoped = apply("scoped", &["deploy"]).await;
            let unscoped = apply("unscoped", &[]).await;
            let disabled = apply("disabled", &["deploy"]).await;
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
        })
    })
}

#[derive(Arbitrary, Debug)]
enum Guard {
    Extractor,
    OptionalExtractor,
    Layer,
    RequireDeploy,
}

/// A header value: raw bytes (with the placeholders), or shaped like a credential so that
/// the fuzzer reaches valid and nearly valid ones as often as garbage.
#[derive(Arbitrary, Debug)]
enum Value<'a> {
    Raw(&'a [u8]),
    Shaped {
        leading_spaces: bool,
        scheme: Scheme<'a>,
        /// Separators between the scheme and the token (spaces, or a tab when 0).
        spaces: u8,
        token: Secret<'a>,
        suffix: &'a [u8],
    },
}

#[derive(Arbitrary, Debug)]
enum Scheme<'a> {
    None,
    Bearer,
    LowerBearer,
    UpperBearer,
    Basic,
    Other(&'a str),
}

#[derive(Arbitrary, Debug)]
enum Secret<'a> {
    Scoped,
    Unscoped,
    Disabled,
    /// A valid token with one byte changed.
    Mutated {
        position: u8,
        byte: u8,
    },
    Other(&'a str),
}

impl Value<'_> {
    fn bytes(&self, world: &World) -> Vec<u8> {
        match self {
            Self::Raw(raw) => substitute(raw, world),
            Self::Shaped {
                leading_spaces,
                scheme,
                spaces,
                token,
                suffix,
            } => {
                let mut out = Vec::new();
                if *leading_spaces {
                    out.extend_from_slice(b"  ");
                }
                let scheme: &[u8] = match scheme {
                    Scheme::None => b"",
                    Scheme::Bearer => b"Bearer",
                    Scheme::LowerBearer => b"bearer",
                    Scheme::UpperBearer => b"BEARER",
                    Scheme::Basic => b"Basic",
                    Scheme::Other(other) => other.as_bytes(),
                };
                out.extend_from_slice(scheme);
                if !scheme.is_empty() {
                    match spaces % 4 {
                        0 => out.push(b'\t'),
                        n => out.extend(std::iter::repeat_n(b' ', usize::from(n))),
                    }
                }
                match token {
                    Secret::Scoped => out.extend_from_slice(world.scoped.as_bytes()),
                    Secret::Unscoped => out.extend_from_slice(world.unscoped.as_bytes()),
                    Secret::Disabled => out.extend_from_slice(world.disabled.as_bytes()),
                    Secret::Mutated { position, byte } => {
                        let mut token = world.scoped.clone().into_bytes();
                        let index = usize::from(*position) % token.len();
                        token[index] = *byte;
                        out.extend_from_slice(&token);
                    }
                    Secret::Other(other) => out.extend_from_slice(other.as_bytes()),
                }
                out.extend_from_slice(suffix);
                out
            }
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    authorization: Vec<Value<'a>>,
    api_key: Vec<Value<'a>>,
    api_key_header: bool,
    guard: Guard,
}

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

/// Which token the request presents, read straight from RFC 6750 and the documented rules:
/// exactly one credential header; `Bearer` (any case), one or more spaces, the token; or the
/// API-key header's whole value, spaces trimmed. Header values over 528 bytes are refused
/// unread (a documented limit).
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

/// Whether the request has one `Authorization` header, with a scheme other than Bearer.
fn other_scheme(authorization: &[&[u8]]) -> bool {
    match authorization {
        [bytes] => {
            let scheme = bytes.split(|&b| b == b' ').next().unwrap_or_default();
            !scheme.eq_ignore_ascii_case(b"bearer")
        }
        _ => false,
    }
}

async fn ok(_: Request<Body>) -> Result<Response, Infallible> {
    Ok(Response::new(Body::empty()))
}

fuzz_target!(|input: Input<'_>| {
    let world = world();
    let tollgate = if input.api_key_header {
        &world.with_api_key
    } else {
        &world.plain
    };
    let values = |raw: &[Value<'_>]| -> Vec<HeaderValue> {
        raw.iter()
            .take(3)
            .filter_map(|v| HeaderValue::from_bytes(&v.bytes(world)).ok())
            .collect()
    };
    let authorization = values(&input.authorization);
    let api_key = values(&input.api_key);
    let mut request = Request::get("/");
    for value in &authorization {
        request = request.header(http::header::AUTHORIZATION, value.clone());
    }
    for value in &api_key {
        request = request.header("x-api-key", value.clone());
    }
    let request = request.body(Body::empty()).unwrap();

    // What the request should get.
    let bytes = |values: &[HeaderValue]| -> Vec<Vec<u8>> {
        values.iter().map(|v| v.as_bytes().to_vec()).collect()
    };
    let (authorization, api_key) = (bytes(&authorization), bytes(&api_key));
    let authorization: Vec<&[u8]> = authorization.iter().map(Vec::as_slice).collect();
    let mut api_key: Vec<&[u8]> = api_key.iter().map(Vec::as_slice).collect();
    if !input.api_key_header {
        api_key.clear();
    }
    let no_credentials = authorization.is_empty() && api_key.is_empty();
    let token = presented(&authorization, &api_key);
    let valid = token == Some(world.scoped.as_bytes()) || token == Some(world.unscoped.as_bytes());
    let scoped = token == Some(world.scoped.as_bytes());

    let status = common::block_on(async {
        match input.guard {
            Guard::Extractor | Guard::OptionalExtractor => {
                let (mut parts, _) = request.into_parts();
                parts.extensions.insert(tollgate.clone());
                if matches!(input.guard, Guard::OptionalExtractor) {
                    let outcome =
                        <VerifiedToken as OptionalFromRequestParts<()>>::from_request_parts(
                            &mut parts,
                            &(),
                        )
                        .await;
                    match outcome {
                        Ok(Some(_)) => StatusCode::OK,
                        Ok(None) => {
                            // Without credentials, or with another scheme than Bearer (RFC 6750
                            // §3.1: answered as no credentials).
                            assert!(
                                no_credentials || other_scheme(&authorization),
                                "credentials were sent and ignored"
                            );
                            StatusCode::UNAUTHORIZED
                        }
                        Err(rejection) => {
                            assert!(!no_credentials, "no credentials, yet {rejection:?}");
                            rejection.status()
                        }
                    }
                } else {
                    match <VerifiedToken as FromRequestParts<()>>::from_request_parts(
                        &mut parts,
                        &(),
                    )
                    .await
                    {
                        Ok(_) => StatusCode::OK,
                        Err(rejection) => rejection.status(),
                    }
                }
            }
            Guard::Layer | Guard::RequireDeploy => {
                let layer = match input.guard {
                    Guard::Layer => tollgate.layer(),
                    _ => tollgate.require(["deploy"]),
                };
                let service = layer.layer(tower::service_fn(ok));
                service.oneshot(request).await.unwrap().status()
            }
        }
    });

    let needs_scope = matches!(input.guard, Guard::RequireDeploy);
    let expected_pass = valid && (scoped || !needs_scope);
    if expected_pass {
        assert_eq!(status, StatusCode::OK, "a valid token was refused");
        // Shows in the log that the run reached the passing side at all.
        static PASSED: AtomicBool = AtomicBool::new(false);
        if !PASSED.swap(true, Ordering::Relaxed) {
            eprintln!("credentials: first request with a valid token passed");
        }
    } else {
        assert_ne!(status, StatusCode::OK, "passed without a valid token");
        assert!(
            matches!(status.as_u16(), 400 | 401 | 403),
            "unexpected status {status}"
        );
        if status == StatusCode::FORBIDDEN {
            assert!(
                valid && needs_scope,
                "403 for a request without a valid token"
            );
        }
    }
});
