//! System query options of a collection request, parsed and checked against the
//! entity before anything reaches the database.

use base64::Engine as _;
use serde_json::{Value as Json, json};
use uplift_model::codec::scalar;
use uplift_model::filter::{
    Expr, FilterError, OrderItem, check_filter, parse_expand, parse_filter, parse_orderby,
    parse_select,
};
use uplift_model::layout::EntityProperties;
use uplift_model::value::{parse_date, parse_instant};
use uplift_model::{ColType, Entity, FieldType, SchemaVersion, Value};

use super::metadata::NAV_SUFFIX;
use crate::error::ApiError;

/// Longest `$filter` accepted; bounds parser work per request.
pub const MAX_FILTER_CHARS: usize = 8 * 1024;
/// Page size when the client states none.
pub const DEFAULT_PAGE_SIZE: u64 = 500;
/// Largest page a client may ask for with `Prefer: odata.maxpagesize`.
pub const MAX_PAGE_SIZE: u64 = 5000;

/// Parsed options of a collection request.
#[derive(Debug, Default)]
pub struct Options {
    pub filter: Option<Expr>,
    pub orderby: Vec<OrderItem>,
    /// Top-level field names to return; `None` for all.
    pub select: Option<Vec<String>>,
    /// Lookup fields to expand, with the name the client used.
    pub expand: Vec<(String, String)>,
    pub top: Option<u64>,
    pub skip: u64,
    pub count: bool,
    pub skiptoken: Option<String>,
    /// The options to carry into `@odata.nextLink` (all but paging ones).
    pub carried: Vec<(String, String)>,
}

fn option_error(option: &str, e: FilterError) -> ApiError {
    ApiError::bad_request(format!("{option}: {e}"))
}

/// A non-negative integer option (`$top`, `$skip`).
pub(crate) fn number(option: &str, v: &str) -> Result<u64, ApiError> {
    v.parse().map_err(|_| {
        ApiError::bad_request(format!("{option}: '{v}' is not a non-negative integer"))
    })
}

/// A `true`/`false` option (`$count`).
pub(crate) fn flag(option: &str, v: &str) -> Result<bool, ApiError> {
    match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ApiError::bad_request(format!(
            "{option}: '{v}' is not true or false"
        ))),
    }
}

/// A `$filter`, bounded in length, parsed and type-checked against `properties`.
pub(crate) fn filter(
    v: &str,
    properties: &dyn uplift_model::filter::PropertyResolver,
) -> Result<Expr, ApiError> {
    if v.chars().count() > MAX_FILTER_CHARS {
        return Err(ApiError::bad_request(format!(
            "$filter is longer than {MAX_FILTER_CHARS} characters"
        )));
    }
    let e = parse_filter(v).map_err(|e| option_error("$filter", e))?;
    check_filter(&e, v, properties).map_err(|e| option_error("$filter", e))?;
    Ok(e)
}

/// Parses the raw query string. Unknown `$` options are refused rather than ignored,
/// so a typo like `$fitler` cannot silently return everything.
pub fn parse(
    raw: Option<&str>,
    entity: &Entity,
    version: SchemaVersion,
) -> Result<Options, ApiError> {
    let mut o = Options::default();
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        let (k, v) = (k.into_owned(), v.into_owned());
        match k.as_str() {
            "$filter" => {
                o.filter = Some(filter(&v, &EntityProperties { entity, version })?);
                o.carried.push((k, v));
            }
            "$orderby" => {
                let items = parse_orderby(&v).map_err(|e| option_error("$orderby", e))?;
                for item in &items {
                    let props = EntityProperties { entity, version };
                    match uplift_model::filter::PropertyResolver::resolve(&props, &item.path) {
                        Some(uplift_model::filter::PropertyType::Scalar(_)) => {}
                        Some(uplift_model::filter::PropertyType::Complex { parts }) => {
                            return Err(ApiError::bad_request(format!(
                                "$orderby: '{}' is a complex value; order by one of its parts ({})",
                                item.path.join("/"),
                                parts.join(", ")
                            )));
                        }
                        None => {
                            return Err(ApiError::bad_request(format!(
                                "$orderby: unknown property '{}' at position {}",
                                item.path.join("/"),
                                v[..item.span.start].chars().count() + 1
                            )));
                        }
                    }
                }
                o.orderby = items;
                o.carried.push((k, v));
            }
            "$select" => {
                let paths = parse_select(&v).map_err(|e| option_error("$select", e))?;
                let mut names = Vec::new();
                for p in paths {
                    let name = p[0].clone();
                    if name != "id" && entity.field(version, &name).is_none() {
                        return Err(ApiError::bad_request(format!(
                            "$select: unknown property '{}'",
                            p.join("/")
                        )));
                    }
                    names.push(name);
                }
                o.select = Some(names);
                o.carried.push((k, v));
            }
            "$expand" => {
                for name in parse_expand(&v).map_err(|e| option_error("$expand", e))? {
                    let field = name.strip_suffix(NAV_SUFFIX).unwrap_or(&name);
                    match entity.field(version, field) {
                        Some(f) if matches!(f.ty, FieldType::Lookup { .. }) => {
                            o.expand.push((name.clone(), field.to_string()))
                        }
                        Some(_) => {
                            return Err(ApiError::bad_request(format!(
                                "$expand: '{name}' is not a lookup"
                            )));
                        }
                        None => {
                            return Err(ApiError::bad_request(format!(
                                "$expand: unknown navigation property '{name}'"
                            )));
                        }
                    }
                }
                o.carried.push((k, v));
            }
            "$top" => o.top = Some(number("$top", &v)?),
            "$skip" => o.skip = number("$skip", &v)?,
            "$count" => {
                o.count = flag("$count", &v)?;
                o.carried.push((k, v));
            }
            "$skiptoken" => o.skiptoken = Some(v),
            "$format" if v == "json" || v.starts_with("application/json") => {}
            other if other.starts_with('$') => {
                return Err(ApiError::bad_request(format!(
                    "unknown or unsupported query option '{other}' (supported: $filter, $select, $orderby, $top, $skip, $count, $expand, $skiptoken)"
                )));
            }
            _ => {}
        }
    }
    Ok(o)
}

/// Encodes a keyset position as an opaque `$skiptoken`.
pub fn encode_skiptoken(position: &[Value]) -> String {
    let arr = Json::Array(position.iter().map(scalar).collect());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json!(arr).to_string())
}

/// Decodes a `$skiptoken` into a keyset position of the given column types.
pub fn decode_skiptoken(token: &str, types: &[ColType]) -> Result<Vec<Value>, ApiError> {
    let bad = || ApiError::bad_request("$skiptoken is not valid for this request");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let arr: Vec<Json> = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if arr.len() != types.len() {
        return Err(bad());
    }
    arr.iter()
        .zip(types)
        .map(|(j, t)| {
            Ok(match (j, t) {
                (Json::Null, _) => Value::Null,
                (Json::String(s), ColType::Text) => Value::Text(s.clone()),
                (Json::Number(n), ColType::Int) => Value::Int(n.as_i64().ok_or_else(bad)?),
                (Json::Number(n), ColType::Float) => Value::Float(n.as_f64().ok_or_else(bad)?),
                (Json::Bool(b), ColType::Bool) => Value::Bool(*b),
                (Json::String(s), ColType::Date) => Value::Date(parse_date(s).ok_or_else(bad)?),
                (Json::String(s), ColType::DateTime) => {
                    Value::DateTime(parse_instant(s).ok_or_else(bad)?)
                }
                _ => return Err(bad()),
            })
        })
        .collect()
}
