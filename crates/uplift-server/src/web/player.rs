//! The app player in the browser: the apps shared with the caller, an app's views
//! (paged, sortable by a column, the view's own filter), its forms (read and saved;
//! a refused value is shown at its field) and its commands (the run's outcome shown).
//! `?copy=true` plays an app's upgrade copy on the test database, which every such
//! page marks. Everything goes through the player's services, as the API's player.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value as Json;
use uplift_service::ServiceError;
use uplift_service::form::{FormInput, FormView, Input, ViewScreen};
use uplift_service::player::{Play, Version};

use super::pages::{Chrome, chrome, words};
use super::session::Signed;
use super::{WebError, render, see_other};
use crate::state::AppState;

/// Rows a view page shows.
const VIEW_PAGE_ROWS: u64 = 25;

/// Which version of the app plays: `?copy=true` for its upgrade copy.
#[derive(Deserialize, Default)]
pub struct Which {
    #[serde(default)]
    copy: bool,
}

fn version(copy: bool) -> Version {
    if copy {
        Version::Upgrade
    } else {
        Version::Published
    }
}

/// The query that keeps the version on every link of the app's pages.
fn keep(copy: bool) -> &'static str {
    if copy { "?copy=true" } else { "" }
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub(super) fn path_enc(s: &str) -> String {
    // Path segments: a space must be %20, not '+'.
    enc(s).replace('+', "%20")
}

/// An app in the list: its link, name and description.
struct AppLink {
    link: String,
    name: String,
    about: String,
}

#[derive(Template)]
#[template(path = "web/apps.html")]
struct AppsPage {
    chrome: Option<Chrome>,
    groups: Vec<(String, Vec<AppLink>)>,
}

/// `GET /apps`: the apps shared with the caller, per environment.
pub async fn apps(State(s): State<AppState>, signed: Signed) -> Result<Response, WebError> {
    let shared = s.services.shared_apps(&signed.session.actor).await?;
    let groups = shared
        .into_iter()
        .map(|g| {
            let env = g.env;
            let apps = (g.apps.into_iter())
                .map(|(name, about)| AppLink {
                    link: format!("/apps/{env}/{}", path_enc(&name)),
                    name,
                    about,
                })
                .collect();
            (env, apps)
        })
        .collect();
    Ok(render(&AppsPage {
        chrome: chrome(&signed.session, "apps"),
        groups,
    }))
}

#[derive(Template)]
#[template(path = "web/app.html")]
struct AppPage {
    chrome: Option<Chrome>,
    env: String,
    name: String,
    description: String,
    on_test: bool,
    /// Each view's link and name.
    views: Vec<(String, String, String)>,
    commands: Vec<(String, String)>,
}

/// `GET /apps/{env}/{app}`: the app's views and commands.
pub async fn app(
    State(s): State<AppState>,
    signed: Signed,
    Path((env, app)): Path<(String, String)>,
    Query(w): Query<Which>,
) -> Result<Response, WebError> {
    let actor = &signed.session.actor;
    let h = s
        .services
        .app_home(actor, &env, &app, version(w.copy))
        .await?;
    let base = format!("/apps/{env}/{}", path_enc(&app));
    Ok(render(&AppPage {
        chrome: chrome(&signed.session, "apps"),
        views: (h.views.into_iter())
            .map(|(v, e)| {
                (
                    format!("{base}/views/{}{}", path_enc(&v), keep(w.copy)),
                    v,
                    e,
                )
            })
            .collect(),
        commands: h.commands,
        env,
        name: h.name,
        description: h.description,
        on_test: h.on_test,
    }))
}

#[derive(Deserialize, Default)]
pub struct ViewQuery {
    #[serde(default)]
    copy: bool,
    /// A column to order by, in place of the view's order.
    sort: Option<String>,
    #[serde(default)]
    desc: bool,
    /// The next page's position.
    after: Option<String>,
}

struct Column {
    name: String,
    /// The link that orders by it (the other way round when it is the current order);
    /// none for a column that cannot be sorted by (a whole Address, an image).
    sort_link: Option<String>,
    /// `ascending`/`descending` when the page is ordered by it, for `aria-sort`.
    sorted: &'static str,
}

struct Row {
    cells: Vec<String>,
    open: Option<String>,
    id: String,
}

#[derive(Template)]
#[template(path = "web/view.html")]
struct ViewPage {
    chrome: Option<Chrome>,
    csrf: String,
    env: String,
    app: String,
    app_link: String,
    view: String,
    filter: String,
    on_test: bool,
    columns: Vec<Column>,
    rows: Vec<Row>,
    count: Option<u64>,
    first: Option<String>,
    next: Option<String>,
    commands: Vec<(String, String)>,
    copy: bool,
}

/// `GET /apps/{env}/{app}/views/{view}`: one page of the view.
pub async fn view(
    State(s): State<AppState>,
    signed: Signed,
    Path((env, app, view)): Path<(String, String, String)>,
    Query(q): Query<ViewQuery>,
) -> Result<Response, WebError> {
    let play = Play {
        version: version(q.copy),
        skiptoken: q.after.clone(),
        count: true,
        max_page_size: Some(VIEW_PAGE_ROWS),
        ..Play::default()
    };
    let sort = q.sort.clone().map(|c| (c, q.desc));
    let v = s
        .services
        .view_screen(&signed.session.actor, &env, (&app, &view), play, sort)
        .await?;
    Ok(render(&view_page(&signed, &env, &app, v, &q)))
}

fn view_page(signed: &Signed, env: &str, app: &str, v: ViewScreen, q: &ViewQuery) -> ViewPage {
    let base = format!("/apps/{env}/{}", path_enc(app));
    let here = format!("{base}/views/{}", path_enc(&v.view.name));
    let copy = if q.copy { "&copy=true" } else { "" };
    let current = q.sort.as_deref().filter(|c| {
        let at = v.view.columns.iter().position(|x| x == c);
        at.is_some_and(|i| v.sortable[i])
    });
    let columns = (v.view.columns.iter().zip(&v.sortable))
        .map(|(c, sortable)| {
            let on = current == Some(c.as_str());
            Column {
                sort_link: sortable
                    .then(|| format!("{here}?sort={}&desc={}{copy}", enc(c), on && !q.desc)),
                sorted: match (on, q.desc) {
                    (false, _) => "",
                    (true, false) => "ascending",
                    (true, true) => "descending",
                },
                name: c.clone(),
            }
        })
        .collect();
    let rows = (v.page.page.values.iter())
        .map(|r| {
            let id = r.get("id").and_then(Json::as_str).unwrap_or_default();
            Row {
                cells: v.view.columns.iter().map(|c| cell(r, c)).collect(),
                open: (v.form.as_ref())
                    .map(|f| format!("{base}/forms/{}/{id}{}", path_enc(f), keep(q.copy))),
                id: id.to_string(),
            }
        })
        .collect();
    let kept = match current {
        Some(c) => format!("?sort={}&desc={}{copy}", enc(c), q.desc),
        None => keep(q.copy).to_string(),
    };
    let sep = if kept.is_empty() { "?" } else { "&" };
    let next = (v.page.page.next.iter().flatten())
        .find(|(k, _)| k == "$skiptoken")
        .map(|(_, t)| format!("{here}{kept}{sep}after={}", enc(t)));
    ViewPage {
        chrome: chrome(&signed.session, "apps"),
        csrf: signed.session.csrf.clone(),
        app_link: format!("{base}{}", keep(q.copy)),
        first: q.after.as_ref().map(|_| format!("{here}{kept}")),
        next,
        count: v.page.page.count,
        commands: (v.commands.into_iter())
            .map(|label| (format!("{base}/commands/{}", path_enc(&label)), label))
            .collect(),
        filter: v.view.filter.clone().unwrap_or_default(),
        on_test: v.on_test,
        copy: q.copy,
        columns,
        rows,
        env: env.to_string(),
        app: app.to_string(),
        view: v.view.name,
    }
}

/// A column's value in a row, as text: a part of a complex value by its path
/// (`Address/city`), a complex value as its parts.
fn cell(row: &serde_json::Map<String, Json>, column: &str) -> String {
    let mut path = column.split('/');
    let mut v = path.next().and_then(|p| row.get(p));
    for p in path {
        v = v.and_then(|x| x.get(p));
    }
    match v {
        None | Some(Json::Null) => String::new(),
        Some(Json::String(s)) => s.clone(),
        Some(Json::Object(o)) => o
            .iter()
            .filter(|(_, x)| !x.is_null())
            .map(|(k, x)| format!("{k}: {}", x.as_str().map_or(x.to_string(), String::from)))
            .collect::<Vec<_>>()
            .join(", "),
        Some(other) => other.to_string(),
    }
}

struct Field {
    /// The input's id and posted name.
    id: String,
    label: String,
    kind: &'static str,
    required: bool,
    value: String,
    options: Vec<(String, String)>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "web/form.html")]
struct FormPage {
    chrome: Option<Chrome>,
    csrf: String,
    env: String,
    app: String,
    app_link: String,
    form: String,
    entity: String,
    id: String,
    etag: String,
    on_test: bool,
    fields: Vec<Field>,
    action: String,
    commands: Vec<(String, String)>,
    saved: bool,
    error: Option<String>,
    copy: bool,
}

/// The posted name of an input (`f:Address/city`), apart from the form's own fields.
const FIELD_PREFIX: &str = "f:";

fn field_of(i: FormInput, error: Option<&(String, String)>) -> Field {
    let top = i.name.split('/').next().unwrap_or(&i.name).to_string();
    let (kind, options) = match i.input {
        Input::Text => ("text", Vec::new()),
        Input::Multiline => ("multiline", Vec::new()),
        Input::Whole | Input::Decimal => ("number", Vec::new()),
        Input::Choice(o) => ("choice", o),
        Input::YesNo => (
            "choice",
            vec![("true".into(), "Yes".into()), ("false".into(), "No".into())],
        ),
        Input::Date => ("date", Vec::new()),
        Input::Instant => ("instant", Vec::new()),
        Input::Lookup { .. } => ("lookup", Vec::new()),
        Input::ReadOnly => ("readonly", Vec::new()),
    };
    Field {
        id: format!("{FIELD_PREFIX}{}", i.name),
        label: i.name.replace('/', " › "),
        required: i.required,
        error: error.filter(|(f, _)| *f == top).map(|(_, m)| m.clone()),
        value: i.value,
        kind,
        options,
    }
}

/// What a refused save says: at a field (its name and the words), or above the form.
#[derive(Default)]
struct Said {
    field: Option<(String, String)>,
    form: Option<String>,
}

/// The form page for `view`, with `posted` values kept in place of the record's and
/// what was refused said where it belongs.
fn form_page(
    signed: &Signed,
    env: &str,
    view: FormView,
    copy: bool,
    (posted, said): (Option<&[(String, String)]>, Said),
) -> FormPage {
    let (mut field_error, mut error) = (said.field, said.form);
    let at_a_field = |f: &str| {
        view.inputs
            .iter()
            .any(|i| i.name.split('/').next() == Some(f))
    };
    if let Some((f, m)) = field_error.take() {
        // A field the form has no input for: said above the form.
        match at_a_field(&f) {
            true => field_error = Some((f, m)),
            false => error = Some(m),
        }
    }
    let given = |k: &str| {
        posted
            .and_then(|p| p.iter().find(|(n, _)| n == k))
            .map(|(_, v)| v)
    };
    // The typed values are kept, and with them the ETag they were typed against, so a
    // save after fixing them still refuses a record changed meanwhile.
    let etag = given("etag").cloned().or(view.etag).unwrap_or_default();
    let base = format!("/apps/{env}/{}", path_enc(&view.app));
    let fields = (view.inputs.into_iter())
        .map(|mut i| {
            let key = format!("{FIELD_PREFIX}{}", i.name);
            if let Some(v) = posted.and_then(|p| p.iter().find(|(k, _)| *k == key)) {
                i.value = v.1.clone();
            }
            field_of(i, field_error.as_ref())
        })
        .collect();
    FormPage {
        chrome: chrome(&signed.session, "apps"),
        csrf: signed.session.csrf.clone(),
        app_link: format!("{base}{}", keep(copy)),
        action: format!(
            "{base}/forms/{}/{}{}",
            path_enc(&view.form),
            view.id,
            keep(copy)
        ),
        commands: (view.commands.into_iter())
            .map(|label| (format!("{base}/commands/{}", path_enc(&label)), label))
            .collect(),
        env: env.to_string(),
        app: view.app,
        form: view.form,
        entity: view.entity,
        id: view.id,
        etag,
        on_test: view.on_test,
        saved: false,
        error,
        fields,
        copy,
    }
}

#[derive(Deserialize, Default)]
pub struct FormQuery {
    #[serde(default)]
    copy: bool,
    #[serde(default)]
    saved: bool,
}

/// `GET /apps/{env}/{app}/forms/{form}/{id}`.
pub async fn form(
    State(s): State<AppState>,
    signed: Signed,
    Path((env, app, form, id)): Path<(String, String, String, String)>,
    Query(q): Query<FormQuery>,
) -> Result<Response, WebError> {
    let actor = &signed.session.actor;
    let v = s
        .services
        .form_view(actor, &env, (&app, &form, &id), version(q.copy))
        .await?;
    let mut page = form_page(&signed, &env, v, q.copy, (None, Said::default()));
    page.saved = q.saved;
    Ok(render(&page))
}

/// `POST /apps/{env}/{app}/forms/{form}/{id}`: the record saved, or the form again
/// with what was refused at its field and the values as typed.
pub async fn save(
    State(s): State<AppState>,
    signed: Signed,
    Path((env, app, form, id)): Path<(String, String, String, String)>,
    Query(q): Query<Which>,
    Form(body): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let given = |k: &str| body.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    signed
        .session
        .check_form(given("csrf").unwrap_or_default())?;
    let posted: Vec<(String, String)> = (body.iter())
        .filter_map(|(k, v)| Some((k.strip_prefix(FIELD_PREFIX)?.to_string(), v.clone())))
        .collect();
    let actor = &signed.session.actor;
    let services = &s.services;
    let key = (app.as_str(), form.as_str(), id.as_str());
    let saved = services
        .save_form(actor, &env, key, version(q.copy), (&posted, given("etag")))
        .await;
    let (status, said) = match saved {
        Ok(_) => {
            let to = format!(
                "/apps/{env}/{}/forms/{}/{id}?saved=true{}",
                path_enc(&app),
                path_enc(&form),
                if q.copy { "&copy=true" } else { "" }
            );
            return Ok(see_other(to));
        }
        Err(ServiceError::Field { field, message }) => (
            StatusCode::BAD_REQUEST,
            Said {
                field: Some((field, message)),
                form: None,
            },
        ),
        Err(e @ ServiceError::PreconditionFailed(_)) => (
            StatusCode::PRECONDITION_FAILED,
            Said {
                field: None,
                form: Some(format!(
                    "{e}: someone saved this record after you opened it; here it is as it is now: make your change again"
                )),
            },
        ),
        Err(ServiceError::Invalid(m)) => (
            StatusCode::BAD_REQUEST,
            Said {
                field: None,
                form: Some(m),
            },
        ),
        Err(e) => return Err(e.into()),
    };
    let v = services
        .form_view(actor, &env, key, version(q.copy))
        .await?;
    // After a 412 the record as it is now is shown (and its ETag), to change again.
    let stale = status == StatusCode::PRECONDITION_FAILED;
    let typed = (!stale).then_some(body.as_slice());
    let page = form_page(&signed, &env, v, q.copy, (typed, said));
    Ok((status, render(&page)).into_response())
}

#[derive(Deserialize)]
pub struct CommandForm {
    #[serde(default)]
    csrf: String,
    record: String,
    #[serde(default)]
    copy: bool,
}

/// `POST /apps/{env}/{app}/commands/{command}`: the command's flow started on the
/// record; the browser goes to the run's page.
pub async fn command(
    State(s): State<AppState>,
    signed: Signed,
    Path((env, app, command)): Path<(String, String, String)>,
    Form(f): Form<CommandForm>,
) -> Result<Response, WebError> {
    signed.session.check_form(&f.csrf)?;
    let req = uplift_api::apps::CommandRun { record: f.record };
    let started = s
        .services
        .run_command(
            &signed.session.actor,
            &env,
            &app,
            &command,
            version(f.copy),
            req,
        )
        .await?;
    Ok(see_other(format!("/runs/{env}/{}", started.run)))
}

pub struct Step {
    pub name: String,
    pub status: String,
    pub inputs: String,
    pub outputs: String,
    pub error: String,
}

/// A run's steps, from the run's `steps` document.
pub fn steps_of(steps: &Json) -> Vec<Step> {
    let pretty = |v: &Json| match v {
        Json::Null => String::new(),
        v => serde_json::to_string_pretty(v).unwrap_or_default(),
    };
    (steps.as_array().into_iter().flatten())
        .map(|s| Step {
            name: s["name"].as_str().unwrap_or_default().to_string(),
            status: s["status"].as_str().unwrap_or_default().to_string(),
            inputs: pretty(&s["inputs"]),
            outputs: pretty(&s["outputs"]),
            error: s["error"].as_str().unwrap_or_default().to_string(),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "web/run.html")]
pub struct RunPage {
    pub chrome: Option<Chrome>,
    pub heading: String,
    pub status: String,
    /// Queued or running: the page refreshes itself (not while it waits on an
    /// approval, which can take days).
    pub live: bool,
    pub error: String,
    pub steps: Vec<Step>,
    pub created_at: String,
    pub finished_at: String,
    /// A dry run on the test database: nothing it wrote was kept.
    pub dry: bool,
}

impl RunPage {
    pub fn of(chrome: Option<Chrome>, heading: String, r: uplift_api::flows::Run) -> RunPage {
        use uplift_api::flows::RunStatus;
        RunPage {
            chrome,
            heading,
            live: matches!(r.status, RunStatus::Queued | RunStatus::Running),
            status: words(&r.status),
            error: r.error.unwrap_or_default(),
            steps: steps_of(&r.steps),
            created_at: r.created_at,
            finished_at: r.finished_at.unwrap_or_default(),
            dry: r.trigger.get("dry_run").is_some(),
        }
    }
}

/// `GET /runs/{env}/{run}`: a run its starter or its flow's makers may read; the page
/// reloads itself while the run is queued or running.
pub async fn run(
    State(s): State<AppState>,
    signed: Signed,
    Path((env, run)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let r = s
        .services
        .started_run(&signed.session.actor, &env, &run)
        .await?;
    let heading = format!("Run {run}");
    Ok(render(&RunPage::of(
        chrome(&signed.session, "apps"),
        heading,
        r,
    )))
}
