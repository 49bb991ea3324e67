//! What a flow may do with records: what its owner may do, under the environment's
//! security mode and the owner's roles, as if the owner made each call through the
//! data API. Without it a maker with no roles could read, change and send out any
//! record of a restricted environment by writing a flow.

use std::future::Future;
use std::pin::Pin;

use uplift_model::security::{PlatformRole, Privileges, SecurityMode, UserStatus, allowed};
use uplift_store::Store;

use crate::FlowError;

/// A database's security mode and one user's privileges on it.
pub struct DatabaseRights {
    pub mode: SecurityMode,
    pub privileges: Vec<Privileges>,
}

/// What [`TestRoles::rights`] answers.
pub type RightsFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<DatabaseRights>, FlowError>> + Send + 'a>>;

/// Who may do what on a database that is not an environment's production one: an
/// upgrade's test database applies the upgraded roles (and what admins grant for
/// testing), which only the upgrade knows, so the services tell the runtime
/// ([`crate::Runtime::set_test_roles`]).
pub trait TestRoles: Send + Sync {
    /// `owner`'s rights on `database` of `env`, or `None` when it is no test database
    /// being served (the owner then has no privilege on it).
    fn rights<'a>(&'a self, env: &'a str, database: &'a str, owner: &'a str) -> RightsFuture<'a>;
}

/// The owner's standing in the flow's environment, read once per run.
pub(crate) struct OwnerRights {
    owner: String,
    /// `None` when the owner is not a user of the platform (any more).
    standing: Option<Standing>,
}

struct Standing {
    mode: SecurityMode,
    role: PlatformRole,
    status: UserStatus,
    roles: Vec<Privileges>,
}

impl OwnerRights {
    /// The owner's rights on `database`: production's roles on the environment's
    /// production database, `test`'s answer on any other.
    pub(crate) async fn load(
        store: &Store,
        test: Option<&dyn TestRoles>,
        (env, database): (&str, &str),
        owner: &str,
    ) -> Result<OwnerRights, FlowError> {
        let control = store.control();
        let (env, user) = (control.get_env(env).await?, control.get_user(owner).await?);
        let (Some(env), Some(user)) = (env, user) else {
            return Ok(OwnerRights {
                owner: owner.to_string(),
                standing: None,
            });
        };
        let (mode, roles) = if env.database == database {
            let roles = control.roles_of(&env.name, owner).await?;
            let roles = roles.into_iter().map(|r| r.privileges).collect();
            (env.security_mode, roles)
        } else {
            let rights = match test {
                Some(t) => t.rights(&env.name, database, owner).await?,
                None => None,
            };
            rights.map_or((env.security_mode, Vec::new()), |r| (r.mode, r.privileges))
        };
        Ok(OwnerRights {
            owner: owner.to_string(),
            standing: Some(Standing {
                mode,
                role: user.role,
                status: user.status,
                roles,
            }),
        })
    }

    /// Whether the owner holds `privilege` on `entity`; the error says who lacks what.
    pub(crate) fn check(&self, entity: &str, privilege: &str) -> Result<(), String> {
        let Some(s) = &self.standing else {
            return Err(format!(
                "the flow's owner {} is not a user of this platform",
                self.owner
            ));
        };
        let refs: Vec<&Privileges> = s.roles.iter().collect();
        if allowed(s.mode, s.role, s.status, &refs, entity, privilege) {
            Ok(())
        } else if s.status == UserStatus::Disabled {
            Err(format!("the flow's owner {} is disabled", self.owner))
        } else {
            Err(format!(
                "the flow's owner {} does not have the {privilege} privilege on {entity}",
                self.owner
            ))
        }
    }
}
