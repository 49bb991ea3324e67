//! A maker's item page: the findings of the item's copy (accept one with a reason),
//! the copy itself in an editor (saved and verified at once; what is wrong is said next
//! to it), verify again, sign off. Every change goes through the same service methods
//! as the API, so the same owner-or-editor rule holds.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use uplift_api::items::{ItemDetail, Resolution, Severity};
use uplift_service::ServiceError;
use uplift_upgrade::runner::ItemChange;

use super::pages::{Chrome, chrome, words};
use super::session::Signed;
use super::{CsrfForm, ReasonForm, WebError, render, see_other};
use crate::state::AppState;

struct FindingRow {
    id: String,
    severity: String,
    location: String,
    message: String,
    suggestion: String,
    pre_existing: bool,
    resolution: String,
    acceptable: bool,
}

#[derive(Template)]
#[template(path = "web/item.html")]
struct ItemPage {
    chrome: Option<Chrome>,
    csrf: String,
    env: String,
    base: String,
    name: String,
    kind: String,
    owner: String,
    status: String,
    verifying: bool,
    signed_off: String,
    findings: Vec<FindingRow>,
    copy: String,
    error: Option<String>,
    /// An app copy's page in the player, on the test database.
    player: Option<String>,
    /// A flow copy can be tried on a test record.
    flow: bool,
}

fn item_page(
    signed: &Signed,
    env: &str,
    d: ItemDetail,
    copy: Option<String>,
    error: Option<String>,
) -> ItemPage {
    let f = d.fields;
    let is_app = f.kind == uplift_api::items::ItemKind::App;
    ItemPage {
        player: is_app.then(|| {
            format!(
                "/apps/{env}/{}?copy=true",
                super::player::path_enc(&f.copy_id)
            )
        }),
        flow: !is_app,
        chrome: chrome(&signed.session, "maker"),
        csrf: signed.session.csrf.clone(),
        base: format!("/maker/environments/{env}/items/{}", f.id),
        env: env.to_string(),
        kind: words(&f.kind),
        status: words(&f.status),
        verifying: f.verifying,
        signed_off: match (&f.verified_by, &f.verified_at) {
            (Some(by), Some(at)) => format!("by {by} at {at}"),
            _ => "not yet".into(),
        },
        findings: d
            .findings
            .into_iter()
            .map(|x| FindingRow {
                acceptable: x.resolution == Resolution::Open && x.severity != Severity::Error,
                severity: words(&x.severity),
                resolution: match (&x.resolution, &x.reason) {
                    (Resolution::Accepted, Some(r)) => format!("accepted: {r}"),
                    (r, _) => words(r),
                },
                id: x.id,
                location: x.location,
                message: x.message,
                suggestion: x.suggestion.unwrap_or_default(),
                pre_existing: x.pre_existing,
            })
            .collect(),
        copy: copy.unwrap_or_else(|| serde_json::to_string_pretty(&d.copy).unwrap_or_default()),
        name: f.name,
        owner: f.owner,
        error,
    }
}

/// `GET /maker/environments/{env}/items/{item}`.
pub async fn page(
    State(s): State<AppState>,
    signed: Signed,
    Path((env, item)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let d = s
        .services
        .upgrade_item(&signed.session.actor, &env, &item)
        .await?;
    Ok(render(&item_page(&signed, &env, d, None, None)))
}

#[derive(Deserialize)]
pub struct CopyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    copy: String,
}

/// `POST …/copy`: the edited copy, saved and verified; a copy that does not parse or
/// does not validate is shown again with what is wrong, and nothing changes.
pub async fn save_copy(
    State(s): State<AppState>,
    signed: Signed,
    Path((env, item)): Path<(String, String)>,
    Form(f): Form<CopyForm>,
) -> Result<Response, WebError> {
    signed.session.check_form(&f.csrf)?;
    let actor = &signed.session.actor;
    let refused = match serde_json::from_str(&f.copy) {
        Err(e) => not_json(&f.copy, &e),
        Ok(copy) => match refusal(s.services.edit_upgrade_copy(actor, &env, &item, copy).await)? {
            None => return Ok(back(&env, &item)),
            Some(m) => m,
        },
    };
    let said = (StatusCode::BAD_REQUEST, refused);
    said_on_page(&s, &signed, (&env, &item), Some(f.copy), said).await
}

/// Why the editor's text is not JSON, with the line it stops at quoted, so the maker
/// finds the place.
fn not_json(text: &str, e: &serde_json::Error) -> String {
    let line = text
        .lines()
        .nth(e.line().saturating_sub(1))
        .unwrap_or_default();
    format!(
        "the copy is not JSON: {e}; line {}: {}",
        e.line(),
        line.trim()
    )
}

/// `POST …/findings/{finding}/accept`.
pub async fn accept(
    State(s): State<AppState>,
    signed: Signed,
    Path((env, item, finding)): Path<(String, String, String)>,
    Form(f): Form<ReasonForm>,
) -> Result<Response, WebError> {
    signed.session.check_form(&f.csrf)?;
    let change = ItemChange::Accept {
        finding,
        reason: f.reason,
    };
    change_or_say(&s, &signed, &env, &item, change).await
}

#[derive(Deserialize)]
pub struct TryForm {
    #[serde(default)]
    csrf: String,
    /// The id of the test record to run on; empty: the first one the maker may read.
    #[serde(default)]
    record: String,
}

/// `POST …/try`: the flow's copy dry-run on a test record, its steps shown.
pub async fn try_copy(
    State(s): State<AppState>,
    signed: Signed,
    Path((env, item)): Path<(String, String)>,
    Form(f): Form<TryForm>,
) -> Result<Response, WebError> {
    signed.session.check_form(&f.csrf)?;
    let record = Some(f.record.trim()).filter(|r| !r.is_empty());
    let tried = s
        .services
        .try_flow_copy(&signed.session.actor, &env, &item, record)
        .await;
    match tried {
        Ok(run) => {
            let heading = "A trial of the copy on the test database".to_string();
            let page = super::player::RunPage::of(chrome(&signed.session, "maker"), heading, run);
            Ok(render(&page))
        }
        Err(ServiceError::Invalid(m) | ServiceError::Conflict(m)) => {
            said_on_page(&s, &signed, (&env, &item), None, (StatusCode::CONFLICT, m)).await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST …/signoff`: refused, and said on the page, while an error is open.
pub async fn sign_off(
    State(s): State<AppState>,
    signed: Signed,
    Path((env, item)): Path<(String, String)>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, WebError> {
    signed.session.check_form(&f.csrf)?;
    change_or_say(&s, &signed, &env, &item, ItemChange::SignOff).await
}

/// `POST …/verify`: the copy checked and run again now.
pub async fn verify(
    State(s): State<AppState>,
    signed: Signed,
    Path((env, item)): Path<(String, String)>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, WebError> {
    signed.session.check_form(&f.csrf)?;
    s.services
        .verify_upgrade_item(&signed.session.actor, &env, &item)
        .await?;
    Ok(back(&env, &item))
}

/// Applies `change`; one the rules refuse is shown on the item's page, not as an error
/// page, so the maker sees why next to what to fix.
async fn change_or_say(
    s: &AppState,
    signed: &Signed,
    env: &str,
    item: &str,
    change: ItemChange,
) -> Result<Response, WebError> {
    let actor = &signed.session.actor;
    let changed = s
        .services
        .change_upgrade_item(actor, env, item, change)
        .await;
    match refusal(changed)? {
        None => Ok(back(env, item)),
        Some(m) => said_on_page(s, signed, (env, item), None, (StatusCode::CONFLICT, m)).await,
    }
}

/// What the item's rules refused, in words for the page (`None`: done); any other
/// failure is the error page's.
fn refusal<T>(r: Result<T, ServiceError>) -> Result<Option<String>, WebError> {
    match r {
        Ok(_) => Ok(None),
        Err(
            ServiceError::Invalid(m)
            | ServiceError::Conflict(m)
            | ServiceError::Field { message: m, .. },
        ) => Ok(Some(m)),
        Err(e) => Err(e.into()),
    }
}

/// The item's page again, with `said` (its status and words) above the editor, which
/// holds `copy` when the maker's text is to be kept.
async fn said_on_page(
    s: &AppState,
    signed: &Signed,
    (env, item): (&str, &str),
    copy: Option<String>,
    (status, words): (StatusCode, String),
) -> Result<Response, WebError> {
    let d = s
        .services
        .upgrade_item(&signed.session.actor, env, item)
        .await?;
    let page = item_page(signed, env, d, copy, Some(words));
    Ok((status, render(&page)).into_response())
}

fn back(env: &str, item: &str) -> Response {
    see_other(format!("/maker/environments/{env}/items/{item}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_that_is_not_json_is_told_with_its_line() {
        let cases = [
            (
                "{\n  \"name\": \"A\",\n  \"views\": [,]\n}",
                "line 3: \"views\": [,]",
            ),
            ("{not json", "line 1: {not json"),
        ];
        for (text, expect) in cases {
            let e = serde_json::from_str::<serde_json::Value>(text).unwrap_err();
            let said = not_json(text, &e);
            assert!(said.ends_with(expect), "{said}");
        }
    }
}
