//! Every request gets an id (the client's `X-Request-Id` when it sends a sane one):
//! answered in the `X-Request-Id` header and in every error body, and attached to
//! every log line about the request, so an operator finds a failure's details from
//! what the client saw.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

pub const HEADER: &str = "x-request-id";
/// Longest client-sent id kept; a longer one is replaced.
const MAX_ID_CHARS: usize = 64;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served, or `""` outside one.
pub fn current() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}

fn sane(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_CHARS
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// The middleware: assigns the id, serves the request in its scope, answers it.
pub async fn assign(req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| sane(v))
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_string);
    let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path());
    let mut resp = REQUEST_ID
        .scope(id.clone(), next.run(req).instrument(span))
        .await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(HEADER, v);
    }
    resp
}
