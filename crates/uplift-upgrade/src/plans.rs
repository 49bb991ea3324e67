//! Where upgrade plans come from: the plans shipped in the binary, plans uploaded
//! through the API (kept in the control plane), and `*.toml` files an operator put in
//! the server's `DATA_DIR/plans/`. A plan is named, never given as a path, so a request
//! cannot make the server read an arbitrary file, wait on a FIFO or stream
//! `/dev/zero`: names are plain, files must be regular and are read with a size bound.

use std::path::{Path, PathBuf};

use serde::Serialize;
use tokio::io::AsyncReadExt;
use uplift_plan::{Plan, builtin, builtin_names, parse_plan};
use uplift_store::Store;

use crate::runner::UpgradeError;

/// The largest plan text accepted (uploaded or read from `DATA_DIR/plans/`). The
/// shipped plan is about 10 KiB.
pub const PLAN_MAX_BYTES: usize = 256 * 1024;
/// The longest plan name.
pub const PLAN_NAME_MAX_CHARS: usize = 64;

/// Where a plan was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanSource {
    Shipped,
    Uploaded,
    File,
}

/// A plan found by name: its text, parsed, and where it came from.
#[derive(Debug, Clone)]
pub struct FoundPlan {
    pub name: String,
    pub source: PlanSource,
    pub text: String,
    pub plan: Plan,
}

/// Plan names are lower-case letters, digits and `-`, starting with a letter or digit:
/// safe as a file name and in a URL, and never a path.
pub fn valid_plan_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= PLAN_NAME_MAX_CHARS
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

fn check_name(name: &str) -> Result<(), UpgradeError> {
    if valid_plan_name(name) {
        Ok(())
    } else {
        Err(UpgradeError::Invalid(format!(
            "'{name}' is not a plan name: plans are named with lower-case letters, digits and '-' (at most {PLAN_NAME_MAX_CHARS}), never by a path; upload a plan file with PUT /api/plans/{{name}} (the CLI's --plan PATH does)"
        )))
    }
}

/// Parses a plan's text, in words that name the plan.
pub fn parse_named(name: &str, text: &str) -> Result<Plan, UpgradeError> {
    if text.len() > PLAN_MAX_BYTES {
        return Err(UpgradeError::Invalid(format!(
            "plan '{name}' is {} bytes; plans are at most {PLAN_MAX_BYTES} bytes",
            text.len()
        )));
    }
    parse_plan(text).map_err(|e| UpgradeError::Invalid(format!("plan '{name}': {e}")))
}

/// Reads `dir/<name>.toml` if it is a regular file (not a FIFO, device or symlink),
/// at most [`PLAN_MAX_BYTES`]; `None` when there is no such file.
async fn read_file(dir: &Path, name: &str) -> Result<Option<String>, UpgradeError> {
    let path = dir.join(format!("{name}.toml"));
    let unreadable = |why: String| {
        UpgradeError::Invalid(format!(
            "plan file '{name}.toml' in the server's plans folder {why}"
        ))
    };
    let meta = match tokio::fs::symlink_metadata(&path).await {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(_) => return Err(unreadable("cannot be read".into())),
    };
    if !meta.is_file() {
        return Err(unreadable("is not a regular file".into()));
    }
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|_| unreadable("cannot be read".into()))?;
    let mut bytes = Vec::new();
    file.take(PLAN_MAX_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .await
        .map_err(|_| unreadable("cannot be read".into()))?;
    if bytes.len() > PLAN_MAX_BYTES {
        return Err(unreadable(format!("is larger than {PLAN_MAX_BYTES} bytes")));
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| unreadable("is not UTF-8 text".into()))
}

/// Finds a plan by name: shipped, then uploaded, then `plans_dir/<name>.toml`.
pub async fn find(
    store: &Store,
    plans_dir: Option<&PathBuf>,
    name: &str,
) -> Result<FoundPlan, UpgradeError> {
    check_name(name)?;
    let found = |source, text: String| -> Result<FoundPlan, UpgradeError> {
        let plan = parse_named(name, &text)?;
        Ok(FoundPlan {
            name: name.to_string(),
            source,
            text,
            plan,
        })
    };
    if let Some(text) = builtin(name) {
        return found(PlanSource::Shipped, text.to_string());
    }
    if let Some(p) = store.control().plan(name).await? {
        return found(PlanSource::Uploaded, p.text);
    }
    if let Some(dir) = plans_dir
        && let Some(text) = read_file(dir, name).await?
    {
        return found(PlanSource::File, text);
    }
    Err(UpgradeError::NotFound(format!(
        "no plan '{name}': the shipped plans are {}; others are uploaded with PUT /api/plans/{{name}}",
        builtin_names().join(", ")
    )))
}

/// Every plan's name with its source: shipped, uploaded, then the valid names of the
/// `*.toml` files in the plans folder that are not shadowed by one of the others.
pub async fn names(
    store: &Store,
    plans_dir: Option<&PathBuf>,
) -> Result<Vec<(String, PlanSource)>, UpgradeError> {
    let mut out: Vec<(String, PlanSource)> = builtin_names()
        .iter()
        .map(|n| (n.to_string(), PlanSource::Shipped))
        .collect();
    for p in store.control().plans().await? {
        out.push((p.name, PlanSource::Uploaded));
    }
    let Some(dir) = plans_dir else {
        return Ok(out);
    };
    let Ok(mut entries) = tokio::fs::read_dir(dir).await else {
        return Ok(out);
    };
    let mut files = Vec::new();
    while let Ok(Some(e)) = entries.next_entry().await {
        let file = e.file_name().to_string_lossy().into_owned();
        if let Some(name) = file.strip_suffix(".toml")
            && valid_plan_name(name)
            && !out.iter().any(|(n, _)| n == name)
        {
            files.push((name.to_string(), PlanSource::File));
        }
    }
    files.sort();
    out.extend(files);
    Ok(out)
}

/// Validates and stores an uploaded plan; true when the name is new. A shipped plan's
/// name cannot be taken.
pub async fn upload(
    store: &Store,
    name: &str,
    text: &str,
    by: &str,
) -> Result<(bool, Plan), UpgradeError> {
    check_name(name)?;
    if builtin(name).is_some() {
        return Err(UpgradeError::Conflict(format!(
            "'{name}' is a shipped plan; upload yours under another name"
        )));
    }
    let plan = parse_named(name, text)?;
    let created = store.control().put_plan(name, text, by).await?;
    Ok((created, plan))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_names_are_never_paths() {
        let cases = [
            ("classic-to-modern", true),
            ("my-plan-2", true),
            ("2026", true),
            ("/etc/passwd", false),
            ("../control", false),
            ("plan.toml", false),
            ("Plan", false),
            ("-x", false),
            ("", false),
            ("a b", false),
        ];
        for (name, ok) in cases {
            assert_eq!(valid_plan_name(name), ok, "{name}");
        }
        assert!(!valid_plan_name(&"a".repeat(PLAN_NAME_MAX_CHARS + 1)));
    }
}
