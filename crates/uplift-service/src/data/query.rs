//! System query options of a collection request, parsed and checked against the
//! entity before anything reaches the database.

use base64::Engine as _;
use serde_json::{Value as Json, json};
use uplift_model::codec::scalar;
use uplift_model::decimal;
use uplift_model::filter::{
    Expr, FilterError, OrderItem, check_filter, parse_expand, parse_filter, parse_orderby,
    parse_select,
};
use uplift_model::layout::EntityProperties;
use uplift_model::value::{parse_date, parse_instant};
use uplift_model::{Catalog, ColType, Entity, FieldType, SchemaVersion, Value};

use super::NAV_SUFFIX;
use crate::error::ServiceError;

/// Longest `$filter` accepted; bounds parser work per request.
pub const MAX_FILTER_CHARS: usize = 8 * 1024;
/// Page size when the client states none.
pub const DEFAULT_PAGE_SIZE: u64 = 500;
/// Largest page a client may ask for with `Prefer: odata.maxpagesize`.
pub const MAX_PAGE_SIZE: u64 = 5000;

/// How deep `$expand` may nest (`A_ref($expand=B_ref($expand=C_ref))` is 3): each
/// level is one more batch read per page.
pub const MAX_EXPAND_DEPTH: usize = 3;

/// One expanded lookup: the navigation property the client named, the lookup field
/// behind it, and the nested `$select` and `$expand` of the record it points at.
#[derive(Debug, Clone, PartialEq)]
pub struct Expand {
    pub name: String,
    pub field: String,
    /// The target entity's logical name.
    pub target: String,
    /// Top-level fields of the target to return; `None` for all.
    pub select: Option<Vec<String>>,
    pub expand: Vec<Expand>,
}

/// Parsed options of a collection request.
#[derive(Debug, Default)]
pub struct Options {
    pub filter: Option<Expr>,
    pub orderby: Vec<OrderItem>,
    /// Top-level field names to return; `None` for all.
    pub select: Option<Vec<String>>,
    /// Lookups to expand, each with what of its target to return.
    pub expand: Vec<Expand>,
    pub top: Option<u64>,
    pub skip: u64,
    pub count: bool,
    pub skiptoken: Option<String>,
    /// The options to carry into `@odata.nextLink` (all but paging ones).
    pub carried: Vec<(String, String)>,
}

fn option_error(option: &str, e: FilterError) -> ServiceError {
    ServiceError::Invalid(format!("{option}: {e}"))
}

/// A non-negative integer option (`$top`, `$skip`), at most `i64::MAX`: both engines
/// take `LIMIT`/`OFFSET` as signed 64-bit integers.
pub fn number(option: &str, v: &str) -> Result<u64, ServiceError> {
    let n: u64 = v.parse().map_err(|_| {
        ServiceError::Invalid(format!("{option}: '{v}' is not a non-negative integer"))
    })?;
    if n > i64::MAX as u64 {
        return Err(ServiceError::Invalid(format!(
            "{option}: '{v}' is larger than the largest allowed, {}",
            i64::MAX
        )));
    }
    Ok(n)
}

/// A `true`/`false` option (`$count`).
pub fn flag(option: &str, v: &str) -> Result<bool, ServiceError> {
    match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ServiceError::Invalid(format!(
            "{option}: '{v}' is not true or false"
        ))),
    }
}

/// A `$filter`, bounded in length, parsed and type-checked against `properties`.
pub fn filter(
    v: &str,
    properties: &dyn uplift_model::filter::PropertyResolver,
) -> Result<Expr, ServiceError> {
    if v.chars().count() > MAX_FILTER_CHARS {
        return Err(ServiceError::Invalid(format!(
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
    catalog: &Catalog,
) -> Result<Options, ServiceError> {
    let mut o = Options::default();
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        if k.contains('\0') || v.contains('\0') {
            return Err(ServiceError::Invalid(format!(
                "{k}: text must not contain the NUL character (U+0000)"
            )));
        }
        o.set(&k, &v, entity, catalog)?;
    }
    Ok(o)
}

impl Options {
    /// Sets one query option, checked against `entity` of `catalog`. The app player
    /// builds a view's query with it too, so a view means exactly what the same URL
    /// would.
    pub fn set(
        &mut self,
        k: &str,
        v: &str,
        entity: &Entity,
        catalog: &Catalog,
    ) -> Result<(), ServiceError> {
        let version = catalog.version;
        let carried = match k {
            "$filter" => {
                self.filter = Some(filter(v, &EntityProperties { entity, version })?);
                true
            }
            "$orderby" => {
                self.orderby = orderby(v, entity, version)?;
                true
            }
            "$select" => {
                self.select = Some(select(v, entity, version, "$select", 0)?);
                true
            }
            "$expand" => {
                self.expand.extend(expand(v, entity, catalog, 1, 0)?);
                true
            }
            "$top" => {
                self.top = Some(number("$top", v)?);
                false
            }
            "$skip" => {
                self.skip = number("$skip", v)?;
                false
            }
            "$count" => {
                self.count = flag("$count", v)?;
                true
            }
            "$skiptoken" => {
                self.skiptoken = Some(v.to_string());
                false
            }
            "$format" if v == "json" || v.starts_with("application/json") => false,
            other if other.starts_with('$') => {
                return Err(ServiceError::Invalid(format!(
                    "unknown or unsupported query option '{other}' (supported: $filter, $select, $orderby, $top, $skip, $count, $expand, $skiptoken)"
                )));
            }
            _ => false,
        };
        if carried {
            self.carried.push((k.to_string(), v.to_string()));
        }
        Ok(())
    }
}

fn orderby(
    v: &str,
    entity: &Entity,
    version: SchemaVersion,
) -> Result<Vec<OrderItem>, ServiceError> {
    let items = parse_orderby(v).map_err(|e| option_error("$orderby", e))?;
    let props = EntityProperties { entity, version };
    for item in &items {
        match uplift_model::filter::PropertyResolver::resolve(&props, &item.path) {
            Some(uplift_model::filter::PropertyType::Scalar(_)) => {}
            Some(uplift_model::filter::PropertyType::Complex { parts }) => {
                return Err(ServiceError::Invalid(format!(
                    "$orderby: '{}' is a complex value; order by one of its parts ({})",
                    item.path.join("/"),
                    parts.join(", ")
                )));
            }
            None => {
                return Err(ServiceError::Invalid(format!(
                    "$orderby: unknown property '{}' at position {}",
                    item.path.join("/"),
                    v[..item.span.start].chars().count() + 1
                )));
            }
        }
    }
    Ok(items)
}

/// A `$select` list; nested in `$expand`, `label` names where it is and `offset` is
/// how many characters of the `$expand` text precede it, so positions point into
/// what the client sent.
fn select(
    v: &str,
    entity: &Entity,
    version: SchemaVersion,
    label: &str,
    offset: usize,
) -> Result<Vec<String>, ServiceError> {
    let paths = parse_select(v).map_err(|e| option_error(label, shifted(e, offset)))?;
    let mut names = Vec::new();
    for p in paths {
        let name = p[0].clone();
        if name != "id" && entity.field(version, &name).is_none() {
            return Err(ServiceError::Invalid(format!(
                "{label}: unknown property '{}'",
                p.join("/")
            )));
        }
        names.push(name);
    }
    Ok(names)
}

/// An error's position moved `offset` characters on: from a nested option's value
/// into the whole `$expand` text.
fn shifted(e: FilterError, offset: usize) -> FilterError {
    FilterError {
        position: e.position + offset,
        ..e
    }
}

/// Resolves `$expand` against `entity`; `depth` is the nesting level of `v` and
/// `offset` the characters of the client's `$expand` text before it.
fn expand(
    v: &str,
    entity: &Entity,
    catalog: &Catalog,
    depth: usize,
    offset: usize,
) -> Result<Vec<Expand>, ServiceError> {
    if depth > MAX_EXPAND_DEPTH {
        return Err(ServiceError::Invalid(format!(
            "$expand: nested more than {MAX_EXPAND_DEPTH} levels deep"
        )));
    }
    let items = parse_expand(v).map_err(|e| option_error("$expand", shifted(e, offset)))?;
    let mut out = Vec::new();
    for item in items {
        let (field, target) = navigation(&item.name, entity, catalog)?;
        let mut e = Expand {
            name: item.name.clone(),
            field,
            target: target.name.clone(),
            select: None,
            expand: Vec::new(),
        };
        for o in &item.options {
            let at = offset + o.position - 1;
            match o.name.as_str() {
                "$select" => {
                    let label = format!("$expand: {}($select)", item.name);
                    e.select = Some(select(&o.value, target, catalog.version, &label, at)?);
                }
                "$expand" => {
                    let nested = expand(&o.value, target, catalog, depth + 1, at)?;
                    e.expand.extend(nested);
                }
                other => {
                    return Err(ServiceError::Invalid(format!(
                        "$expand: option '{other}' inside '{}(...)' is not supported (supported: $select, $expand)",
                        item.name
                    )));
                }
            }
        }
        out.push(e);
    }
    Ok(out)
}

/// The lookup field behind navigation property `name` of `entity`, and its target.
fn navigation<'c>(
    name: &str,
    entity: &Entity,
    catalog: &'c Catalog,
) -> Result<(String, &'c Entity), ServiceError> {
    let nav = name.strip_suffix(NAV_SUFFIX);
    let field = nav.unwrap_or(name);
    let target = match entity.field(catalog.version, field).map(|f| &f.ty) {
        // The lookup itself is the target's id (`Edm.Guid` in `$metadata`); the
        // record it points at is its navigation property's.
        Some(FieldType::Lookup { .. }) if nav.is_none() => {
            return Err(ServiceError::Invalid(format!(
                "$expand: '{name}' is a lookup's id, not a navigation property; expand '{name}{NAV_SUFFIX}'"
            )));
        }
        Some(FieldType::Lookup { target }) => target,
        Some(_) => {
            return Err(ServiceError::Invalid(format!(
                "$expand: '{name}' is not a lookup"
            )));
        }
        None => {
            return Err(ServiceError::Invalid(format!(
                "$expand: unknown navigation property '{name}'"
            )));
        }
    };
    let target = catalog.entity(target).ok_or_else(|| {
        ServiceError::Invalid(format!("$expand: lookup target '{target}' is missing"))
    })?;
    Ok((field.to_string(), target))
}

/// Encodes a keyset position as an opaque `$skiptoken`.
pub fn encode_skiptoken(position: &[Value]) -> String {
    let arr = Json::Array(position.iter().map(scalar).collect());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json!(arr).to_string())
}

/// Decodes a `$skiptoken` into a keyset position of the given column types.
pub fn decode_skiptoken(token: &str, types: &[ColType]) -> Result<Vec<Value>, ServiceError> {
    let bad = || ServiceError::Invalid("$skiptoken is not valid for this request".into());
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
                (Json::Number(n), ColType::Decimal) => {
                    Value::Decimal(decimal::from_json(n).ok_or_else(bad)?)
                }
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
