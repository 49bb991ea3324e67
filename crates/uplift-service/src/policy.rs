//! The one authorization policy: "may this user do this to this thing". Every service
//! method asks it before it acts, so a rule lives here once and no caller (the API,
//! the CLI, the web UI) can skip or restate it.
//!
//! The facts it weighs: the platform role (`admin`, `maker`, `user`) and status, the
//! environment's security mode and the privileges the user's roles grant there,
//! ownership (owner and editors) of an app or a flow, and which database of the
//! environment is addressed (production, or the upgrade's test database).

use std::collections::BTreeSet;

use uplift_model::security::{PlatformRole, Privileges, SecurityMode, allowed};
use uplift_store::control::Approval;

use crate::auth::Actor;
use crate::error::{Denial, ItemKind, Result, ServiceError};

/// Which database of an environment a request addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Database {
    Production,
    /// The test database of the environment's upgrade.
    Test,
}

fn deny(d: Denial) -> ServiceError {
    ServiceError::Forbidden(d)
}

/// Platform administration: environments, users, roles, upgrades.
pub fn admin(actor: &Actor) -> Result<()> {
    if actor.is_admin() {
        Ok(())
    } else {
        Err(deny(Denial::NotAdmin {
            user: actor.email().into(),
        }))
    }
}

/// Building: entity definitions, apps, flows, following an upgrade.
pub fn maker(actor: &Actor) -> Result<()> {
    match actor.role() {
        PlatformRole::Admin | PlatformRole::Maker => Ok(()),
        PlatformRole::User => Err(deny(Denial::NotMaker {
            user: actor.email().into(),
        })),
    }
}

/// Acting on a user's account (seeing it, making a token for it): oneself, or an admin.
pub fn user_account(actor: &Actor, email: &str, what: &'static str) -> Result<()> {
    if actor.is_admin() || actor.is(email) {
        Ok(())
    } else {
        Err(deny(Denial::OtherUser {
            user: actor.email().into(),
            what,
        }))
    }
}

/// Changing a user: admins only, and never to lock themselves out.
pub fn change_user(actor: &Actor, email: &str, disables: bool, demotes: bool) -> Result<()> {
    admin(actor)?;
    if actor.is(email) && (disables || demotes) {
        return Err(deny(Denial::SelfDemotion));
    }
    Ok(())
}

/// An app or a flow, as far as ownership goes.
#[derive(Debug, Clone, Copy)]
pub struct Owned<'a> {
    pub kind: ItemKind,
    pub name: &'a str,
    pub owner: &'a str,
    pub editors: &'a [String],
}

impl Owned<'_> {
    fn edited_by(&self, actor: &Actor) -> bool {
        actor.is(self.owner) || self.editors.iter().any(|e| actor.is(e))
    }
}

/// Whether the actor sees the item's draft, definition and runs: owner, editors, admins.
pub fn sees_inside(actor: &Actor, item: Owned<'_>) -> bool {
    actor.is_admin() || item.edited_by(actor)
}

/// Changing an app or flow, publishing it, running it by hand, reading its runs.
pub fn edit(actor: &Actor, item: Owned<'_>) -> Result<()> {
    if sees_inside(actor, item) {
        Ok(())
    } else {
        Err(deny(Denial::NotEditor {
            user: actor.email().into(),
            kind: item.kind,
            name: item.name.into(),
        }))
    }
}

/// Playing an app's draft rather than its published version.
pub fn play_draft(actor: &Actor, app: Owned<'_>) -> Result<()> {
    if sees_inside(actor, app) {
        Ok(())
    } else {
        Err(deny(Denial::DraftPlayer {
            app: app.name.into(),
        }))
    }
}

/// Giving an item the ownership `owner`/`editors`, replacing `current` (`None` when
/// creating it). A flow acts with its owner's privileges, so only an admin names
/// someone else as owner; and only the owner (or an admin) changes the editors, so
/// an editor cannot lock the owner out.
pub fn set_ownership(
    actor: &Actor,
    current: Option<Owned<'_>>,
    kind: ItemKind,
    name: &str,
    owner: &str,
    editors: &[String],
) -> Result<()> {
    if actor.is_admin() {
        return Ok(());
    }
    match current {
        None if !actor.is(owner) => Err(deny(Denial::OwnerOfNew {
            user: actor.email().into(),
            kind,
            name: name.into(),
            owner: owner.into(),
        })),
        None => Ok(()),
        Some(cur) if !cur.owner.eq_ignore_ascii_case(owner) => Err(deny(Denial::ChangeOwner {
            kind,
            name: name.into(),
            from: cur.owner.into(),
            to: owner.into(),
        })),
        Some(cur) if !actor.is(cur.owner) && !same_set(cur.editors, editors) => {
            Err(deny(Denial::ChangeEditors {
                kind,
                name: name.into(),
                owner: cur.owner.into(),
            }))
        }
        Some(_) => Ok(()),
    }
}

fn same_set(a: &[String], b: &[String]) -> bool {
    let norm = |v: &[String]| v.iter().map(|e| e.to_lowercase()).collect::<BTreeSet<_>>();
    norm(a) == norm(b)
}

/// Whether the actor sees an approval request: its approvers, and admins.
pub fn sees_approval(actor: &Actor, a: &Approval) -> bool {
    actor.is_admin() || a.may_answer(actor.email())
}

/// Answering (or reading) an approval request.
pub fn answer(actor: &Actor, a: &Approval) -> Result<()> {
    if sees_approval(actor, a) {
        Ok(())
    } else {
        Err(deny(Denial::NotApprover {
            user: actor.email().into(),
            title: a.title.clone(),
        }))
    }
}

/// Opening a database of an environment for data access: production to anyone
/// (entity privileges decide what they may do), the test database to makers and
/// admins only.
/// Reading what an environment is made of (its entities, `$metadata`, its apps'
/// definitions): admins and makers, who build on it; in an open environment any
/// active user; in a restricted one the users with a role in it. Records stay
/// behind their privileges.
pub fn reads_catalog(actor: &Actor, env: &str, mode: SecurityMode, has_role: bool) -> Result<()> {
    let builds = matches!(actor.role(), PlatformRole::Admin | PlatformRole::Maker);
    if builds || mode == SecurityMode::Open || has_role {
        Ok(())
    } else {
        Err(deny(Denial::NoRole {
            user: actor.email().into(),
            env: env.into(),
        }))
    }
}

pub fn open_database(actor: &Actor, env: &str, database: Database) -> Result<()> {
    match database {
        Database::Production => Ok(()),
        Database::Test => maker(actor).map_err(|_| deny(Denial::TestDatabase { env: env.into() })),
    }
}

/// What the actor may do to records in one database of one environment.
#[derive(Debug, Clone)]
pub struct DataRights {
    pub actor: Actor,
    pub env: String,
    pub mode: SecurityMode,
    pub database: Database,
    pub grants: std::sync::Arc<Vec<Privileges>>,
}

impl DataRights {
    /// Whether the actor may exercise `privilege` on `entity`. On the test database
    /// the mode and grants are the upgraded ones (see `Services::test_rights`).
    pub fn may(&self, entity: &str, privilege: &str) -> bool {
        let u = &self.actor.0;
        let refs: Vec<_> = self.grants.iter().collect();
        allowed(self.mode, u.role, u.status, &refs, entity, privilege)
    }

    pub fn require(&self, entity: &str, privilege: &str) -> Result<()> {
        if self.may(entity, privilege) {
            Ok(())
        } else {
            Err(deny(Denial::NoPrivilege {
                user: self.actor.email().into(),
                privilege: privilege.into(),
                entity: entity.into(),
                env: self.env.clone(),
            }))
        }
    }

    /// Using the environment at all (its service document and metadata): see
    /// [`reads_catalog`]; the test database opens to makers and admins only anyway.
    pub fn require_environment(&self) -> Result<()> {
        if self.database == Database::Test {
            return Ok(());
        }
        reads_catalog(&self.actor, &self.env, self.mode, !self.grants.is_empty())
    }
}
