//! Who may do what: platform roles, user status, environment security modes and the
//! privilege check itself. Pure, so the rule is tested without a server.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::types::SchemaVersion;

/// A user's role on the platform as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlatformRole {
    /// Administers every environment; bypasses security roles.
    Admin,
    /// Builds apps and flows.
    Maker,
    User,
}

impl PlatformRole {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Self::Admin),
            "maker" => Some(Self::Maker),
            "user" => Some(Self::User),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Maker => "maker",
            Self::User => "user",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserStatus {
    Active,
    /// Kept (with role assignments, for the record) but refused everywhere.
    Disabled,
}

impl UserStatus {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "disabled" => Some(Self::Disabled),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
        }
    }
}

/// How an environment authorises data access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecurityMode {
    /// Every active user may do everything.
    Open,
    /// Security roles decide, per entity and privilege.
    Restricted,
}

impl SecurityMode {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(Self::Open),
            "restricted" => Some(Self::Restricted),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Restricted => "restricted",
        }
    }
}

/// Privileges per entity, as a security role grants them.
pub type Privileges = BTreeMap<String, BTreeSet<String>>;

/// Whether a caller may exercise `privilege` on `entity`. Admins always may; disabled
/// users never; in open mode every active user may; otherwise one of the caller's
/// roles must grant it.
pub fn allowed(
    mode: SecurityMode,
    role: PlatformRole,
    status: UserStatus,
    roles: &[&Privileges],
    entity: &str,
    privilege: &str,
) -> bool {
    if status == UserStatus::Disabled {
        return false;
    }
    if role == PlatformRole::Admin || mode == SecurityMode::Open {
        return true;
    }
    roles
        .iter()
        .any(|p| p.get(entity).is_some_and(|set| set.contains(privilege)))
}

/// Checks a role definition against a version's privilege names.
pub fn check_privileges(version: SchemaVersion, privileges: &Privileges) -> Result<(), String> {
    for (entity, set) in privileges {
        for p in set {
            if !version.privileges().contains(&p.as_str()) {
                return Err(format!(
                    "entity '{entity}': '{p}' is not a {version} privilege (use {})",
                    version.privileges().join(", ")
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule() {
        let p: Privileges =
            BTreeMap::from([("Account".to_string(), BTreeSet::from(["Read".to_string()]))]);
        use PlatformRole::*;
        use SecurityMode::*;
        use UserStatus::*;
        let cases = [
            (Restricted, User, Active, vec![&p], "Account", "Read", true),
            (
                Restricted,
                User,
                Active,
                vec![&p],
                "Account",
                "Create",
                false,
            ),
            (Restricted, User, Active, vec![], "Account", "Read", false),
            (Restricted, Maker, Active, vec![], "Account", "Read", false),
            (Restricted, Admin, Active, vec![], "Account", "Delete", true),
            (Open, User, Active, vec![], "Account", "Delete", true),
            (Open, User, Disabled, vec![], "Account", "Read", false),
            (
                Restricted,
                Admin,
                Disabled,
                vec![],
                "Account",
                "Read",
                false,
            ),
        ];
        for (mode, role, status, roles, e, priv_, expect) in cases {
            assert_eq!(
                allowed(mode, role, status, &roles, e, priv_),
                expect,
                "{mode:?} {role:?} {status:?} {priv_}"
            );
        }
    }
}
