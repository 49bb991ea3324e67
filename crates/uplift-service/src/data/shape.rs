//! Records as OData JSON.

use std::ops::Range;

use serde_json::{Map, Value as Json};
use uplift_model::codec::encode;
use uplift_model::entity::KEY;
use uplift_model::layout::{Column, VERSION_COLUMN};
use uplift_model::{Entity, Field, SchemaVersion, Value};

/// How a row's columns group into fields; built once per request, used for every row.
pub struct RowShape<'e> {
    id: Option<usize>,
    version: Option<usize>,
    fields: Vec<(&'e Field, Range<usize>)>,
}

impl<'e> RowShape<'e> {
    pub fn new(entity: &'e Entity, version: SchemaVersion, cols: &[Column]) -> RowShape<'e> {
        let mut shape = RowShape {
            id: None,
            version: None,
            fields: Vec::new(),
        };
        let mut i = 0;
        while i < cols.len() {
            let name = &cols[i].field;
            let mut j = i + 1;
            while j < cols.len() && cols[j].field == *name && cols[j].part.is_some() {
                j += 1;
            }
            if name == KEY {
                shape.id = Some(i);
            } else if name == VERSION_COLUMN {
                shape.version = Some(i);
            } else if let Some(f) = entity.field(version, name) {
                shape.fields.push((f, i..j));
            }
            i = j;
        }
        shape
    }

    /// The `@odata.etag` of a row.
    pub fn etag(&self, row: &[Value]) -> Option<String> {
        self.version.and_then(|i| row[i].as_int()).map(etag)
    }

    pub fn id<'r>(&self, row: &'r [Value]) -> Option<&'r str> {
        self.id.and_then(|i| row[i].as_text())
    }

    /// The row as a JSON object, keeping only `keep` fields when given.
    pub fn to_json(&self, row: &[Value], keep: Option<&dyn Fn(&str) -> bool>) -> Map<String, Json> {
        // Sized once: growing the map's index rehashes it for every row.
        let mut m = Map::with_capacity(self.fields.len() + 2);
        if let Some(e) = self.etag(row) {
            m.insert("@odata.etag".into(), Json::String(e));
        }
        if let Some(id) = self.id(row) {
            m.insert(KEY.into(), Json::String(id.into()));
        }
        for (f, r) in &self.fields {
            if keep.is_none_or(|k| k(&f.name)) {
                m.insert(f.name.clone(), encode(f, &row[r.clone()]));
            }
        }
        m
    }

    /// The value of a lookup field in a row, if set.
    pub fn lookup<'r>(&self, row: &'r [Value], field: &str) -> Option<&'r str> {
        self.fields
            .iter()
            .find(|(f, _)| f.name == field)
            .and_then(|(_, r)| row[r.start].as_text())
    }
}

/// A weak ETag for a row version.
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// Reads a row version from an `If-Match` value (`W/"3"`, `"3"`); `*` means any.
pub fn parse_if_match(v: &str) -> Result<Option<i64>, String> {
    let v = v.trim();
    if v == "*" {
        return Ok(None);
    }
    let inner = v.strip_prefix("W/").unwrap_or(v).trim_matches('"');
    inner
        .parse()
        .map(Some)
        .map_err(|_| format!("If-Match '{v}' is not an ETag of this service"))
}
