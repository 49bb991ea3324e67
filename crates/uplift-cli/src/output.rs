//! Printing answers: human tables and `key: value` lines by default, JSON with `--json`.

use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use serde::Serialize;
use serde_json::Value;

/// A value as one table cell or line.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(cell).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// An optional text as a cell.
pub fn opt(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

/// An enum as the word the API spells it with.
pub fn word<T: Serialize>(t: &T) -> String {
    cell(&serde_json::to_value(t).unwrap_or(Value::Null))
}

pub fn print_json<T: Serialize + ?Sized>(value: &T) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

/// Prints `items` as a table of `header` columns (each item's cells from `row`), or
/// the items as JSON.
pub fn table<T: Serialize>(
    json: bool,
    items: &[T],
    header: &[&str],
    row: impl Fn(&T) -> Vec<String>,
) {
    if json {
        print_json(items);
        return;
    }
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY);
    t.set_header(header.to_vec());
    for item in items {
        t.add_row(row(item));
    }
    println!("{t}");
}

/// Prints one value as `key: value` lines of its top-level fields, or as JSON.
pub fn object<T: Serialize>(json: bool, value: &T) {
    if json {
        print_json(value);
        return;
    }
    match serde_json::to_value(value) {
        Ok(Value::Object(m)) => {
            let width = m.keys().map(String::len).max().unwrap_or(0);
            for (k, v) in &m {
                println!("{k:width$}  {}", cell(v));
            }
        }
        Ok(other) => println!("{}", cell(&other)),
        Err(_) => {}
    }
}
