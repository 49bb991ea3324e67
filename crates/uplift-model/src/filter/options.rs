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

/// One `$expand` item: a navigation property and the options nested in its
/// parentheses (`Account_ref($select=Name;$expand=Owner_ref)`), as written: the
/// caller checks them against the target entity, which only it knows.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpandItem {
    pub name: String,
    /// The nested options in the order given.
    pub options: Vec<ExpandOption>,
}

/// One nested option of an `$expand` item, e.g. `$select=Name`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpandOption {
    pub name: String,
    pub value: String,
    /// 1-based character column of the value in the `$expand` text, so an error in
    /// it can point into what the client sent.
    pub position: usize,
}

/// Parses `$expand`, e.g. `Customer,Owner($select=Name;$expand=Site_ref)`.
///
/// Items are separated by commas and nested options by semicolons, each only at the
/// top level of its parentheses and outside quoted literals, so a nested value may
/// itself hold commas, parentheses and quotes.
pub fn parse_expand(src: &str) -> Result<Vec<ExpandItem>, FilterError> {
    if src.trim().is_empty() {
        return Err(FilterError::at(
            src,
            0,
            "empty $expand: list at least one property",
        ));
    }
    split_top(src, 0, src.len(), ',')?
        .into_iter()
        .map(|(start, end)| expand_item(src, start, end))
        .collect()
}

/// One item, `src[start..end]`: a name, then nothing or `( options )`.
fn expand_item(src: &str, start: usize, end: usize) -> Result<ExpandItem, FilterError> {
    let part = &src[start..end];
    let name_at = start + (part.len() - part.trim_start().len());
    let name_len = src[name_at..end]
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '/'))
        .unwrap_or(end - name_at);
    let name = &src[name_at..name_at + name_len];
    if name.is_empty() {
        let message = match src[name_at..end].chars().next() {
            None => "expected a property name after ',' in $expand".to_string(),
            Some(c) => format!("expected a property name in $expand, found '{c}'"),
        };
        return Err(FilterError::at(src, name_at, message));
    }
    if name.contains('/') {
        return Err(FilterError::at(
            src,
            name_at,
            format!("$expand takes navigation property names, not paths: '{name}'"),
        ));
    }
    let rest = &src[name_at + name_len..end];
    let rest_at = name_at + name_len + (rest.len() - rest.trim_start().len());
    let rest = rest.trim();
    let options = match rest.chars().next() {
        None => Vec::new(),
        // `split_top` saw this parenthesis closed, at the end of the item.
        Some('(') if rest.ends_with(')') => {
            nested_options(src, name, rest_at + 1, rest_at + rest.len() - 1)?
        }
        Some(c) => {
            // After a closed option list, point at what follows it.
            let (at, c) = match c {
                '(' => after_parens(src, rest_at).unwrap_or((rest_at, c)),
                _ => (rest_at, c),
            };
            return Err(FilterError::at(
                src,
                at,
                format!("unexpected '{c}', expected ',' between items of $expand"),
            ));
        }
    };
    Ok(ExpandItem {
        name: name.to_string(),
        options,
    })
}

/// The character after the parenthesis that closes the one at byte `open`, and its
/// offset, outside quoted literals.
fn after_parens(src: &str, open: usize) -> Option<(usize, char)> {
    let (mut depth, mut quoted) = (0usize, false);
    let mut chars = src[open..].char_indices().map(|(i, c)| (open + i, c));
    for (_, c) in chars.by_ref() {
        match (quoted, c) {
            (_, '\'') => quoted = !quoted,
            (false, '(') => depth += 1,
            (false, ')') => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            _ => {}
        }
    }
    chars.find(|(_, c)| !c.is_whitespace())
}

/// The `$option=value` pairs of `src[start..end]`, separated by semicolons.
fn nested_options(
    src: &str,
    name: &str,
    start: usize,
    end: usize,
) -> Result<Vec<ExpandOption>, FilterError> {
    if src[start..end].trim().is_empty() {
        return Err(FilterError::at(
            src,
            start,
            format!("empty options for '{name}' in $expand: write e.g. '{name}($select=Name)'"),
        ));
    }
    let mut out = Vec::new();
    for (s, e) in split_top(src, start, end, ';')? {
        let text = src[s..e].trim();
        let at = s + (src[s..e].len() - src[s..e].trim_start().len());
        match text.split_once('=') {
            Some((k, v)) if k.trim().starts_with('$') && k.trim().len() > 1 => {
                let value_at = at + k.len() + 1 + (v.len() - v.trim_start().len());
                out.push(ExpandOption {
                    name: k.trim().to_string(),
                    value: v.trim().to_string(),
                    position: super::error::column(src, value_at),
                });
            }
            _ => {
                return Err(FilterError::at(
                    src,
                    at,
                    format!("expected '$option=value' in the options of '{name}', found '{text}'"),
                ));
            }
        }
    }
    Ok(out)
}

/// Splits `src[start..end]` at each `sep` outside parentheses and quoted literals
/// (`'it''s'`), returning the parts' byte ranges; unbalanced parentheses and an
/// unterminated literal are errors at the character that is left open.
fn split_top(
    src: &str,
    start: usize,
    end: usize,
    sep: char,
) -> Result<Vec<(usize, usize)>, FilterError> {
    let mut parts = Vec::new();
    let (mut from, mut open, mut quote) = (start, Vec::new(), None);
    for (i, c) in src[start..end].char_indices().map(|(i, c)| (start + i, c)) {
        match (quote, c) {
            (Some(_), '\'') => quote = None,
            (Some(_), _) => {}
            (None, '\'') => quote = Some(i),
            (None, '(') => open.push(i),
            (None, ')') if open.pop().is_none() => {
                return Err(FilterError::at(src, i, "unexpected ')' in $expand"));
            }
            (None, c) if c == sep && open.is_empty() => {
                parts.push((from, i));
                from = i + c.len_utf8();
            }
            _ => {}
        }
    }
    if let Some(q) = quote {
        return Err(FilterError::at(
            src,
            q,
            "unterminated string literal in $expand",
        ));
    }
    if let Some(p) = open.pop() {
        return Err(FilterError::at(src, p, "'(' is not closed in $expand"));
    }
    parts.push((from, end));
    Ok(parts)
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
