//! `$orderby`, `$select` and `$expand`: comma-separated lists of property
//! paths, sharing the `$filter` lexer so names, paths and error positions
//! behave the same in every query option.

use super::ast::Span;
use super::error::FilterError;
use super::lexer::{TokKind, Token, Tokens};

/// One `$orderby` key.
///
/// The span is kept so the caller can point at the key when the property
/// turns out not to exist or not to be sortable.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderItem {
    pub path: Vec<String>,
    pub descending: bool,
    pub span: Span,
}

/// Parses `$orderby`, e.g. `Name desc, Site/city asc, Amount`.
///
/// An empty list is an error rather than "no ordering" because an explicitly
/// empty `$orderby=` is almost always a client bug worth reporting.
pub fn parse_orderby(src: &str) -> Result<Vec<OrderItem>, FilterError> {
    let mut items = Vec::new();
    for_each_item(src, "$orderby", |ts, t, path| {
        let mut span = t.span;
        let mut descending = false;
        let next = ts.peek()?.clone();
        if let TokKind::Word(w) = &next.kind {
            match w.as_str() {
                "asc" | "desc" => {
                    descending = w == "desc";
                    ts.bump()?;
                    span = span.to(next.span);
                }
                _ => {
                    let mut message = format!("unexpected '{w}', expected asc, desc or ','");
                    let lower = w.to_ascii_lowercase();
                    if lower == "asc" || lower == "desc" {
                        message.push_str(&format!(" (directions are lower-case: write '{lower}')"));
                    }
                    return Err(ts.err_at(next.span.start, message));
                }
            }
        }
        items.push(OrderItem {
            path: split_path(path),
            descending,
            span,
        });
        Ok(())
    })?;
    Ok(items)
}

/// Parses `$select`, e.g. `Name,Site,Site/city`.
///
/// Paths are returned split into segments so the caller can resolve them
/// with the same code as `$filter` properties.
pub fn parse_select(src: &str) -> Result<Vec<Vec<String>>, FilterError> {
    let mut paths = Vec::new();
    for_each_item(src, "$select", |_, _, path| {
        paths.push(split_path(path));
        Ok(())
    })?;
    Ok(paths)
}

/// Parses `$expand`, e.g. `Customer,Owner`.
///
/// Only plain navigation property names are supported; nested options such
/// as `Customer($select=Name)` are rejected explicitly so a client does not
/// silently get a different shape than it asked for.
pub fn parse_expand(src: &str) -> Result<Vec<String>, FilterError> {
    let mut names = Vec::new();
    for_each_item(src, "$expand", |ts, t, name| {
        let next = ts.peek()?.clone();
        if next.kind == TokKind::LParen {
            return Err(ts.err_at(
                next.span.start,
                format!(
                    "nested options in $expand (such as '{name}($select=...)') are not supported; \
                     list plain navigation properties, e.g. 'Customer,Owner'"
                ),
            ));
        }
        if name.contains('/') {
            return Err(ts.err_at(
                t.span.start,
                format!("$expand takes navigation property names, not paths: '{name}'"),
            ));
        }
        names.push(name.to_string());
        Ok(())
    })?;
    Ok(names)
}

fn split_path(path: &str) -> Vec<String> {
    path.split('/').map(str::to_string).collect()
}

/// Walks `item (, item)*`, handing each item's path token to `item`, which
/// may consume trailing tokens (such as `asc`) before the next comma.
fn for_each_item(
    src: &str,
    option: &str,
    mut item: impl FnMut(&mut Tokens<'_>, &Token, &str) -> Result<(), FilterError>,
) -> Result<(), FilterError> {
    let mut ts = Tokens::new(src);
    if ts.peek()?.kind == TokKind::Eof {
        return Err(ts.err_at(0, format!("empty {option}: list at least one property")));
    }
    loop {
        let t = ts.bump()?;
        match &t.kind {
            TokKind::Word(w) => item(&mut ts, &t, w)?,
            TokKind::Eof => {
                return Err(ts.err_at(
                    t.span.start,
                    format!("expected a property name after ',' in {option}"),
                ));
            }
            other => {
                return Err(ts.err_at(
                    t.span.start,
                    format!(
                        "expected a property name in {option}, found {}",
                        other.describe()
                    ),
                ));
            }
        }
        let sep = ts.bump()?;
        match sep.kind {
            TokKind::Eof => return Ok(()),
            TokKind::Comma => {}
            other => {
                return Err(ts.err_at(
                    sep.span.start,
                    format!(
                        "unexpected {}, expected ',' between items of {option}",
                        other.describe()
                    ),
                ));
            }
        }
    }
}
