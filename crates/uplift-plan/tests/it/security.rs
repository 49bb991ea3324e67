//! Roles, memberships and the security mode across the upgrade.

use std::collections::{BTreeMap, BTreeSet};

use uplift_model::security::{Privileges, SecurityMode, UserStatus};
use uplift_plan::{SecurityOutcome, SourceSecurity, map_security};

use crate::support::*;

fn privileges(pairs: &[(&str, &[&str])]) -> Privileges {
    pairs
        .iter()
        .map(|(e, ps)| (e.to_string(), ps.iter().map(|p| p.to_string()).collect()))
        .collect()
}

fn users() -> Vec<(String, UserStatus)> {
    vec![
        ("ann@example.com".into(), UserStatus::Active),
        ("bob@example.com".into(), UserStatus::Disabled),
        ("cid@example.com".into(), UserStatus::Active),
    ]
}

fn map(input: &SourceSecurity) -> SecurityOutcome {
    map_security(&plan(), input, &upgrade())
}

fn role<'a>(out: &'a SecurityOutcome, name: &str) -> &'a Privileges {
    out.roles
        .iter()
        .find(|(r, _)| r == name)
        .map(|(_, p)| p)
        .unwrap_or_else(|| panic!("no role {name}"))
}

fn set(out: &SecurityOutcome, role_name: &str, entity: &str) -> Vec<String> {
    role(out, role_name)
        .get(entity)
        .map(|s| s.iter().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn classic_privileges_become_modern_ones_on_target_entities() {
    let input = SourceSecurity {
        mode: SecurityMode::Restricted,
        roles: vec![
            (
                "Sales".into(),
                privileges(&[
                    ("SalesOrder", &["Create", "Read", "Update"]),
                    ("Account", &["Read"]),
                    ("SalesOrderTax", &["Read", "Create"]),
                    ("PositionWorkerAssignment", &["Delete"]),
                ]),
            ),
            ("Reader".into(), privileges(&[("Contact", &["Read"])])),
        ],
        members: vec![],
        users: users(),
    };
    let out = map(&input);
    assert_eq!(out.mode, SecurityMode::Restricted);
    let cases: [(&str, &str, &[&str]); 6] = [
        // Create → Create + Append, Update → Write + Append, Read → Read.
        (
            "Sales",
            "salesorder",
            &["Append", "Create", "Read", "Write"],
        ),
        // Sales orders look up accounts and contacts: AppendTo lets the role set them.
        ("Sales", "account", &["AppendTo", "Read"]),
        ("Sales", "contact", &["AppendTo"]),
        ("Sales", "cdm_positionworkerassignmentmap", &["Delete"]),
        ("Reader", "contact", &["Read"]),
        // A role that cannot set lookups gets no AppendTo.
        ("Reader", "account", &[]),
    ];
    for (r, entity, expected) in cases {
        assert_eq!(set(&out, r, entity), expected, "{r} on {entity}");
    }
    // Privileges on a deprecated entity are dropped, with a warning.
    assert!(role(&out, "Sales").keys().all(|e| !e.contains("tax")));
    assert!(
        out.warnings
            .iter()
            .any(|w| w.role == "Sales" && w.message.contains("'SalesOrderTax' dropped"))
    );
    // Every privilege is a modern one, on a target entity.
    let upgraded = upgrade();
    for (_, p) in &out.roles {
        assert_eq!(
            uplift_model::security::check_privileges(uplift_model::SchemaVersion::Modern, p),
            Ok(())
        );
        for e in p.keys() {
            assert!(upgraded.target.entity(e).is_some(), "{e}");
        }
    }
}

#[test]
fn assignments_of_disabled_or_missing_users_are_warnings() {
    let input = SourceSecurity {
        mode: SecurityMode::Restricted,
        roles: vec![("Sales".into(), privileges(&[("Account", &["Read"])]))],
        members: vec![
            ("Sales".into(), "ann@example.com".into()),
            ("Sales".into(), "bob@example.com".into()),
            ("Sales".into(), "zoe@example.com".into()),
            ("Ghost".into(), "cid@example.com".into()),
        ],
        users: users(),
    };
    let out = map(&input);
    assert_eq!(
        out.members,
        vec![("Sales".to_string(), "ann@example.com".to_string())]
    );
    let warned: BTreeMap<Option<&str>, &str> = out
        .warnings
        .iter()
        .map(|w| (w.user.as_deref(), w.message.as_str()))
        .collect();
    assert_eq!(
        warned.get(&Some("bob@example.com")),
        Some(&"assignment not carried: the user is disabled")
    );
    assert_eq!(
        warned.get(&Some("zoe@example.com")),
        Some(&"assignment not carried: the user does not exist")
    );
    assert_eq!(
        warned.get(&Some("cid@example.com")),
        Some(&"assignment not carried: there is no such role")
    );
}

#[test]
fn open_mode_becomes_a_role_for_every_active_user() {
    let input = SourceSecurity {
        mode: SecurityMode::Open,
        roles: vec![],
        members: vec![],
        users: users(),
    };
    let out = map(&input);
    assert_eq!(out.mode, SecurityMode::Restricted);
    let upgraded = upgrade();
    let everything: BTreeSet<String> = uplift_model::SchemaVersion::Modern
        .privileges()
        .iter()
        .map(|p| p.to_string())
        .collect();
    let granted = role(&out, "Environment User");
    assert_eq!(granted.len(), upgraded.target.entities.len());
    for e in &upgraded.target.entities {
        assert_eq!(granted.get(&e.name), Some(&everything), "{}", e.name);
    }
    assert_eq!(
        out.members,
        vec![
            (
                "Environment User".to_string(),
                "ann@example.com".to_string()
            ),
            (
                "Environment User".to_string(),
                "cid@example.com".to_string()
            ),
        ]
    );
    // Without `open_mode_role` the plan keeps open mode as it is.
    let keep = plan_with("open_mode_role = \"Environment User\"", "");
    let out = map_security(&keep, &input, &upgrade());
    assert_eq!((out.mode, out.roles.len()), (SecurityMode::Open, 0));
}
