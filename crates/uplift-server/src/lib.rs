//! The HTTP edge: the OData data API, the admin API and authentication. Only this
//! crate knows HTTP; it turns requests into calls on the store and typed errors into
//! OData error JSON.

pub mod admin;
pub mod approvals;
pub mod apps;
pub mod auth;
pub mod error;
pub mod flows;
pub mod odata;
pub mod player;
pub mod state;
pub mod upgrade;

use std::net::SocketAddr;

use axum::Router;
use axum::extract::DefaultBodyLimit;

pub use auth::{Bootstrap, bootstrap};
pub use state::AppState;

/// The largest request body accepted. Images travel base64-encoded inside records, so
/// this is generous, but bounded.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// The whole API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(admin::routes())
        .merge(apps::routes())
        .merge(player::routes())
        .merge(flows::routes())
        .merge(approvals::routes())
        .merge(odata::routes())
        .merge(upgrade::routes())
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn not_found(uri: axum::http::Uri) -> error::ApiError {
    error::ApiError::not_found(format!("no such resource: {}", uri.path()))
}

/// Serves the API on `listener` until the process is stopped.
pub async fn serve(listener: tokio::net::TcpListener, state: AppState) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}
