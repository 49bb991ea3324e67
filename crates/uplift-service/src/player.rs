//! The app player: runs an app's views and loads its forms on the database the app is
//! bound to, with the actor's own rights on that database, through the same data
//! session as the data API. The published version plays unless the draft is asked
//! for, which only those who may edit the app may.

use serde_json::json;
use uplift_api as api;
use uplift_model::flow::Trigger;
use uplift_store::control::Bound;

use crate::auth::Actor;
use crate::data::query::Options;
use crate::data::{DataSession, Page, Record};
use crate::error::{Missing, Result, ServiceError};
use crate::{Services, apps, policy};

/// Which version of an app to play, and the paging of a view.
#[derive(Debug, Clone, Default)]
pub struct Play {
    pub draft: bool,
    pub top: Option<u64>,
    pub skiptoken: Option<String>,
    pub count: bool,
    /// The client's `odata.maxpagesize`.
    pub max_page_size: Option<u64>,
}

/// A page of a view.
#[derive(Debug, Clone)]
pub struct ViewPage {
    pub view: String,
    pub columns: Vec<String>,
    pub page: Page,
}

impl Services {
    /// The version of the app to play.
    async fn playing(&self, actor: &Actor, env: &str, app: &str, draft: bool) -> Result<Bound> {
        let record = self.find_app(env, app).await?;
        if draft {
            policy::play_draft(actor, apps::owned(&record))?;
            return record
                .draft
                .ok_or_else(|| ServiceError::NotFound(Missing::Draft { app: app.into() }));
        }
        record
            .published
            .map(|v| v.bound)
            .ok_or_else(|| ServiceError::NotFound(Missing::PublishedVersion { app: app.into() }))
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
        let bound = self.playing(actor, env, app, play.draft).await?;
        let v = bound
            .definition
            .views
            .iter()
            .find(|v| v.name == view)
            .ok_or_else(|| {
                ServiceError::NotFound(Missing::View {
                    app: app.into(),
                    view: view.into(),
                })
            })?
            .clone();
        let data = self.open_bound(actor, env, &bound.database).await?;
        let entity = data.entity_named(&v.entity, || {
            format!("view '{view}' reads entity '{}'", v.entity)
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
        if let Some(o) = &v.orderby {
            opts.set("$orderby", o, entity, catalog)?;
        }
        opts.top = play.top;
        opts.skiptoken = play.skiptoken.clone();
        opts.count = play.count;
        let set = entity.set_name.clone();
        let page = data.list(&set, &opts, play.max_page_size).await?;
        Ok(ViewPage {
            view: view.into(),
            columns: v.columns.clone(),
            page,
        })
    }

    /// The form's fields of one record.
    pub async fn load_form(
        &self,
        actor: &Actor,
        env: &str,
        app: &str,
        form: &str,
        id: &str,
        draft: bool,
    ) -> Result<Record> {
        let bound = self.playing(actor, env, app, draft).await?;
        let f = bound
            .definition
            .forms
            .iter()
            .find(|f| f.name == form)
            .ok_or_else(|| {
                ServiceError::NotFound(Missing::Form {
                    app: app.into(),
                    form: form.into(),
                })
            })?
            .clone();
        let data = self.open_bound(actor, env, &bound.database).await?;
        let entity = data.entity_named(&f.entity, || {
            format!("form '{form}' shows entity '{}'", f.entity)
        })?;
        let mut opts = Options::default();
        opts.set("$select", &f.fields.join(","), entity, data.catalog())?;
        let set = entity.set_name.clone();
        data.get(&set, id, &opts).await
    }

    /// Runs an app command on a record: the record is read with the actor's rights and
    /// handed to the command's flow as `trigger.record`.
    pub async fn run_command(
        &self,
        actor: &Actor,
        env: &str,
        app: &str,
        command: &str,
        draft: bool,
        req: api::apps::CommandRun,
    ) -> Result<api::apps::RunStarted> {
        let bound = self.playing(actor, env, app, draft).await?;
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
