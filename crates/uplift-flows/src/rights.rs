//! What a flow may do with records: what its owner may do, under the environment's
//! security mode and the owner's roles, as if the owner made each call through the
//! data API. Without it a maker with no roles could read, change and send out any
//! record of a restricted environment by writing a flow.

use uplift_model::security::{PlatformRole, Privileges, SecurityMode, UserStatus, allowed};
use uplift_store::Store;

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
    pub(crate) async fn load(
        store: &Store,
        env: &str,
        owner: &str,
    ) -> Result<OwnerRights, uplift_store::StoreError> {
        let control = store.control();
        let (env, user) = (control.get_env(env).await?, control.get_user(owner).await?);
        let standing = match (env, user) {
            (Some(env), Some(user)) => Some(Standing {
                mode: env.security_mode,
                role: user.role,
                status: user.status,
                roles: control
                    .roles_of(&env.name, owner)
                    .await?
                    .into_iter()
                    .map(|r| r.privileges)
                    .collect(),
            }),
            _ => None,
        };
        Ok(OwnerRights {
            owner: owner.to_string(),
            standing,
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
