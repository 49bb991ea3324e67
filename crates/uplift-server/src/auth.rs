//! The caller extractor: the bearer token of a request, authenticated by the services.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use uplift_service::Actor;

use crate::error::ApiError;
use crate::state::AppState;

pub use uplift_service::auth::{BOOTSTRAP_ADMIN, TOKEN_PREFIX, hash_token, new_token};

/// The authenticated, active caller of a request.
#[derive(Debug, Clone)]
pub struct Caller(pub Actor);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = match parts.headers.get(header::AUTHORIZATION) {
            None => None,
            // A header that is not text cannot be a bearer token.
            Some(h) => Some(h.to_str().unwrap_or("")),
        };
        Ok(Caller(state.services.authenticate(header).await?))
    }
}
