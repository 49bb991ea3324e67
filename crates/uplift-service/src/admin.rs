//! Environments, their catalogs, users, tokens and security roles.

use std::collections::BTreeMap;

use uplift_api as api;
use uplift_model::input::{CatalogChange, EntityDef};
use uplift_model::security::{PlatformRole, Privileges, UserStatus, check_privileges};
use uplift_upgrade::runner::SchemaLock;

use crate::auth::{Actor, hash_token, new_token};
use crate::error::{Missing, Result, ServiceError};
use crate::{Services, convert, policy};

/// Longest role name accepted.
const MAX_ROLE_NAME_CHARS: usize = 100;

fn changes(changes: &[CatalogChange]) -> api::admin::CatalogChanges {
    api::admin::CatalogChanges {
        changes: changes
            .iter()
            .map(|c| match c {
                CatalogChange::CreateEntity { entity } => {
                    api::admin::CatalogChange::CreatedEntity(entity.clone())
                }
                CatalogChange::AddField { entity, field } => {
                    api::admin::CatalogChange::AddedField(format!("{entity}.{field}"))
                }
            })
            .collect(),
    }
}

impl Services {
    /// The people an app or flow names: its owner must be a user of the platform
    /// (runs act with the owner's privileges, and mail about it goes to them), and
    /// its editors e-mail addresses.
    pub(crate) async fn check_people(&self, owner: &str, editors: &[String]) -> Result<()> {
        if self.store.control().get_user(owner).await?.is_none() {
            return Err(ServiceError::Invalid(format!(
                "owner '{owner}' is not a user of this platform"
            )));
        }
        if let Some(bad) = editors.iter().find(|e| !uplift_model::codec::is_email(e)) {
            return Err(ServiceError::Invalid(format!(
                "editor '{bad}' is not an e-mail address"
            )));
        }
        Ok(())
    }

    /// Whether the server can serve: it reads the control plane (which every request
    /// needs), so an unreachable or overloaded database answers 503, not `ok`.
    pub async fn health(&self) -> Result<api::admin::Health> {
        self.store.control().schema_version().await?;
        Ok(api::admin::Health {
            status: "ok".into(),
            engine: self.store.engine_name().into(),
        })
    }

    pub fn me(&self, actor: &Actor) -> api::admin::User {
        convert::user(&actor.0)
    }

    // ---- environments

    pub async fn create_environment(
        &self,
        actor: &Actor,
        req: api::admin::NewEnvironment,
    ) -> Result<api::admin::Environment> {
        policy::admin(actor)?;
        let rec = self
            .store
            .create_environment(
                &req.name,
                convert::schema_version_in(req.schema_version),
                convert::security_mode_in(req.security_mode),
            )
            .await?;
        self.cache.clear();
        Ok(convert::environment(&rec))
    }

    pub async fn list_environments(&self, _actor: &Actor) -> Result<Vec<api::admin::Environment>> {
        let envs = self.store.control().list_envs().await?;
        Ok(envs.iter().map(convert::environment).collect())
    }

    pub async fn environment(
        &self,
        actor: &Actor,
        env: &str,
    ) -> Result<api::admin::EnvironmentDetail> {
        let rec = self.require_catalog(actor, env).await?;
        let catalog = self.store.env_db(env).await?.catalog();
        Ok(api::admin::EnvironmentDetail {
            environment: convert::environment(&rec),
            engine: self.store.engine_name().into(),
            entities: catalog.entities.iter().map(|e| e.name.clone()).collect(),
        })
    }

    pub async fn delete_environment(&self, actor: &Actor, env: &str) -> Result<()> {
        policy::admin(actor)?;
        self.store.delete_environment(env).await?;
        self.cache.clear();
        Ok(())
    }

    // ---- catalog

    pub async fn catalog(&self, actor: &Actor, env: &str) -> Result<api::admin::Catalog> {
        self.require_catalog(actor, env).await?;
        let catalog = self.store.env_db(env).await?.catalog();
        Ok(api::admin::Catalog {
            schema_version: convert::schema_version(catalog.version),
            entities: catalog
                .entities
                .iter()
                .map(|e| convert::entity(e, catalog.version))
                .collect(),
        })
    }

    pub async fn entity(&self, actor: &Actor, env: &str, name: &str) -> Result<api::admin::Entity> {
        self.require_catalog(actor, env).await?;
        let catalog = self.store.env_db(env).await?.catalog();
        let e = catalog.entity(name).ok_or_else(|| {
            ServiceError::NotFound(Missing::Entity {
                env: env.into(),
                entity: name.into(),
            })
        })?;
        Ok(convert::entity(e, catalog.version))
    }

    /// Creates or extends entities; refused (423) while an upgrade's step 1 copies the
    /// catalog, and during step 2 unless `force`, which marks the test database stale.
    pub async fn apply_entities(
        &self,
        actor: &Actor,
        env: &str,
        defs: BTreeMap<String, api::Document>,
        force: bool,
    ) -> Result<api::admin::CatalogChanges> {
        policy::maker(actor)?;
        let defs = defs
            .into_iter()
            .map(|(name, d)| {
                serde_json::from_value::<EntityDef>(d)
                    .map(|d| (name.clone(), d))
                    .map_err(|e| {
                        ServiceError::Invalid(format!("request body: entity '{name}': {e}"))
                    })
            })
            .collect::<Result<BTreeMap<_, _>>>()?;
        let lock = self.upgrades.schema_lock(env).await?;
        match lock {
            SchemaLock::Locked { by } => {
                return Err(ServiceError::Locked {
                    env: env.into(),
                    by,
                });
            }
            SchemaLock::Step2 if !force => {
                return Err(ServiceError::LockedForStep2 { env: env.into() });
            }
            _ => {}
        }
        let db = self.store.env_db(env).await?;
        let applied = changes(&db.apply(&defs).await?);
        if lock == SchemaLock::Step2 {
            self.upgrades.mark_stale(env, actor.email()).await?;
        }
        Ok(applied)
    }

    // ---- users and tokens

    pub async fn create_user(
        &self,
        actor: &Actor,
        req: api::admin::NewUser,
    ) -> Result<api::admin::User> {
        policy::admin(actor)?;
        if !uplift_model::codec::is_email(&req.email) {
            return Err(ServiceError::Invalid(format!(
                "email '{}' is not an e-mail address",
                req.email
            )));
        }
        let u = self
            .store
            .control()
            .insert_user(
                &req.email,
                &req.display_name,
                convert::platform_role_in(req.role),
            )
            .await?;
        self.cache.clear();
        Ok(convert::user(&u))
    }

    pub async fn list_users(&self, actor: &Actor) -> Result<Vec<api::admin::User>> {
        policy::admin(actor)?;
        Ok(self
            .store
            .control()
            .list_users()
            .await?
            .iter()
            .map(convert::user)
            .collect())
    }

    pub async fn user(&self, actor: &Actor, email: &str) -> Result<api::admin::User> {
        policy::user_account(actor, email, "see accounts")?;
        let u = self.find_user(email).await?;
        Ok(convert::user(&u))
    }

    async fn find_user(&self, email: &str) -> Result<uplift_store::control::User> {
        self.store
            .control()
            .get_user(email)
            .await?
            .ok_or_else(|| ServiceError::NotFound(Missing::User(email.into())))
    }

    pub async fn update_user(
        &self,
        actor: &Actor,
        email: &str,
        req: api::admin::UserChange,
    ) -> Result<api::admin::User> {
        let status = req.status.map(convert::user_status_in);
        let role = req.role.map(convert::platform_role_in);
        policy::change_user(
            actor,
            email,
            status == Some(UserStatus::Disabled),
            role.is_some_and(|r| r != PlatformRole::Admin),
        )?;
        self.find_user(email).await?;
        let u = self
            .store
            .control()
            .update_user(email, status, role, req.display_name.as_deref())
            .await?;
        self.cache.clear();
        Ok(convert::user(&u))
    }

    pub async fn create_token(
        &self,
        actor: &Actor,
        req: api::admin::TokenRequest,
    ) -> Result<api::admin::NewToken> {
        let email = req.user.unwrap_or_else(|| actor.email().to_string());
        policy::user_account(actor, &email, "create tokens")?;
        let user = self.find_user(&email).await?;
        let token = new_token()?;
        self.store
            .control()
            .insert_token(
                &user.email,
                &hash_token(&token),
                req.label.as_deref().unwrap_or(""),
            )
            .await?;
        Ok(api::admin::NewToken {
            user: user.email,
            token,
        })
    }

    /// Tokens: an admin's listing is everyone's (or `user`'s), anyone else's their own.
    pub async fn list_tokens(
        &self,
        actor: &Actor,
        user: Option<String>,
    ) -> Result<Vec<api::admin::Token>> {
        let email = match user {
            Some(u) => {
                policy::user_account(actor, &u, "list tokens")?;
                Some(u)
            }
            None if actor.is_admin() => None,
            None => Some(actor.email().to_string()),
        };
        let tokens = self.store.control().tokens(email.as_deref()).await?;
        Ok(tokens.iter().map(convert::token).collect())
    }

    /// Revokes a token: its user's or an admin's to do. It stops working at once
    /// (the security cache is cleared with it).
    pub async fn revoke_token(&self, actor: &Actor, id: &str) -> Result<()> {
        let missing = || ServiceError::NotFound(Missing::Token(id.to_string()));
        let token = self.store.control().token(id).await?.ok_or_else(missing)?;
        policy::user_account(actor, &token.user, "revoke tokens")?;
        if !self.store.control().delete_token(&token.id).await? {
            return Err(missing());
        }
        self.cache.clear();
        Ok(())
    }

    // ---- roles

    pub async fn put_role(
        &self,
        actor: &Actor,
        env: &str,
        role: &str,
        req: api::admin::RoleDefinition,
    ) -> Result<api::admin::Role> {
        policy::admin(actor)?;
        let privileges: Privileges = req.privileges;
        if role.trim().is_empty() || role.chars().count() > MAX_ROLE_NAME_CHARS {
            return Err(ServiceError::Invalid(format!(
                "a role name must have 1 to {MAX_ROLE_NAME_CHARS} characters"
            )));
        }
        let catalog = self.store.env_db(env).await?.catalog();
        if let Some(entity) = privileges.keys().find(|e| catalog.entity(e).is_none()) {
            return Err(ServiceError::Invalid(format!(
                "role '{role}': there is no entity '{entity}' in environment '{env}'"
            )));
        }
        check_privileges(catalog.version, &privileges)
            .map_err(|m| ServiceError::Invalid(format!("role '{role}': {m}")))?;
        self.store
            .control()
            .put_role(env, role, &privileges)
            .await?;
        self.cache.clear();
        Ok(api::admin::Role {
            env: env.into(),
            name: role.into(),
            privileges,
        })
    }

    pub async fn role(&self, actor: &Actor, env: &str, role: &str) -> Result<api::admin::Role> {
        policy::admin(actor)?;
        let r = self.find_role(env, role).await?;
        Ok(api::admin::Role {
            env: r.env,
            name: r.name,
            privileges: r.privileges,
        })
    }

    async fn find_role(&self, env: &str, role: &str) -> Result<uplift_store::control::Role> {
        self.env(env).await?;
        self.store
            .control()
            .get_role(env, role)
            .await?
            .ok_or_else(|| {
                ServiceError::NotFound(Missing::Role {
                    env: env.into(),
                    role: role.into(),
                })
            })
    }

    pub async fn list_roles(
        &self,
        actor: &Actor,
        env: &str,
    ) -> Result<Vec<api::admin::RoleWithMembers>> {
        policy::admin(actor)?;
        self.env(env).await?;
        let mut members = self.store.control().roles_with_members(env).await?;
        let roles = self.store.control().list_roles(env).await?;
        Ok(roles
            .into_iter()
            .map(|r| api::admin::RoleWithMembers {
                members: members.remove(&r.name),
                name: r.name,
                privileges: r.privileges,
            })
            .collect())
    }

    pub async fn add_member(
        &self,
        actor: &Actor,
        env: &str,
        role: &str,
        req: api::admin::NewMember,
    ) -> Result<api::admin::Membership> {
        policy::admin(actor)?;
        self.find_role(env, role).await?;
        self.find_user(&req.user).await?;
        self.store
            .control()
            .add_member(env, role, &req.user)
            .await?;
        self.cache.clear();
        Ok(api::admin::Membership {
            env: env.into(),
            role: role.into(),
            user: req.user.to_lowercase(),
        })
    }
}
