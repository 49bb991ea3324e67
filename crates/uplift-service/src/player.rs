//! The app player: runs an app's views and loads its forms on the database the app is
//! bound to, with the actor's own rights on that database, through the same data
//! session as the data API. The published version plays unless the draft or the
//! upgrade copy (step 2's, bound to the test database) is asked for, which only those
//! who may edit the app may.

use serde_json::json;
use uplift_api as api;
use uplift_model::flow::Trigger;
use uplift_store::control::{AppRecord, Bound};

use crate::auth::Actor;
use crate::data::query::Options;
use crate::data::{DataSession, Page, Record};
use crate::error::Denial;
use crate::error::{Missing, Result, ServiceError};
use crate::policy::Database;
use crate::{Services, apps, policy};

/// Which version of an app plays.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Version {
    #[default]
    Published,
    Draft,
    /// The app's copy in the environment's upgrade, on the test database.
    Upgrade,
}

/// Which version of an app to play, and the paging of a view.
#[derive(Debug, Clone, Default)]
pub struct Play {
    pub version: Version,
    pub top: Option<u64>,
    pub skiptoken: Option<String>,
    pub count: bool,
    /// The client's `odata.maxpagesize`.
    pub max_page_size: Option<u64>,
    /// An order the player chose (a column header clicked), in place of the view's.
    pub orderby: Option<String>,
}

/// A page of a view.
#[derive(Debug, Clone)]
pub struct ViewPage {
    pub view: String,
    pub columns: Vec<String>,
    pub page: Page,
}

impl Services {
    /// The version of the app to play: the published one for those it is shared with
    /// ([`shared_with`]), the draft or the upgrade copy for its makers.
    pub(crate) async fn playing(
        &self,
        actor: &Actor,
        env: &str,
        app: &str,
        version: Version,
    ) -> Result<Bound> {
        let record = self.find_app(env, app).await?;
        match version {
            Version::Published => {
                let Some(published) = &record.published else {
                    let app = app.into();
                    return Err(ServiceError::NotFound(Missing::PublishedVersion { app }));
                };
                let bound = published.bound.clone();
                self.require_shared(actor, env, &record).await?;
                self.app_used(env, app).await;
                Ok(bound)
            }
            Version::Draft => {
                policy::play_draft(actor, apps::owned(&record))?;
                record
                    .draft
                    .ok_or_else(|| ServiceError::NotFound(Missing::Draft { app: app.into() }))
            }
            Version::Upgrade => {
                policy::play_draft(actor, apps::owned(&record))?;
                self.upgrade_copy(env, app).await
            }
        }
    }

    /// Records that the app's users use it (step 2's `last_used_at`). Not recording
    /// it never fails the play it came with.
    async fn app_used(&self, env: &str, app: &str) {
        if !self.usage.due(env, app, std::time::Instant::now()) {
            return;
        }
        if let Err(e) = self.store.control().app_used(env, app).await {
            tracing::warn!(env, app, error = %e, "could not record an app's use");
        }
    }

    /// A page of one of the app's views: the view's own columns, filter and order;
    /// the caller only pages it.
    pub async fn play_view(
        &self,
        actor: &Actor,
        env: &str,
        app: &str,
        view: &str,
        play: &Play,
    ) -> Result<ViewPage> {
        let bound = self.playing(actor, env, app, play.version).await?;
        self.view_of(actor, env, &bound, view, play).await
    }

    /// A page of view `view` of `bound` (any version of an app, or a copy being
    /// verified), read with `actor`'s rights.
    pub(crate) async fn view_of(
        &self,
        actor: &Actor,
        env: &str,
        bound: &Bound,
        view: &str,
        play: &Play,
    ) -> Result<ViewPage> {
        let v = view_def(bound, view)?;
        let data = self.open_bound(actor, env, &bound.database).await?;
        list_view(&data, v, play).await
    }

    /// The form's fields of one record.
    pub async fn load_form(
        &self,
        actor: &Actor,
        env: &str,
        app: &str,
        form: &str,
        id: &str,
        version: Version,
    ) -> Result<Record> {
        let bound = self.playing(actor, env, app, version).await?;
        self.form_of(actor, env, &bound, form, Some(id)).await
    }

    /// Form `form` of `bound` on record `id`, read with `actor`'s rights; without an
    /// id, on the first record of its entity the actor may read (a sample, for
    /// verification), or `NotFound` when there is none.
    pub(crate) async fn form_of(
        &self,
        actor: &Actor,
        env: &str,
        bound: &Bound,
        form: &str,
        id: Option<&str>,
    ) -> Result<Record> {
        let f = form_def(bound, form)?;
        let data = self.open_bound(actor, env, &bound.database).await?;
        read_form(&data, f, id).await
    }

    /// Runs an app command on a record: the record is read with the actor's rights and
    /// handed to the command's flow as `trigger.record`.
    pub async fn run_command(
        &self,
        actor: &Actor,
        env: &str,
        app: &str,
        command: &str,
        version: Version,
        req: api::apps::CommandRun,
    ) -> Result<api::apps::RunStarted> {
        let bound = self.playing(actor, env, app, version).await?;
        let c = bound
            .definition
            .commands
            .iter()
            .find(|c| c.label == command)
            .ok_or_else(|| {
                ServiceError::NotFound(Missing::Command {
                    app: app.into(),
                    command: command.into(),
                })
            })?
            .clone();
        let flow = self.find_flow(env, &c.flow).await?;
        let fits = matches!(&flow.definition.trigger, Trigger::AppCommand { entity } if *entity == c.entity);
        if !fits {
            return Err(ServiceError::Conflict(format!(
                "flow '{}' is not started by commands on '{}'",
                flow.definition.name, c.entity
            )));
        }
        crate::flows::refuse_off(&flow)?;
        let data = self.open_bound(actor, env, &bound.database).await?;
        let record = read_whole(&data, &c.entity, command, &req.record).await?;
        let trigger = json!({
            "kind": "app_command",
            "app": app,
            "command": command,
            "entity": c.entity,
            "record": record,
            "user": actor.email(),
            "time": crate::flows::now(),
        });
        let run = self.flows.start_run(&flow, trigger).await?;
        Ok(api::apps::RunStarted {
            run,
            flow: Some(flow.id),
        })
    }

    /// Refuses the published version of an app not shared with `actor`.
    async fn require_shared(&self, actor: &Actor, env: &str, app: &AppRecord) -> Result<()> {
        let data = self.open_data(actor, env, Database::Production).await?;
        match shared_with(actor, app, &data) {
            true => Ok(()),
            false => Err(ServiceError::Forbidden(Denial::NotShared {
                user: actor.email().into(),
                app: app.name.clone(),
            })),
        }
    }
}

/// Whether `app` is shared with `actor`: apps are shared through security roles, so
/// when their roles on `data` (production) read at least one entity its published
/// version works on (in a view, a form or a command); its owner, its editors and
/// admins always.
pub(crate) fn shared_with(actor: &Actor, app: &AppRecord, data: &DataSession) -> bool {
    if policy::sees_inside(actor, apps::owned(app)) {
        return true;
    }
    let Some(p) = &app.published else {
        return false;
    };
    let d = &p.bound.definition;
    let mut shows = (d.views.iter().map(|v| &v.entity))
        .chain(d.forms.iter().map(|f| &f.entity))
        .chain(d.commands.iter().map(|c| &c.entity));
    shows.any(|e| data.may(e, "Read"))
}

/// View `view` of the app version `bound`.
pub(crate) fn view_def<'b>(bound: &'b Bound, view: &str) -> Result<&'b uplift_model::app::View> {
    let d = &bound.definition;
    d.views.iter().find(|v| v.name == view).ok_or_else(|| {
        ServiceError::NotFound(Missing::View {
            app: d.name.clone(),
            view: view.into(),
        })
    })
}

/// A page of view `v` on `data`: its own columns, filter and order (or the player's),
/// paged as `play` asks.
pub(crate) async fn list_view(
    data: &DataSession,
    v: &uplift_model::app::View,
    play: &Play,
) -> Result<ViewPage> {
    let entity = data.entity_named(&v.entity, || {
        format!("view '{}' reads entity '{}'", v.name, v.entity)
    })?;
    let catalog = data.catalog();
    let mut select: Vec<&str> = v
        .columns
        .iter()
        .map(|c| c.split('/').next().unwrap_or(c))
        .collect();
    select.dedup();
    let mut opts = Options::default();
    opts.set("$select", &select.join(","), entity, catalog)?;
    if let Some(f) = &v.filter {
        opts.set("$filter", f, entity, catalog)?;
    }
    if let Some(o) = play.orderby.as_ref().or(v.orderby.as_ref()) {
        opts.set("$orderby", o, entity, catalog)?;
    }
    opts.top = play.top;
    opts.skiptoken = play.skiptoken.clone();
    opts.count = play.count;
    let set = entity.set_name.clone();
    let page = data.list(&set, &opts, play.max_page_size).await?;
    Ok(ViewPage {
        view: v.name.clone(),
        columns: v.columns.clone(),
        page,
    })
}

/// Form `f`'s fields of record `id` on `data`; without an id, of the first record of
/// its entity the session may read (a sample, for verification), or `NotFound` when
/// there is none.
pub(crate) async fn read_form(
    data: &DataSession,
    f: &uplift_model::app::Form,
    id: Option<&str>,
) -> Result<Record> {
    let entity = data.entity_named(&f.entity, || {
        format!("form '{}' shows entity '{}'", f.name, f.entity)
    })?;
    let set = entity.set_name.clone();
    let id = match id {
        Some(id) => id.to_string(),
        None => {
            let first = Options {
                top: Some(1),
                ..Options::default()
            };
            let page = data.list(&set, &first, None).await?;
            let sample = page.values.first().and_then(|r| r.get("id"));
            match sample.and_then(|v| v.as_str()) {
                Some(id) => id.to_string(),
                None => {
                    return Err(ServiceError::NotFound(Missing::Record {
                        entity: entity.name.clone(),
                        id: "(any)".into(),
                    }));
                }
            }
        }
    };
    let mut opts = Options::default();
    opts.set("$select", &f.fields.join(","), entity, data.catalog())?;
    data.get(&set, &id, &opts).await
}

/// Form `form` of the app version `bound`.
pub(crate) fn form_def<'b>(bound: &'b Bound, form: &str) -> Result<&'b uplift_model::app::Form> {
    let d = &bound.definition;
    d.forms.iter().find(|f| f.name == form).ok_or_else(|| {
        ServiceError::NotFound(Missing::Form {
            app: d.name.clone(),
            form: form.into(),
        })
    })
}

/// The whole record a command runs on, without annotations.
async fn read_whole(
    data: &DataSession,
    entity: &str,
    command: &str,
    id: &str,
) -> Result<serde_json::Map<String, serde_json::Value>> {
    let e = data.entity_named(entity, || {
        format!("command '{command}' works on entity '{entity}'")
    })?;
    let set = e.set_name.clone();
    let mut record = data.get(&set, id, &Options::default()).await?.value;
    record.retain(|k, _| !k.starts_with('@'));
    Ok(record)
}
