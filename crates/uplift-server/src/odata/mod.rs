//! The OData v4 data API of an environment: service document, `$metadata`, and
//! collection/entity requests, over production and, during an upgrade, over the test
//! database. Handlers read the URL and headers, call one data-session method of the
//! services, and render OData JSON.

pub mod metadata;
pub mod render;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value as Json, json};
use uplift_service::Database;
use uplift_service::data::shape::parse_if_match;
use uplift_service::data::{DataSession, Resource, parse_resource};
use uplift_service::error::ServiceError;
use utoipa_axum::router::OpenApiRouter;

use crate::auth::Caller;
use crate::error::{ApiError, Body};
use crate::state::AppState;

/// The data services and the database each addresses: (path under the environment,
/// database). The routes and their OpenAPI description are both made from this.
pub const DATA_SERVICES: [(&str, Database); 2] = [
    ("data", Database::Production),
    ("upgrade/test/data", Database::Test),
];

/// The route patterns of one data service.
pub fn data_paths(service: &str) -> [String; 4] {
    let root = format!("/api/environments/{{env}}/{service}");
    [
        root.clone(),
        format!("{root}/"),
        format!("{root}/{{resource}}"),
        format!("{root}/{{resource}}/{{sub}}"),
    ]
}

pub fn routes() -> OpenApiRouter<AppState> {
    let mut r = OpenApiRouter::new();
    for (service, database) in DATA_SERVICES {
        let [root, slash, resource, sub] = data_paths(service);
        let at = Where { service, database };
        let one = OpenApiRouter::new()
            .route(&root, get(service_document))
            .route(&slash, get(service_document))
            .route(
                &resource,
                get(get_resource)
                    .post(post_resource)
                    .patch(patch_resource)
                    .delete(delete_resource),
            )
            .route(&sub, get(get_sub))
            .layer(axum::Extension(at));
        // Every answer from the test database says so, for clients and people alike.
        let one = match database {
            Database::Test => one.layer(axum::middleware::map_response(mark_test)),
            Database::Production => one,
        };
        r = r.merge(one);
    }
    r.layer(axum::middleware::map_response(odata_version))
}

async fn odata_version(resp: Response) -> Response {
    render::odata_version(resp)
}

/// The header that marks an answer as the test database's.
pub const DATABASE_HEADER: &str = "uplift-database";

async fn mark_test(mut resp: Response) -> Response {
    resp.headers_mut().insert(
        DATABASE_HEADER,
        axum::http::HeaderValue::from_static("test"),
    );
    resp
}

/// Which data service a request came in on.
#[derive(Debug, Clone, Copy)]
struct Where {
    service: &'static str,
    database: Database,
}

/// A data session for the request, and the root its links start with.
async fn open(
    s: &AppState,
    caller: &Caller,
    at: Where,
    env: &str,
    headers: &HeaderMap,
) -> Result<(DataSession, String), ApiError> {
    let session = s.services.open_data(&caller.0, env, at.database).await?;
    let base = render::data_base(s.public_url.as_deref(), headers, env, at.service);
    Ok((session, base))
}

async fn service_document(
    axum::Extension(at): axum::Extension<Where>,
    State(s): State<AppState>,
    caller: Caller,
    Path(env): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (data, base) = open(&s, &caller, at, &env, &headers).await?;
    data.require_environment()?;
    let sets: Vec<Json> = data
        .catalog()
        .entities
        .iter()
        .map(|e| json!({"name": e.set_name, "kind": "EntitySet", "url": e.set_name}))
        .collect();
    Ok(render::json_response(
        StatusCode::OK,
        &json!({"@odata.context": format!("{base}/$metadata"), "value": sets}),
    ))
}

async fn get_resource(
    axum::Extension(at): axum::Extension<Where>,
    State(s): State<AppState>,
    caller: Caller,
    Path((env, resource)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (data, base) = open(&s, &caller, at, &env, &headers).await?;
    match parse_resource(&resource)? {
        Resource::Metadata => {
            data.require_environment()?;
            let mut r = metadata::csdl(data.catalog()).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/xml"),
            );
            Ok(r)
        }
        Resource::Set(set) => {
            let opts = data.options(&set, raw.as_deref())?;
            let page = data
                .list(&set, &opts, render::max_page_size(&headers))
                .await?;
            Ok(render::page(&base, page))
        }
        Resource::Entity(set, id) => {
            let opts = data.options(&set, raw.as_deref())?;
            let rec = data.get(&set, &id, &opts).await?;
            Ok(render::record(&base, rec, StatusCode::OK, false))
        }
    }
}

async fn get_sub(
    axum::Extension(at): axum::Extension<Where>,
    State(s): State<AppState>,
    caller: Caller,
    Path((env, resource, sub)): Path<(String, String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (data, base) = open(&s, &caller, at, &env, &headers).await?;
    match (parse_resource(&resource)?, sub.as_str()) {
        (Resource::Set(set), "$count") => {
            let opts = data.options(&set, raw.as_deref())?;
            let n = data.count(&set, &opts).await?;
            let mut r = n.to_string().into_response();
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            Ok(r)
        }
        // `contacts(<id>)/Account_ref` (or `/Account`): the record a lookup points at.
        (Resource::Entity(set, id), nav) => {
            match data.navigate(&set, &id, nav, raw.as_deref()).await? {
                Some(rec) => Ok(render::record(&base, rec, StatusCode::OK, false)),
                None => Ok(StatusCode::NO_CONTENT.into_response()),
            }
        }
        _ => Err(ApiError::not_found(format!(
            "no resource '{resource}/{sub}'"
        ))),
    }
}

fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    match headers.get(header::IF_MATCH) {
        None => Ok(None),
        Some(v) => parse_if_match(
            v.to_str()
                .map_err(|_| ApiError::bad_request("If-Match is not text"))?,
        )
        .map_err(ApiError::bad_request),
    }
}

fn not_allowed(action: &'static str, target: &'static str) -> ApiError {
    ServiceError::MethodNotAllowed { action, target }.into()
}

async fn post_resource(
    axum::Extension(at): axum::Extension<Where>,
    State(s): State<AppState>,
    caller: Caller,
    Path((env, resource)): Path<(String, String)>,
    headers: HeaderMap,
    Body(input): Body<Map<String, Json>>,
) -> Result<Response, ApiError> {
    let Resource::Set(set) = parse_resource(&resource)? else {
        return Err(not_allowed("POST", "an entity: POST goes to an entity set"));
    };
    let rec = s
        .services
        .insert_record(&caller.0, &env, at.database, &set, input)
        .await?;
    let base = render::data_base(s.public_url.as_deref(), &headers, &env, at.service);
    let minimal = render::prefers_minimal(&headers);
    Ok(render::record(&base, rec, StatusCode::CREATED, minimal))
}

async fn patch_resource(
    axum::Extension(at): axum::Extension<Where>,
    State(s): State<AppState>,
    caller: Caller,
    Path((env, resource)): Path<(String, String)>,
    headers: HeaderMap,
    Body(input): Body<Map<String, Json>>,
) -> Result<Response, ApiError> {
    let Resource::Entity(set, id) = parse_resource(&resource)? else {
        return Err(not_allowed(
            "PATCH",
            "an entity set: PATCH goes to one entity, like accounts(<id>)",
        ));
    };
    let expected = if_match(&headers)?;
    let rec = s
        .services
        .update_record(&caller.0, &env, at.database, (&set, &id), input, expected)
        .await?;
    let base = render::data_base(s.public_url.as_deref(), &headers, &env, at.service);
    let minimal = render::prefers_minimal(&headers);
    Ok(render::record(&base, rec, StatusCode::OK, minimal))
}

async fn delete_resource(
    axum::Extension(at): axum::Extension<Where>,
    State(s): State<AppState>,
    caller: Caller,
    Path((env, resource)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Resource::Entity(set, id) = parse_resource(&resource)? else {
        return Err(not_allowed(
            "DELETE",
            "an entity set: DELETE goes to one entity, like accounts(<id>)",
        ));
    };
    let expected = if_match(&headers)?;
    s.services
        .delete_record(&caller.0, &env, at.database, (&set, &id), expected)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
