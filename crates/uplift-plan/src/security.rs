//! Security roles and memberships carried to the target version: privileges renamed to
//! the target's (Update → Write + Append, …) and keyed by target entity names, AppendTo
//! added where lookups need it, open mode turned into a role. A membership that cannot
//! be carried (disabled or unknown user) is a warning, never a failure: the upgrade must
//! not stop because someone left the company.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use uplift_model::security::{Privileges, SecurityMode, UserStatus};

use crate::apply::Upgrade;
use crate::plan::Plan;

/// An environment's security as the control plane holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceSecurity {
    pub mode: SecurityMode,
    /// Role name → privileges keyed by source entity names.
    pub roles: Vec<(String, Privileges)>,
    /// (role, user e-mail) assignments.
    pub members: Vec<(String, String)>,
    /// Every user of the platform with their status.
    pub users: Vec<(String, UserStatus)>,
}

/// The security of the upgraded environment.
#[derive(Debug, Clone, PartialEq)]
pub struct SecurityOutcome {
    pub mode: SecurityMode,
    /// Role name → target privileges keyed by target entity names.
    pub roles: Vec<(String, Privileges)>,
    /// (role, user e-mail) assignments carried.
    pub members: Vec<(String, String)>,
    pub warnings: Vec<SecurityWarning>,
}

/// Something about a role or an assignment that was not carried as it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecurityWarning {
    pub role: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    pub message: String,
}

const APPEND: &str = "Append";
const APPEND_TO: &str = "AppendTo";

/// Maps roles, memberships and the security mode through `plan` and `upgrade`.
pub fn map_security(plan: &Plan, input: &SourceSecurity, upgrade: &Upgrade) -> SecurityOutcome {
    let rules = plan.security();
    let mut warnings = Vec::new();
    let warn =
        |warnings: &mut Vec<SecurityWarning>, role: &str, user: Option<&str>, message: String| {
            warnings.push(SecurityWarning {
                role: role.to_string(),
                user: user.map(str::to_string),
                message,
            })
        };

    // Lookup targets of every target entity, for AppendTo.
    let lookup_targets: BTreeMap<&str, BTreeSet<&str>> = upgrade
        .target
        .entities
        .iter()
        .map(|e| {
            let targets = e
                .fields
                .iter()
                .filter_map(|f| f.ty.lookup_target())
                .collect();
            (e.name.as_str(), targets)
        })
        .collect();

    let mut roles: Vec<(String, Privileges)> = Vec::new();
    for (role, privileges) in &input.roles {
        let mut out = Privileges::new();
        for (entity, set) in privileges {
            let Some(change) = upgrade.changes.entity(entity) else {
                warn(
                    &mut warnings,
                    role,
                    None,
                    format!("privileges on '{entity}' dropped: there is no such entity"),
                );
                continue;
            };
            let Some(target) = change.target.as_deref() else {
                warn(
                    &mut warnings,
                    role,
                    None,
                    format!("privileges on '{entity}' dropped: the entity is not upgraded"),
                );
                continue;
            };
            let granted = out.entry(target.to_string()).or_default();
            for p in set {
                match rules.privileges.get(p) {
                    Some(mapped) => granted.extend(mapped.iter().cloned()),
                    None => warn(
                        &mut warnings,
                        role,
                        None,
                        format!(
                            "privilege '{p}' on '{entity}' dropped: it is not a {} privilege",
                            plan.from()
                        ),
                    ),
                }
            }
        }
        if rules.append_to_lookup_targets {
            add_append_to(&mut out, &lookup_targets);
        }
        out.retain(|_, set| !set.is_empty());
        roles.push((role.clone(), out));
    }

    let status: BTreeMap<String, UserStatus> = input
        .users
        .iter()
        .map(|(email, s)| (email.to_ascii_lowercase(), *s))
        .collect();
    let mut members: Vec<(String, String)> = Vec::new();
    for (role, email) in &input.members {
        if !input.roles.iter().any(|(r, _)| r == role) {
            warn(
                &mut warnings,
                role,
                Some(email),
                "assignment not carried: there is no such role".into(),
            );
            continue;
        }
        match status.get(&email.to_ascii_lowercase()) {
            None => warn(
                &mut warnings,
                role,
                Some(email),
                "assignment not carried: the user does not exist".into(),
            ),
            Some(UserStatus::Disabled) => warn(
                &mut warnings,
                role,
                Some(email),
                "assignment not carried: the user is disabled".into(),
            ),
            Some(UserStatus::Active) => {
                let pair = (role.clone(), email.clone());
                if !members.contains(&pair) {
                    members.push(pair);
                }
            }
        }
    }

    let mut mode = input.mode;
    if let (SecurityMode::Open, Some(open_role)) = (input.mode, &rules.open_mode_role) {
        // Open mode let every active user do everything; one role that grants everything,
        // held by every active user, keeps that true in restricted mode.
        let everything: BTreeSet<String> = plan
            .to()
            .privileges()
            .iter()
            .map(|p| p.to_string())
            .collect();
        let all: Privileges = upgrade
            .target
            .entities
            .iter()
            .map(|e| (e.name.clone(), everything.clone()))
            .collect();
        match roles.iter_mut().find(|(r, _)| r == open_role) {
            Some((_, existing)) => *existing = all,
            None => roles.push((open_role.clone(), all)),
        }
        for (email, s) in &input.users {
            let pair = (open_role.clone(), email.clone());
            if *s == UserStatus::Active && !members.contains(&pair) {
                members.push(pair);
            }
        }
        mode = SecurityMode::Restricted;
    }
    SecurityOutcome {
        mode,
        roles,
        members,
        warnings,
    }
}

/// AppendTo on every entity that a lookup of an entity the role may Append to points at.
fn add_append_to(privileges: &mut Privileges, lookups: &BTreeMap<&str, BTreeSet<&str>>) {
    let appenders: Vec<String> = privileges
        .iter()
        .filter(|(_, set)| set.contains(APPEND))
        .map(|(e, _)| e.clone())
        .collect();
    for entity in appenders {
        for target in lookups.get(entity.as_str()).into_iter().flatten() {
            privileges
                .entry((*target).to_string())
                .or_default()
                .insert(APPEND_TO.to_string());
        }
    }
}
