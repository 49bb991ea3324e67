//! The HTTP edge: the OData data API, the admin, maker and upgrade API, their
//! OpenAPI document, and the web UI at `/`. Only this crate knows HTTP. Handlers extract what a request
//! says, call one method of `uplift-service`, and render its answer or its error.

pub mod admin;
pub mod approvals;
pub mod apps;
pub mod auth;
pub mod docs;
pub mod error;
pub mod flows;
pub mod items;
pub mod odata;
pub mod plans;
pub mod player;
pub mod request_id;
pub mod state;
pub mod upgrade;
pub mod web;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::{Json, Router};
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;

pub use state::AppState;
pub use uplift_service::{Bootstrap, Retention, bootstrap};

/// The largest request body accepted. Images travel base64-encoded inside records, so
/// this is generous, but bounded.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Every route, with the OpenAPI document that describes them.
pub fn routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, doc) = OpenApiRouter::with_openapi(docs::ApiDoc::openapi())
        .merge(admin::routes())
        .merge(apps::routes())
        .merge(player::routes())
        .merge(flows::routes())
        .merge(approvals::routes())
        .merge(odata::routes())
        .merge(upgrade::routes())
        .merge(items::routes())
        .merge(plans::routes())
        .split_for_parts();
    (router, docs::finish(doc))
}

/// The OpenAPI document of this server.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().1
}

/// The whole API.
pub fn router(state: AppState) -> Router {
    let (router, doc) = routes();
    let doc = Arc::new(doc);
    let router = router
        .route(
            "/api/openapi.json",
            get(move || async move { Json(doc.as_ref().clone()) }),
        )
        .merge(web::routes())
        .fallback(not_found)
        .with_state(state);
    edge(router)
}

/// What every request passes through, around any router: the body limit, a panic
/// turned into a 500 with the request id (the server keeps serving), and the id.
pub fn edge(router: Router) -> Router {
    router
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .layer(axum::middleware::from_fn(request_id::assign))
}

/// A handler's panic, answered like any internal failure: plain words and the request
/// id to the client, what panicked to the log under that id.
fn panicked(payload: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let detail = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into());
    error::ApiError::from(uplift_service::ServiceError::Internal {
        what: "serving the request",
        detail,
    })
    .into_response()
}

/// A path nothing serves: the API's JSON error under `/api`, the web UI's page elsewhere.
async fn not_found(uri: axum::http::Uri) -> axum::response::Response {
    use axum::response::IntoResponse;
    let path = uri.path();
    match path == "/api" || path.starts_with("/api/") {
        true => error::ApiError::from(uplift_service::ServiceError::NotFound(
            uplift_service::Missing::Resource(path.to_string()),
        ))
        .into_response(),
        false => web::not_found(path),
    }
}

/// Serves the API on `listener` until the process is stopped.
pub async fn serve(listener: tokio::net::TcpListener, state: AppState) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}
