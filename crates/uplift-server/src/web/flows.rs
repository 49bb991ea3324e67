//! A maker's flows with their runs (each step's inputs, outputs and error), and the
//! approvals inbox with approve and reject.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use uplift_api::flows::{Answer, ApprovalStatus, Outcome};

use super::pages::{Chrome, chrome, words};
use super::player::RunPage;
use super::session::Signed;
use super::{WebError, render, see_other};
use crate::state::AppState;

struct RunRow {
    link: String,
    status: String,
    created_at: String,
    error: String,
}

struct FlowRow {
    name: String,
    state: String,
    trigger: String,
    runs: Vec<RunRow>,
}

#[derive(Template)]
#[template(path = "web/flows.html")]
struct FlowsPage {
    chrome: Option<Chrome>,
    groups: Vec<(String, Vec<FlowRow>)>,
}

/// `GET /maker/flows`: the caller's flows and their newest runs.
pub async fn flows(State(s): State<AppState>, signed: Signed) -> Result<Response, WebError> {
    let mine = s.services.my_flows(&signed.session.actor).await?;
    let groups = mine
        .into_iter()
        .map(|g| {
            let env = g.env;
            let rows = (g.flows.into_iter())
                .map(|(f, runs)| FlowRow {
                    trigger: f.definition["trigger"]["kind"]
                        .as_str()
                        .unwrap_or_default()
                        .replace('_', " "),
                    state: words(&f.state),
                    runs: (runs.into_iter())
                        .map(|r| RunRow {
                            link: format!("/maker/environments/{env}/flows/{}/runs/{}", f.id, r.id),
                            status: words(&r.status),
                            created_at: r.created_at,
                            error: r.error.unwrap_or_default(),
                        })
                        .collect(),
                    name: f.name,
                })
                .collect();
            (env, rows)
        })
        .collect();
    Ok(render(&FlowsPage {
        chrome: chrome(&signed.session, "flows"),
        groups,
    }))
}

/// `GET /maker/environments/{env}/flows/{flow}/runs/{run}`: every step of a run.
pub async fn run(
    State(s): State<AppState>,
    signed: Signed,
    Path((env, flow, run)): Path<(String, String, String)>,
) -> Result<Response, WebError> {
    let r = s
        .services
        .run(&signed.session.actor, &env, &flow, &run)
        .await?;
    let heading = format!("Run {run}");
    Ok(render(&RunPage::of(
        chrome(&signed.session, "flows"),
        heading,
        r,
    )))
}

struct ApprovalRow {
    action: String,
    title: String,
    details: String,
    created_at: String,
    pending: bool,
    outcome: String,
}

#[derive(Template)]
#[template(path = "web/approvals.html")]
struct ApprovalsPage {
    chrome: Option<Chrome>,
    csrf: String,
    groups: Vec<(String, Vec<ApprovalRow>)>,
}

/// `GET /approvals`: the approvals the caller is asked to answer.
pub async fn approvals(State(s): State<AppState>, signed: Signed) -> Result<Response, WebError> {
    let mine = s.services.my_approvals(&signed.session.actor).await?;
    let groups = mine
        .into_iter()
        .map(|g| {
            let env = g.env;
            let rows = (g.approvals.into_iter())
                .map(|a| ApprovalRow {
                    action: format!("/approvals/{env}/{}", a.id),
                    pending: a.status == ApprovalStatus::Pending,
                    outcome: match (&a.outcome, &a.responder) {
                        (Some(o), Some(by)) => format!("{} by {by}", words(o)),
                        _ => words(&a.status),
                    },
                    title: a.title,
                    details: a.details,
                    created_at: a.created_at,
                })
                .collect();
            (env, rows)
        })
        .collect();
    Ok(render(&ApprovalsPage {
        chrome: chrome(&signed.session, "approvals"),
        csrf: signed.session.csrf.clone(),
        groups,
    }))
}

#[derive(Deserialize)]
pub struct AnswerForm {
    #[serde(default)]
    csrf: String,
    outcome: Outcome,
    #[serde(default)]
    comment: String,
}

/// `POST /approvals/{env}/{id}`: approve or reject; the run waiting on it goes on.
pub async fn answer(
    State(s): State<AppState>,
    signed: Signed,
    Path((env, id)): Path<(String, String)>,
    Form(f): Form<AnswerForm>,
) -> Result<Response, WebError> {
    signed.session.check_form(&f.csrf)?;
    let answer = Answer {
        outcome: f.outcome,
        comment: f.comment,
    };
    s.services
        .answer_approval(&signed.session.actor, &env, &id, answer)
        .await?;
    Ok(see_other("/approvals"))
}
