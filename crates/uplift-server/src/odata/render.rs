//! Pages and records as OData JSON responses: the annotations (`@odata.context`,
//! `@odata.count`, `@odata.nextLink`) and headers (`ETag`, `OData-EntityId`,
//! `Location`, `Preference-Applied`) that depend on the URL the client used.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value as Json, json};
use uplift_service::data::{Page, Record};
use uplift_service::player::ViewPage;

const JSON_CONTENT_TYPE: &str = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

/// `http(s)://host/api/environments/{env}`: under the configured public URL, or as
/// the client reached it (its `Host`, which a client can set to anything).
pub fn base(public_url: Option<&str>, headers: &HeaderMap, env: &str) -> String {
    if let Some(origin) = public_url {
        return format!("{origin}/api/environments/{env}");
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .filter(|p| *p == "https" || *p == "http")
        .unwrap_or("http");
    format!("{proto}://{host}/api/environments/{env}")
}

/// The root of a data service: `…/{env}/data` or `…/{env}/upgrade/test/data`.
pub fn data_base(public_url: Option<&str>, headers: &HeaderMap, env: &str, path: &str) -> String {
    format!("{}/{path}", base(public_url, headers, env))
}

/// The client's `Prefer: odata.maxpagesize=N`.
pub fn max_page_size(headers: &HeaderMap) -> Option<u64> {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| {
            p.trim()
                .strip_prefix("odata.maxpagesize=")
                .and_then(|n| n.trim().parse().ok())
        })
}

/// The client's `Prefer: return=minimal`.
pub fn prefers_minimal(headers: &HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|p| p.trim() == "return=minimal"))
}

/// `body` serialized straight into the response's bytes.
pub fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    let bytes = match serde_json::to_vec(body) {
        Ok(b) => b,
        // Maps with string keys and JSON values cannot fail to serialize; should one,
        // the client gets a plain 500 rather than half a body.
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    let mut r = (status, bytes).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(JSON_CONTENT_TYPE),
    );
    r
}

fn query(params: &[(String, String)]) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        q.append_pair(k, v);
    }
    q.finish()
}

/// `{set}`, or `{set}(A,B)` when a `$select` chose the properties: the context URL's
/// fragment.
fn context_of(set: &str, select: &Option<Vec<String>>) -> String {
    match select {
        Some(cols) => format!("{set}({})", cols.join(",")),
        None => set.to_string(),
    }
}

/// A page as OData JSON, borrowing the rows: a page is serialized once, never copied.
#[derive(Serialize)]
struct PageBody<'a> {
    #[serde(rename = "@odata.context")]
    context: String,
    #[serde(rename = "@odata.count", skip_serializing_if = "Option::is_none")]
    count: Option<u64>,
    value: &'a [Map<String, Json>],
    #[serde(rename = "@odata.nextLink", skip_serializing_if = "Option::is_none")]
    next_link: Option<String>,
    /// An app view's name and columns, for the player.
    #[serde(skip_serializing_if = "Option::is_none")]
    view: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    columns: Option<&'a [String]>,
}

fn page_body<'a>(base: &str, page: &'a Page, next_link: Option<String>) -> PageBody<'a> {
    PageBody {
        context: format!("{base}/$metadata#{}", context_of(&page.set, &page.select)),
        count: page.count,
        value: &page.values,
        next_link,
        view: None,
        columns: None,
    }
}

fn with_preference(mut r: Response, page: &Page) -> Response {
    if let Some(n) = page.page_size_applied
        && let Ok(v) = HeaderValue::from_str(&format!("odata.maxpagesize={n}"))
    {
        r.headers_mut().insert("Preference-Applied", v);
    }
    r
}

/// A collection page; `base` is the data service root.
pub fn page(base: &str, page: Page) -> Response {
    let next = page
        .next
        .as_ref()
        .map(|p| format!("{base}/{}?{}", page.set, query(p)));
    let body = page_body(base, &page, next);
    with_preference(json_response(StatusCode::OK, &body), &page)
}

/// A page of an app's view: its next link leads to the view's next page, carrying
/// only the version played (`carried`) and the paging options.
pub fn view_page(env_base: &str, app: &str, v: ViewPage, carried: &[(String, String)]) -> Response {
    let next = v.page.next.as_ref().map(|p| {
        let mut params: Vec<(String, String)> = carried.to_vec();
        params.extend(
            p.iter()
                .filter(|(k, _)| k == "$skiptoken" || k == "$top")
                .cloned(),
        );
        format!("{env_base}/apps/{app}/views/{}?{}", v.view, query(&params))
    });
    let mut body = page_body(&format!("{env_base}/data"), &v.page, next);
    body.view = Some(&v.view);
    body.columns = Some(&v.columns);
    let r = json_response(StatusCode::OK, &body);
    odata_version(with_preference(r, &v.page))
}

/// One record; with `minimal`, 204 and the headers only.
pub fn record(base: &str, rec: Record, status: StatusCode, minimal: bool) -> Response {
    let mut obj = rec.value;
    obj.insert(
        "@odata.context".into(),
        json!(format!(
            "{base}/$metadata#{}/$entity",
            context_of(&rec.set, &rec.select)
        )),
    );
    let location = format!("{base}/{}({})", rec.set, rec.id);
    let mut r = if minimal {
        StatusCode::NO_CONTENT.into_response()
    } else {
        json_response(status, &obj)
    };
    let h = r.headers_mut();
    if let Some(e) = rec.etag.and_then(|e| HeaderValue::from_str(&e).ok()) {
        h.insert(header::ETAG, e);
    }
    if let Ok(v) = HeaderValue::from_str(&location) {
        h.insert("OData-EntityId", v.clone());
        if status == StatusCode::CREATED {
            h.insert(header::LOCATION, v);
        }
    }
    odata_version(r)
}

pub fn odata_version(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert("OData-Version", HeaderValue::from_static("4.0"));
    resp
}
