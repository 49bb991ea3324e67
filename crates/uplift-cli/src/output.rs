//! Printing answers: human tables by default, JSON with `--json`.

use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use serde_json::Value;

fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(cell).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// Prints rows (objects) as a table of the given columns, or everything as JSON.
pub fn rows(json: bool, value: &Value, columns: &[&str]) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        );
        return;
    }
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY);
    t.set_header(columns.to_vec());
    for r in value.as_array().map(Vec::as_slice).unwrap_or_default() {
        t.add_row(columns.iter().map(|c| cell(&r[*c])).collect::<Vec<_>>());
    }
    println!("{t}");
}

/// Prints one object as `key: value` lines, or as JSON.
pub fn object(json: bool, value: &Value) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        );
        return;
    }
    if let Some(m) = value.as_object() {
        let width = m.keys().map(String::len).max().unwrap_or(0);
        for (k, v) in m {
            println!("{k:width$}  {}", cell(v));
        }
    } else {
        println!("{}", cell(value));
    }
}
