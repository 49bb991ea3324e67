//! Rendering a tree back to canonical `$filter` text.
//!
//! Canonical means: single spaces, lower-case keywords, and only the
//! parentheses the precedence rules require, so equal trees always print the
//! same and the text parses back to an equal tree.

use super::ast::{Expr, ExprKind};
use super::literal::write_literal;

/// Renders `e` as `$filter` text that [`parse_filter`] reads back to an equal
/// tree.
///
/// Used to log and store filters in one normal form (so equal filters compare
/// equal as text) and to show users a filter the server built for them.
///
/// [`parse_filter`]: super::parse_filter
pub fn print_filter(e: &Expr) -> String {
    let mut out = String::new();
    write_expr(e, &mut out);
    out
}

/// Binding strength of a node, loosest first, mirroring the parser.
fn precedence(e: &Expr) -> u8 {
    match e.kind {
        ExprKind::Or(..) => 1,
        ExprKind::And(..) => 2,
        ExprKind::Not(_) => 3,
        ExprKind::Compare { .. } => 4,
        ExprKind::Literal(_) | ExprKind::Property(_) | ExprKind::Call { .. } => 5,
    }
}

fn write_wrapped(e: &Expr, parens: bool, out: &mut String) {
    if parens {
        out.push('(');
        write_expr(e, out);
        out.push(')');
    } else {
        write_expr(e, out);
    }
}

fn write_expr(e: &Expr, out: &mut String) {
    match &e.kind {
        ExprKind::Literal(l) => write_literal(l, out),
        ExprKind::Property(path) => out.push_str(&path.join("/")),
        ExprKind::Or(..) | ExprKind::And(..) => write_chain(e, out),
        ExprKind::Not(inner) => {
            out.push_str("not ");
            let parens = matches!(
                inner.kind,
                ExprKind::And(..) | ExprKind::Or(..) | ExprKind::Compare { .. }
            );
            write_wrapped(inner, parens, out);
        }
        ExprKind::Compare { op, left, right } => {
            // Comparisons do not chain, so any non-primary operand needs
            // parentheses on either side.
            write_wrapped(left, precedence(left) < 5, out);
            out.push(' ');
            out.push_str(op.as_str());
            out.push(' ');
            write_wrapped(right, precedence(right) < 5, out);
        }
        ExprKind::Call { func, args } => {
            out.push_str(func.name());
            out.push('(');
            for (i, arg) in args.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_expr(arg, out);
            }
            out.push(')');
        }
    }
}

/// Writes a left-leaning chain of the same operator (`a or b or c`) with a
/// loop instead of recursion: such chains are as long as the input allows
/// (`Id eq 1 or Id eq 2 or ...`), unlike nesting, which the parser bounds.
fn write_chain(e: &Expr, out: &mut String) {
    let level = precedence(e);
    let mut rights = Vec::new();
    let mut node = e;
    loop {
        match &node.kind {
            ExprKind::Or(l, r) if level == 1 => {
                rights.push(r);
                node = l;
            }
            ExprKind::And(l, r) if level == 2 => {
                rights.push(r);
                node = l;
            }
            _ => break,
        }
    }
    // The operators are left-associative: a looser left operand needs
    // parentheses, and so does a right operand of the same level.
    write_wrapped(node, precedence(node) < level, out);
    let keyword = if level == 1 { " or " } else { " and " };
    for right in rights.iter().rev() {
        out.push_str(keyword);
        write_wrapped(right, precedence(right) <= level, out);
    }
}
