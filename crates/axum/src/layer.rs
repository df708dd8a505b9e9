//! The tower layer.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use axum::response::{IntoResponse, Response};
use http::Request;
use tower_layer::Layer;
use tower_service::Service;

use crate::guard::{Tollgate, VerifiedToken};

/// Guards a service: see [`Tollgate::layer`] and [`Tollgate::require`].
#[derive(Debug, Clone)]
pub struct RequireTokenLayer {
    tollgate: Tollgate,
    scopes: Arc<[String]>,
}

impl RequireTokenLayer {
    pub(crate) fn new(tollgate: Tollgate, scopes: Vec<String>) -> Self {
        Self {
            tollgate,
            scopes: scopes.into(),
        }
    }
}

impl<S> Layer<S> for RequireTokenLayer {
    type Service = RequireToken<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireToken {
            inner,
            tollgate: self.tollgate.clone(),
            scopes: self.scopes.clone(),
        }
    }
}

/// A service that lets through only requests with a valid token (and the required scopes),
/// inserting the [`VerifiedToken`] into their extensions. Works for any tower service over
/// `http` requests and responses.
#[derive(Debug, Clone)]
pub struct RequireToken<S> {
    inner: S,
    tollgate: Tollgate,
    scopes: Arc<[String]>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<S, B, ResBody> Service<Request<B>> for RequireToken<S>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    ResBody: HttpBody<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // The clone is not ready; call the instance that was polled ready.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let tollgate = self.tollgate.clone();
        let scopes = self.scopes.clone();
        Box::pin(async move {
            let token = match request.extensions().get::<VerifiedToken>() {
                Some(token) => token.clone(),
                None => match tollgate.authenticate(request.headers()).await {
                    Ok(token) => token,
                    Err(rejection) => return Ok(rejection.into_response()),
                },
            };
            if let Err(rejection) = tollgate.check_scopes(&token, &scopes) {
                return Ok(rejection.into_response());
            }
            request.extensions_mut().insert(token);
            inner
                .call(request)
                .await
                .map(|response| response.map(Body::new))
        })
    }
}
