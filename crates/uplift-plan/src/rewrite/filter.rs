//! `$filter`, `$orderby` and `@{…}` templates, rewritten for the target catalog: parsed,
//! every property path mapped, picklist labels turned into option values, printed back.
//!
//! A filter may hold templates (`Account eq @{trigger.record.id}`), which the filter
//! grammar does not: each is swapped for a placeholder word before parsing and put back,
//! itself rewritten, after printing.

use uplift_model::filter::{Expr, ExprKind, Literal, parse_filter, parse_orderby, print_filter};

use super::names::{NameMap, PathTarget};

/// Why a reference was left as it was.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub message: String,
    pub suggestion: Option<String>,
}

/// Which entity a property path of an expression reads, and how many leading segments
/// name the variable rather than a field (`trigger/record/Name`: 2). `None`: not a record.
pub type Scope<'s> = &'s dyn Fn(&[String]) -> Option<(String, usize)>;

/// The rewritten text and what could not be rewritten (each left as written).
pub type Outcome = (String, Vec<Problem>);

/// Rewrites a `$filter` (or a condition) whose paths `scope` places.
pub fn filter(map: &NameMap, text: &str, scope: Scope, templates: Scope) -> Outcome {
    let (masked, found) = mask_templates(text);
    let mut problems = Vec::new();
    let expr = match parse_filter(&masked) {
        Ok(e) => e,
        Err(e) => {
            problems.push(problem(format!("cannot be read: {e}"), None));
            return (text.to_string(), problems);
        }
    };
    let out = expr_of(map, &expr, scope, &mut problems);
    let mut printed = print_filter(&out);
    for (i, t) in found.iter().enumerate() {
        let (t, p) = template(map, t, templates);
        problems.extend(p);
        printed = printed.replace(&placeholder(i), &format!("@{{{t}}}"));
    }
    (printed, problems)
}

/// Rewrites a `$orderby` of source entity `entity`.
pub fn orderby(map: &NameMap, entity: &str, text: &str) -> Outcome {
    let items = match parse_orderby(text) {
        Ok(i) => i,
        Err(e) => {
            return (
                text.to_string(),
                vec![problem(format!("cannot be read: {e}"), None)],
            );
        }
    };
    let mut problems = Vec::new();
    let keys: Vec<String> = items
        .iter()
        .map(|item| {
            let path = match map.path(entity, &item.path) {
                PathTarget::One { path, .. } => path.join("/"),
                other => {
                    problems.push(path_problem(&item.path, &other));
                    item.path.join("/")
                }
            };
            if item.descending {
                format!("{path} desc")
            } else {
                path
            }
        })
        .collect();
    (keys.join(", "), problems)
}

/// Rewrites one template path (`trigger.record.FullName/first_name`); `scope` places its
/// `.`-separated segments with the `/` of field paths split out.
pub fn template(map: &NameMap, text: &str, scope: Scope) -> (String, Vec<Problem>) {
    let segments: Vec<String> = text.split('.').map(|s| s.trim().to_string()).collect();
    let Some((entity, fixed)) = scope(&segments) else {
        return (text.to_string(), Vec::new());
    };
    if fixed >= segments.len() {
        return (text.to_string(), Vec::new());
    }
    // The field path is the rest, `/`-separated, with any `[i]` left on its segment.
    let rest = segments[fixed..].join(".");
    let path: Vec<String> = rest.split('/').map(str::to_string).collect();
    match map.path(&entity, &path) {
        PathTarget::One { path: to, .. } => {
            let mut out = segments[..fixed].to_vec();
            out.push(to.join("/"));
            (out.join("."), Vec::new())
        }
        other => (text.to_string(), vec![path_problem(&path, &other)]),
    }
}

fn expr_of(map: &NameMap, e: &Expr, scope: Scope, problems: &mut Vec<Problem>) -> Expr {
    let kind = match &e.kind {
        ExprKind::Literal(_) => e.kind.clone(),
        ExprKind::Property(path) => ExprKind::Property(property(map, path, scope, problems).0),
        ExprKind::Not(inner) => ExprKind::Not(Box::new(expr_of(map, inner, scope, problems))),
        ExprKind::And(a, b) => ExprKind::And(
            Box::new(expr_of(map, a, scope, problems)),
            Box::new(expr_of(map, b, scope, problems)),
        ),
        ExprKind::Or(a, b) => ExprKind::Or(
            Box::new(expr_of(map, a, scope, problems)),
            Box::new(expr_of(map, b, scope, problems)),
        ),
        ExprKind::Compare { op, left, right } => {
            let (left, right) = compared(map, left, right, scope, problems);
            ExprKind::Compare {
                op: *op,
                left: Box::new(left),
                right: Box::new(right),
            }
        }
        ExprKind::Call { func, args } => ExprKind::Call {
            func: *func,
            args: args
                .iter()
                .map(|a| expr_of(map, a, scope, problems))
                .collect(),
        },
    };
    Expr::new(kind, e.span)
}

/// Both sides of a comparison; a picklist label compared with a picklist field becomes
/// the option's value.
fn compared(
    map: &NameMap,
    left: &Expr,
    right: &Expr,
    scope: Scope,
    problems: &mut Vec<Problem>,
) -> (Expr, Expr) {
    let options = |e: &Expr, problems: &mut Vec<Problem>| match &e.kind {
        ExprKind::Property(path) => property(map, path, scope, problems).1,
        _ => None,
    };
    let (mut l, mut r) = (
        expr_of(map, left, scope, problems),
        expr_of(map, right, scope, problems),
    );
    let mut ignored = Vec::new();
    if let Some(opts) = options(left, &mut ignored) {
        r = label(right, &opts, problems);
    } else if let Some(opts) = options(right, &mut ignored) {
        l = label(left, &opts, problems);
    }
    (l, r)
}

fn label(e: &Expr, options: &[(String, i64)], problems: &mut Vec<Problem>) -> Expr {
    let ExprKind::Literal(Literal::String(s)) = &e.kind else {
        return e.clone();
    };
    match options.iter().find(|(l, _)| l == s) {
        Some((_, v)) => Expr::new(ExprKind::Literal(Literal::Int(*v)), e.span),
        None => {
            let labels: Vec<&str> = options.iter().map(|(l, _)| l.as_str()).collect();
            problems.push(problem(
                format!(
                    "'{s}' is not an option (the options are {})",
                    labels.join(", ")
                ),
                None,
            ));
            e.clone()
        }
    }
}

/// A property path and, for a picklist, its options.
fn property(
    map: &NameMap,
    path: &[String],
    scope: Scope,
    problems: &mut Vec<Problem>,
) -> (Vec<String>, Option<Vec<(String, i64)>>) {
    if path.len() == 1 && is_placeholder(&path[0]) {
        return (path.to_vec(), None);
    }
    let Some((entity, fixed)) = scope(path) else {
        return (path.to_vec(), None);
    };
    let (head, rest) = path.split_at(fixed.min(path.len()));
    match map.path(&entity, rest) {
        PathTarget::One { path: to, options } => {
            let mut out = head.to_vec();
            out.extend(to);
            (out, options)
        }
        other => {
            problems.push(path_problem(rest, &other));
            (path.to_vec(), None)
        }
    }
}

/// The problem with a path that does not map to one target path.
pub fn path_problem(path: &[String], target: &PathTarget) -> Problem {
    let name = path.join("/");
    match target {
        PathTarget::Dropped { reason, suggestion } => problem(
            format!("'{name}' is not upgraded ({reason})"),
            suggestion.as_ref().map(|s| format!("use '{s}'")),
        ),
        PathTarget::Many(fields) => problem(
            format!("'{name}' became several fields"),
            Some(format!("use one of {}", fields.join(", "))),
        ),
        PathTarget::One { .. } | PathTarget::Unknown => problem(
            format!("'{name}' is not a field of the source entity"),
            None,
        ),
    }
}

fn problem(message: String, suggestion: Option<String>) -> Problem {
    Problem {
        message,
        suggestion,
    }
}

fn placeholder(i: usize) -> String {
    format!("uplift_template_{i}_")
}

fn is_placeholder(word: &str) -> bool {
    word.starts_with("uplift_template_") && word.ends_with('_')
}

/// The text with every `@{…}` replaced by a placeholder word, and the templates found.
fn mask_templates(text: &str) -> (String, Vec<String>) {
    let mut out = String::new();
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("@{") {
        let Some(end) = rest[i..].find('}') else {
            break;
        };
        out.push_str(&rest[..i]);
        out.push_str(&placeholder(found.len()));
        found.push(rest[i + 2..i + end].trim().to_string());
        rest = &rest[i + end + 1..];
    }
    out.push_str(rest);
    (out, found)
}
