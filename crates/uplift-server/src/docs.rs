//! The OpenAPI 3.1 document at `GET /api/openapi.json`. The admin, maker and upgrade
//! API is described by its handlers (`#[utoipa::path]`, collected as the routes are
//! registered, so a route cannot be added without its description) and the
//! `uplift-api` types. The OData data API is described by its `$metadata`; here it
//! appears generically, one path per route pattern. What every operation can answer
//! besides its own statuses (401/403 without a valid active token, 413 for a body
//! too large, 500 and 503) is added to every operation in one place.

use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

/// Paths that need no token.
pub const PUBLIC_PATHS: &[&str] = &["/api/health", "/api/openapi.json"];

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Uplift",
        description = "The admin, maker and upgrade API of an Uplift server. Environments' data is served by the OData v4 data API; its `$metadata` describes it.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    components(schemas(uplift_api::ErrorBody)),
    modifiers(&BearerToken),
    security(("bearer" = [])),
    paths(
        openapi_json,
        production::service_document, production::service_document_slash, production::get_resource,
        production::post_resource, production::patch_resource, production::delete_resource,
        production::get_sub,
        test::service_document, test::service_document_slash, test::get_resource,
        test::post_resource, test::patch_resource, test::delete_resource, test::get_sub,
    )
)]
pub struct ApiDoc;

struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API token: `Authorization: Bearer upl_…`"))
                    .build(),
            ),
        );
    }
}

/// This document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "admin", security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object)))]
#[allow(dead_code)]
fn openapi_json() {}

/// Doc-only operations for the OData routes of one data service (these functions are
/// never called; the routes are `odata::routes`).
macro_rules! data_service {
    ($module:ident, $tag:tt, $root:tt, $slash:tt, $resource:tt, $sub:tt) => {
        #[allow(dead_code)]
        pub mod $module {
            use uplift_api::ErrorBody;

            /// The OData service document: the entity sets.
            #[utoipa::path(get, path = $root, tag = $tag, operation_id = concat!(stringify!($module), "_service_document"), params(("env" = String, Path)),
                responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
            pub fn service_document() {}

            /// The OData service document (with a trailing slash).
            #[utoipa::path(get, path = $slash, tag = $tag, operation_id = concat!(stringify!($module), "_service_document_slash"), params(("env" = String, Path)),
                responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
            pub fn service_document_slash() {}

            /// `$metadata` (CSDL XML), an entity set's page, or one entity `set(<id>)`,
            /// with `$filter`, `$select`, `$orderby`, `$top`, `$skip`, `$count`,
            /// `$expand` and `$skiptoken`.
            #[utoipa::path(get, path = $resource, tag = $tag, operation_id = concat!(stringify!($module), "_get_resource"),
                params(("env" = String, Path), ("resource" = String, Path, description = "`$metadata`, `accounts` or `accounts(<id>)`")),
                responses((status = 200, description = "OData JSON, or CSDL XML for `$metadata`", body = Object),
                    (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
            pub fn get_resource() {}

            /// Creates a record of an entity set.
            #[utoipa::path(post, path = $resource, tag = $tag, operation_id = concat!(stringify!($module), "_post_resource"),
                params(("env" = String, Path), ("resource" = String, Path)), request_body = Object,
                responses((status = 201, body = Object), (status = 204), (status = 400, body = ErrorBody),
                    (status = 404, body = ErrorBody), (status = 405, body = ErrorBody), (status = 409, body = ErrorBody)))]
            pub fn post_resource() {}

            /// Changes a record (`If-Match` for an ETag check).
            #[utoipa::path(patch, path = $resource, tag = $tag, operation_id = concat!(stringify!($module), "_patch_resource"),
                params(("env" = String, Path), ("resource" = String, Path)), request_body = Object,
                responses((status = 200, body = Object), (status = 204), (status = 400, body = ErrorBody),
                    (status = 404, body = ErrorBody), (status = 405, body = ErrorBody), (status = 409, body = ErrorBody),
                    (status = 412, body = ErrorBody)))]
            pub fn patch_resource() {}

            /// Deletes a record (`If-Match` for an ETag check).
            #[utoipa::path(delete, path = $resource, tag = $tag, operation_id = concat!(stringify!($module), "_delete_resource"),
                params(("env" = String, Path), ("resource" = String, Path)),
                responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
                    (status = 405, body = ErrorBody), (status = 409, body = ErrorBody), (status = 412, body = ErrorBody)))]
            pub fn delete_resource() {}

            /// `set/$count`, or the record a lookup points at (`set(<id>)/Account_ref`).
            #[utoipa::path(get, path = $sub, tag = $tag, operation_id = concat!(stringify!($module), "_get_sub"),
                params(("env" = String, Path), ("resource" = String, Path), ("sub" = String, Path)),
                responses((status = 200, description = "A count (text) or a record (OData JSON)", body = Object),
                    (status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
            pub fn get_sub() {}
        }
    };
}

data_service!(
    production,
    "data",
    "/api/environments/{env}/data",
    "/api/environments/{env}/data/",
    "/api/environments/{env}/data/{resource}",
    "/api/environments/{env}/data/{resource}/{sub}"
);
data_service!(
    test,
    "data",
    "/api/environments/{env}/upgrade/test/data",
    "/api/environments/{env}/upgrade/test/data/",
    "/api/environments/{env}/upgrade/test/data/{resource}",
    "/api/environments/{env}/upgrade/test/data/{resource}/{sub}"
);

fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build(),
    )
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// Adds the statuses every operation can answer to every operation.
pub fn finish(mut doc: Document) -> Document {
    for (path, item) in doc.paths.paths.iter_mut() {
        let public = PUBLIC_PATHS.contains(&path.as_str());
        for op in operations(item) {
            let r = &mut op.responses.responses;
            for (status, resp) in r.iter_mut() {
                if let RefOr::T(resp) = resp
                    && resp.description.is_empty()
                {
                    resp.description = status
                        .parse::<u16>()
                        .ok()
                        .and_then(|s| axum::http::StatusCode::from_u16(s).ok())
                        .and_then(|s| s.canonical_reason())
                        .unwrap_or("An answer")
                        .to_string();
                }
            }
            let mut add = |status: &str, description: &str| {
                r.entry(status.to_string())
                    .or_insert_with(|| error_response(description));
            };
            if !public {
                add("401", "No token, or a token that is not valid");
                add("403", "The user is disabled, or may not do this");
            }
            if op.request_body.is_some() {
                add("413", "The request body is larger than the server accepts");
            }
            add(
                "500",
                "A failure of the server: plain words and the request id",
            );
            add(
                "503",
                "The database is busy or unreachable; retry after `Retry-After` seconds",
            );
        }
    }
    doc
}
