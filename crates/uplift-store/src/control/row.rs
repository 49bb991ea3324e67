//! Control-plane rows read by column name. A query's SELECT list is generated from the
//! same [`Cols`] its rows are decoded with, so adding, removing or reordering a
//! column cannot shift what a decoder reads.

use uplift_model::{ColType, Value};

use crate::{Result, StoreError};

/// A SELECT list: each column as written in the query (`name`, `u.email`,
/// `v.database AS version_database`) and the type it is read as. A column is read by
/// its name: the alias after `AS`, else what follows the table qualifier.
pub(super) type Cols = &'static [(&'static str, ColType)];

/// The SELECT list of `cols`, comma-separated.
pub(super) fn select_list(cols: Cols) -> String {
    cols.iter().map(|(c, _)| *c).collect::<Vec<_>>().join(", ")
}

pub(super) fn types(cols: Cols) -> Vec<ColType> {
    cols.iter().map(|(_, t)| *t).collect()
}

fn column_name(column: &str) -> &str {
    match column.rsplit_once(" AS ") {
        Some((_, alias)) => alias,
        None => column.rsplit_once('.').map_or(column, |(_, c)| c),
    }
}

/// One row with the names of its columns.
pub(super) struct Row {
    cols: Cols,
    values: Vec<Value>,
}

impl Row {
    pub fn new(cols: Cols, values: Vec<Value>) -> Row {
        Row { cols, values }
    }

    fn get(&self, name: &str) -> Result<&Value> {
        self.cols
            .iter()
            .position(|(c, _)| column_name(c) == name)
            .and_then(|i| self.values.get(i))
            .ok_or_else(|| StoreError::Corrupt(format!("no column '{name}' in the row read")))
    }

    /// A text column; a NULL reads as empty.
    pub fn text(&self, name: &str) -> Result<String> {
        Ok(self.get(name)?.as_text().unwrap_or_default().to_string())
    }

    pub fn opt_text(&self, name: &str) -> Result<Option<String>> {
        Ok(self.get(name)?.as_text().map(str::to_string))
    }

    /// An integer column; a NULL reads as `None`.
    pub fn opt_int(&self, name: &str) -> Result<Option<i64>> {
        Ok(self.get(name)?.as_int())
    }

    /// A JSON text column decoded into `T`; `what` names it in the error.
    pub fn json<T: serde::de::DeserializeOwned>(&self, name: &str, what: &str) -> Result<T> {
        serde_json::from_str(&self.text(name)?)
            .map_err(|e| StoreError::Corrupt(format!("{what} does not parse: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLS: Cols = &[
        ("a.name", ColType::Text),
        ("v.version", ColType::Int),
        ("v.name AS version_name", ColType::Text),
    ];

    fn row() -> Row {
        let values = vec![
            Value::Text("x".into()),
            Value::Int(3),
            Value::Text("y".into()),
        ];
        Row::new(COLS, values)
    }

    #[test]
    fn the_select_list_is_the_columns_as_written() {
        assert_eq!(
            select_list(COLS),
            "a.name, v.version, v.name AS version_name"
        );
    }

    #[test]
    fn columns_are_read_by_alias_or_unqualified_name() {
        let r = row();
        assert_eq!(r.text("name").unwrap(), "x");
        assert_eq!(r.opt_int("version").unwrap(), Some(3));
        assert_eq!(r.text("version_name").unwrap(), "y");
    }

    #[test]
    fn an_unknown_column_is_an_error_not_a_null() {
        assert!(matches!(row().text("a.name"), Err(StoreError::Corrupt(_))));
        assert!(matches!(row().text("owner"), Err(StoreError::Corrupt(_))));
    }
}
