//! API errors as OData error JSON: `{"error":{"code","message","request_id"}}`. Every
//! failure path ends here, and each [`ServiceError`] variant maps to one status here
//! and nowhere else. A 5xx never carries an engine's message, SQL or a path: the
//! client gets plain words and the request id, the log gets the details under it.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value as Json;
use uplift_api::{ErrorBody, ErrorDetail};
use uplift_service::ServiceError;

use crate::request_id;

/// An error answered to the client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NotFound", message)
    }
}

/// The status and code of each variant.
fn status_of(e: &ServiceError) -> (StatusCode, &'static str) {
    match e {
        ServiceError::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "Unauthorized"),
        ServiceError::Disabled(_) | ServiceError::Forbidden(_) => {
            (StatusCode::FORBIDDEN, "Forbidden")
        }
        ServiceError::NotFound(_) => (StatusCode::NOT_FOUND, "NotFound"),
        ServiceError::Invalid(_) | ServiceError::Field { .. } => {
            (StatusCode::BAD_REQUEST, "BadRequest")
        }
        ServiceError::Conflict(_) => (StatusCode::CONFLICT, "Conflict"),
        ServiceError::PreconditionFailed(_) => {
            (StatusCode::PRECONDITION_FAILED, "PreconditionFailed")
        }
        ServiceError::Locked { .. } | ServiceError::LockedForStep2 { .. } => {
            (StatusCode::LOCKED, "Locked")
        }
        ServiceError::MethodNotAllowed { .. } => {
            (StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed")
        }
        ServiceError::Unavailable { .. } => (StatusCode::SERVICE_UNAVAILABLE, "Busy"),
        ServiceError::Switched => (StatusCode::SERVICE_UNAVAILABLE, "Switched"),
        ServiceError::Internal { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "InternalError"),
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let (status, code) = status_of(&e);
        match &e {
            ServiceError::Unavailable { detail } => {
                tracing::warn!(request_id = %request_id::current(), %detail, "database unavailable");
            }
            ServiceError::Internal { what, detail } => {
                tracing::error!(request_id = %request_id::current(), what, %detail, "internal error");
            }
            _ => {}
        }
        ApiError::new(status, code, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let id = request_id::current();
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.into(),
                message: self.message,
                request_id: (!id.is_empty()).then_some(id),
            },
        };
        let mut resp = (self.status, axum::Json(body)).into_response();
        let h = resp.headers_mut();
        h.insert("OData-Version", HeaderValue::from_static("4.0"));
        if self.status == StatusCode::UNAUTHORIZED {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}

/// A JSON request body, every failure (too large, not JSON, wrong shape) a 4xx that
/// says what is wrong.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::new(e.status(), "BadRequest", e.body_text()))?;
        let json: Json = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request(format!("request body: {e}")))?;
        if let Some(at) = nul_at(&json, String::new()) {
            return Err(ApiError::bad_request(format!(
                "request body: {at}: {NUL_REFUSED}"
            )));
        }
        let value = serde_path_to_error::deserialize(json).map_err(|e| {
            let at = e.path().to_string();
            let e = e.into_inner();
            match at.as_str() {
                "." | "" => ApiError::bad_request(format!("request body: {e}")),
                _ => ApiError::bad_request(format!("request body: {at}: {e}")),
            }
        })?;
        Ok(Body(value))
    }
}

const NUL_REFUSED: &str = "text must not contain the NUL character (U+0000)";

/// Where the first NUL character is in a JSON document (a string or a key), as a
/// path like `steps[0].name`: PostgreSQL cannot store one and SQLite would keep it, so
/// no request may carry one.
fn nul_at(v: &Json, at: String) -> Option<String> {
    let here = |at: String| if at.is_empty() { ".".to_string() } else { at };
    match v {
        Json::String(s) if s.contains('\0') => Some(here(at)),
        Json::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| nul_at(v, format!("{at}[{i}]"))),
        Json::Object(m) => m.iter().find_map(|(k, v)| {
            let path = if at.is_empty() {
                k.clone()
            } else {
                format!("{at}.{k}")
            };
            match k.contains('\0') {
                true => Some(path),
                false => nul_at(v, path),
            }
        }),
        _ => None,
    }
}

/// A request body of UTF-8 text (an uploaded plan), with the same refusals as [`Body`]:
/// too large, not UTF-8, or holding a NUL character is a 4xx.
pub struct TextBody(pub String);

impl<S: Send + Sync> axum::extract::FromRequest<S> for TextBody {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::new(e.status(), "BadRequest", e.body_text()))?;
        let text = String::from_utf8(bytes.to_vec())
            .map_err(|e| ApiError::bad_request(format!("request body: not UTF-8 text ({e})")))?;
        if text.contains('\0') {
            return Err(ApiError::bad_request(format!(
                "request body: {NUL_REFUSED}"
            )));
        }
        Ok(TextBody(text))
    }
}

/// Query parameters, a malformed one a 400 that names it.
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequestParts<S>
    for Params<T>
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        if let Some((k, _)) = url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, v)| k.contains('\0') || v.contains('\0'))
        {
            return Err(ApiError::bad_request(format!(
                "query string: {k}: {NUL_REFUSED}"
            )));
        }
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| Params(q.0))
            .map_err(|e| ApiError::bad_request(format!("query string: {}", e.body_text())))
    }
}
