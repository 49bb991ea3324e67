//! Apps: makers save drafts and publish immutable versions; everyone who may use the
//! environment reads the published version.

use std::collections::BTreeMap;

use uplift_api as api;
use uplift_model::app::{AppDef, validate};
use uplift_store::control::AppRecord;

use crate::auth::Actor;
use crate::error::{ItemKind, Missing, Result, ServiceError, invalid};
use crate::policy::{self, Owned};
use crate::{Services, convert};

pub(crate) fn owned(app: &AppRecord) -> Owned<'_> {
    Owned {
        kind: ItemKind::App,
        name: &app.name,
        owner: &app.owner,
        editors: &app.editors,
    }
}

fn view(actor: &Actor, app: &AppRecord) -> api::apps::App {
    convert::app(app, policy::sees_inside(actor, owned(app)))
}

impl Services {
    pub(crate) async fn find_app(&self, env: &str, name: &str) -> Result<AppRecord> {
        self.store.env_db(env).await?;
        self.store.control().app(env, name).await?.ok_or_else(|| {
            ServiceError::NotFound(Missing::App {
                env: env.into(),
                app: name.into(),
            })
        })
    }

    /// The apps `actor` may read: all of them for those who read the environment's
    /// catalog, otherwise the ones they own or edit.
    pub async fn list_apps(&self, actor: &Actor, env: &str) -> Result<Vec<api::apps::App>> {
        self.store.env_db(env).await?;
        let everything = match self.require_catalog(actor, env).await {
            Ok(_) => true,
            Err(ServiceError::Forbidden(_)) => false,
            Err(e) => return Err(e),
        };
        let apps = self.store.control().apps(env).await?;
        Ok(apps
            .iter()
            .filter(|a| everything || policy::sees_inside(actor, owned(a)))
            .map(|a| view(actor, a))
            .collect())
    }

    pub async fn app(&self, actor: &Actor, env: &str, name: &str) -> Result<api::apps::App> {
        let app = self.find_app(env, name).await?;
        self.require_app_definition(actor, env, &app).await?;
        Ok(view(actor, &app))
    }

    /// An app's definition is for its owner and editors and those who read the
    /// environment's catalog.
    async fn require_app_definition(
        &self,
        actor: &Actor,
        env: &str,
        app: &AppRecord,
    ) -> Result<()> {
        if !policy::sees_inside(actor, owned(app)) {
            self.require_catalog(actor, env).await?;
        }
        Ok(())
    }

    /// Saves a draft. Creating an app takes a maker or an admin; changing one takes
    /// its owner, an editor or an admin. A new draft keeps the binding of the one
    /// before it; a new app is bound to production.
    pub async fn save_app_draft(
        &self,
        actor: &Actor,
        env: &str,
        name: &str,
        definition: api::Document,
    ) -> Result<api::apps::App> {
        policy::maker(actor)?;
        let def: AppDef = serde_json::from_value(definition)
            .map_err(|e| ServiceError::Invalid(format!("request body: {e}")))?;
        if def.name != name {
            return Err(ServiceError::Invalid(format!(
                "the definition is named '{}' but was sent to '{name}'",
                def.name
            )));
        }
        let rec = self.env(env).await?;
        let existing = self.store.control().app(env, name).await?;
        if let Some(app) = &existing {
            policy::edit(actor, owned(app))?;
        }
        let current = existing.as_ref().map(owned);
        policy::set_ownership(
            actor,
            current,
            ItemKind::App,
            name,
            &def.owner,
            &def.editors,
        )?;
        let database = existing
            .as_ref()
            .and_then(|a| a.draft.as_ref().or(a.published.as_ref().map(|p| &p.bound)))
            .map_or(rec.database, |b| b.database.clone());
        let db = self.store.bound(env, &database).await?;
        let flows: BTreeMap<String, uplift_model::flow::Trigger> = self
            .store
            .control()
            .flows(env)
            .await?
            .into_iter()
            .map(|f| (f.id, f.definition.trigger))
            .collect();
        validate(&def, &db.catalog(), &|id| flows.get(id).cloned()).map_err(|e| invalid(&e))?;
        self.check_people(&def.owner, &def.editors).await?;
        self.store
            .control()
            .save_app_draft(env, &def, &database)
            .await?;
        self.app(actor, env, name).await
    }

    /// Publishes the draft as version n+1.
    pub async fn publish_app(
        &self,
        actor: &Actor,
        env: &str,
        name: &str,
    ) -> Result<api::apps::Published> {
        let app = self.find_app(env, name).await?;
        policy::edit(actor, owned(&app))?;
        let version = self
            .store
            .control()
            .publish_app(env, name, actor.email())
            .await?;
        Ok(api::apps::Published {
            version,
            app: self.app(actor, env, name).await?,
        })
    }

    pub async fn app_version(
        &self,
        actor: &Actor,
        env: &str,
        name: &str,
        version: i64,
    ) -> Result<api::apps::AppVersion> {
        let app = self.find_app(env, name).await?;
        self.require_app_definition(actor, env, &app).await?;
        let v = self
            .store
            .control()
            .app_version(env, name, Some(version))
            .await?
            .ok_or_else(|| {
                ServiceError::NotFound(Missing::AppVersion {
                    app: name.into(),
                    version,
                })
            })?;
        Ok(convert::app_version(&v))
    }
}
