//! The OpenAPI document: served, OpenAPI 3.1, and in step with the routes.

use axum::http::{Method, StatusCode};
use serde_json::Value;

/// Every (method, path) the document describes.
fn operations(doc: &Value) -> Vec<(Method, String)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for m in ["get", "put", "post", "delete", "patch"] {
            if item.get(m).is_some() {
                out.push((m.to_uppercase().parse().expect("method"), path.clone()));
            }
        }
    }
    out
}

/// A path with each `{param}` filled in.
fn concrete(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}').expect("closing brace") + open;
        out.push_str(match &rest[open + 1..close] {
            "env" => "contoso",
            "resource" => "accounts",
            "sub" => "$count",
            "version" => "1",
            _ => "x",
        });
        rest = &rest[close + 1..];
    }
    out + rest
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_describes_the_error_body() {
    let p = &crate::support::sqlite().await;
    let a = p
        .call(Method::GET, "/api/openapi.json", None, None, &[])
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["openapi"], "3.1.0", "{}", a.body["openapi"]);
    assert!(a.body["components"]["schemas"]["ErrorBody"].is_object());
    for (method, path) in operations(&a.body) {
        let op = &a.body["paths"][&path][method.as_str().to_lowercase()];
        let responses = op["responses"].as_object().expect("responses");
        for status in ["500", "503"] {
            assert!(
                responses.contains_key(status),
                "{method} {path}: no {status}"
            );
        }
        let public = uplift_server::docs::PUBLIC_PATHS.contains(&path.as_str());
        assert_eq!(responses.contains_key("401"), !public, "{method} {path}");
    }
}

/// Every documented operation is routed: without a token it answers 401 (public
/// ones answer), never the fallback's 404 or a 405.
#[tokio::test]
async fn every_documented_operation_is_a_route() {
    let p = &crate::support::sqlite().await;
    let doc = uplift_server::openapi();
    let doc = serde_json::to_value(&doc).expect("json");
    let ops = operations(&doc);
    assert!(ops.len() > 50, "{} operations", ops.len());
    for (method, path) in ops {
        let a = p
            .call(method.clone(), &concrete(&path), None, None, &[])
            .await;
        let public = uplift_server::docs::PUBLIC_PATHS.contains(&path.as_str());
        let expected = if public {
            StatusCode::OK
        } else {
            StatusCode::UNAUTHORIZED
        };
        assert_eq!(a.status, expected, "{method} {path}: {}", a.body);
    }
}

/// Every route is documented: the handlers register through utoipa-axum's `routes!`,
/// which takes each route's description with it; the only routes registered
/// without are the OData data services (documented from the same table) and the
/// document itself.
#[test]
fn every_route_is_documented() {
    let doc = serde_json::to_value(uplift_server::openapi()).expect("json");
    for (service, _) in uplift_server::odata::DATA_SERVICES {
        for path in uplift_server::odata::data_paths(service) {
            assert!(
                doc["paths"].get(&path).is_some(),
                "{path} is not documented"
            );
        }
    }
    assert!(doc["paths"].get("/api/openapi.json").is_some());
    let sources = [
        ("admin.rs", include_str!("../../src/admin.rs")),
        ("apps.rs", include_str!("../../src/apps.rs")),
        ("player.rs", include_str!("../../src/player.rs")),
        ("flows.rs", include_str!("../../src/flows.rs")),
        ("approvals.rs", include_str!("../../src/approvals.rs")),
        ("upgrade.rs", include_str!("../../src/upgrade.rs")),
    ];
    for (file, text) in sources {
        assert!(
            !text.contains(".route("),
            "{file} registers a route without its description"
        );
    }
    let lib = include_str!("../../src/lib.rs");
    assert_eq!(
        lib.matches(".route(").count(),
        1,
        "lib.rs registers only /api/openapi.json"
    );
    let odata = include_str!("../../src/odata/mod.rs");
    assert_eq!(
        odata.matches(".route(").count(),
        4,
        "odata registers only data_paths()"
    );
}
