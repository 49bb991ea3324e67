//! Apps and flows rewritten for an upgrade's target catalog, by the plan's change list:
//! entity and field names, `$filter` and `$orderby`, complex sub-properties to the
//! fields they were flattened into, picklist labels to option values, Currency parts to
//! Money's, flow templates and `values` maps, view columns and form fields, and app
//! commands re-pointed to the upgraded clones of their flows.
//!
//! Pure: a definition in, the rewritten definition and its findings out. What cannot be
//! rewritten (a dropped field, a deprecated entity, an unknown label) is left as written
//! and becomes a finding that says where it is and, when there is one, what to use.

mod app;
mod filter;
mod flow;
mod names;

use serde::{Deserialize, Serialize};

pub use app::rewrite_app;
pub use flow::rewrite_flow;
pub use names::{EntityTarget, NameMap, PathTarget};

/// How much a finding matters: an error breaks the item, a warning may change what it
/// does, an info is worth knowing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

/// One thing the rewriter could not do, or wants a maker to know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub severity: Severity,
    /// The place in the definition: `view 'Open orders' column 'Owner'`,
    /// `step 'greet' subject`.
    pub location: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<String>,
}

/// A rewritten definition, its findings, and what the original uses: the source
/// entities (`Contact`) and properties (`Contact.FullName/last_name`) it names, sorted.
#[derive(Debug, Clone, PartialEq)]
pub struct Rewritten<T> {
    pub def: T,
    pub findings: Vec<Finding>,
    pub uses: Vec<String>,
}

/// Findings as they are collected, each at a location.
#[derive(Default)]
struct Findings(Vec<Finding>);

impl Findings {
    fn error(&mut self, location: &str, problem: filter::Problem) {
        self.push(Severity::Error, location, problem);
    }

    fn warning(&mut self, location: &str, message: String) {
        self.push(
            Severity::Warning,
            location,
            filter::Problem {
                message,
                suggestion: None,
            },
        );
    }

    fn push(&mut self, severity: Severity, location: &str, problem: filter::Problem) {
        self.0.push(Finding {
            severity,
            location: location.to_string(),
            message: problem.message,
            suggestion: problem.suggestion,
        });
    }

    fn errors(&mut self, location: &str, problems: Vec<filter::Problem>) {
        for p in problems {
            self.error(location, p);
        }
    }
}

/// The target name of a source entity, or the source name and an error finding.
fn entity_name(map: &NameMap, name: &str, location: &str, findings: &mut Findings) -> String {
    match map.entity(name) {
        EntityTarget::Upgraded(t) => t,
        EntityTarget::Deprecated(reason) => {
            findings.error(
                location,
                filter::Problem {
                    message: format!("entity '{name}' is not upgraded ({reason})"),
                    suggestion: None,
                },
            );
            name.to_string()
        }
        EntityTarget::Unknown => {
            findings.error(
                location,
                filter::Problem {
                    message: format!("no entity '{name}' in the source catalog"),
                    suggestion: None,
                },
            );
            name.to_string()
        }
    }
}

/// The `/`-separated field paths a view column or form field becomes: one, several (a
/// flattened complex field), or itself and a finding.
fn field_paths(
    map: &NameMap,
    entity: &str,
    text: &str,
    location: &str,
    findings: &mut Findings,
) -> Vec<String> {
    let path: Vec<String> = text.split('/').map(str::to_string).collect();
    match map.path(entity, &path) {
        PathTarget::One { path, .. } => vec![path.join("/")],
        PathTarget::Many(fields) => fields,
        other => {
            findings.error(location, filter::path_problem(&path, &other));
            vec![text.to_string()]
        }
    }
}
