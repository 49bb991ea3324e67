//! The approvals system entity: requests that flow runs' `start_approval` steps make,
//! queried like any entity set (`$filter`, `$orderby`, `$top`, `$skip`, `$count`) by
//! the approvers they wait for (admins see all), and answered here, which lets the
//! waiting run continue.

use std::cmp::Ordering;

use serde_json::{Value as Json_, json};
use uplift_api as api;
use uplift_model::filter::{
    Expr, OrderItem, PropertyResolver, PropertyType, ScalarType, eval_filter, parse_orderby,
};
use uplift_store::control::Approval;

use crate::auth::Actor;
use crate::data::query;
use crate::error::{Missing, Result, ServiceError};
use crate::{Services, convert, policy};

/// The entity's properties and their types, for type-checking filters.
const PROPERTIES: &[(&str, ScalarType)] = &[
    ("id", ScalarType::Guid),
    ("run_id", ScalarType::Guid),
    ("step", ScalarType::String),
    ("title", ScalarType::String),
    ("details", ScalarType::String),
    ("status", ScalarType::String),
    ("outcome", ScalarType::String),
    ("responder", ScalarType::String),
    ("comment", ScalarType::String),
    ("created_at", ScalarType::DateTimeOffset),
    ("responded_at", ScalarType::DateTimeOffset),
];

struct ApprovalProperties;

impl PropertyResolver for ApprovalProperties {
    fn resolve(&self, path: &[String]) -> Option<PropertyType> {
        let [name] = path else { return None };
        PROPERTIES
            .iter()
            .find(|(p, _)| p == name)
            .map(|(_, t)| PropertyType::Scalar(*t))
    }
}

/// Parsed query options of a listing.
#[derive(Default)]
struct Query {
    filter: Option<Expr>,
    orderby: Vec<OrderItem>,
    top: Option<usize>,
    skip: usize,
    count: bool,
}

fn number(option: &str, v: &str) -> Result<usize> {
    Ok(usize::try_from(query::number(option, v)?).unwrap_or(usize::MAX))
}

fn parse_query(raw: Option<&str>) -> Result<Query> {
    let mut q = Query::default();
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "$filter" => q.filter = Some(query::filter(&v, &ApprovalProperties)?),
            "$orderby" => {
                let items = parse_orderby(&v)
                    .map_err(|e| ServiceError::Invalid(format!("$orderby: {e}")))?;
                if let Some(bad) = items
                    .iter()
                    .find(|i| ApprovalProperties.resolve(&i.path).is_none())
                {
                    return Err(ServiceError::Invalid(format!(
                        "$orderby: approvals have no property '{}'",
                        bad.path.join("/")
                    )));
                }
                q.orderby = items;
            }
            "$top" => q.top = Some(number("$top", &v)?),
            "$skip" => q.skip = number("$skip", &v)?,
            "$count" => q.count = query::flag("$count", &v)?,
            other if other.starts_with('$') => {
                return Err(ServiceError::Invalid(format!(
                    "unknown or unsupported query option '{other}' on approvals (supported: $filter, $orderby, $top, $skip, $count)"
                )));
            }
            _ => {}
        }
    }
    Ok(q)
}

/// Nulls first; text ignoring case, as the data API's SQL orders it.
fn order(a: &Json_, b: &Json_) -> Ordering {
    match (a, b) {
        (Json_::Null, Json_::Null) => Ordering::Equal,
        (Json_::Null, _) => Ordering::Less,
        (_, Json_::Null) => Ordering::Greater,
        (Json_::String(x), Json_::String(y)) => x.to_lowercase().cmp(&y.to_lowercase()),
        _ => a.to_string().cmp(&b.to_string()),
    }
}

impl Services {
    /// Requests the actor may see: those waiting for them, or all for an admin.
    /// The approvals that name `actor` among their approvers (an admin's inbox too
    /// holds only theirs).
    pub(crate) async fn approvals_to_answer(
        &self,
        actor: &Actor,
        env: &str,
    ) -> Result<Vec<Approval>> {
        let mut all = self.visible_approvals(actor, env).await?;
        all.retain(|a| a.may_answer(actor.email()));
        Ok(all)
    }

    async fn visible_approvals(&self, actor: &Actor, env: &str) -> Result<Vec<Approval>> {
        self.store.env_db(env).await?;
        Ok(self
            .store
            .control()
            .approvals(env)
            .await?
            .into_iter()
            .filter(|a| policy::sees_approval(actor, a))
            .collect())
    }

    /// The requests the actor may see, filtered, ordered and paged by `raw`'s
    /// `$filter`, `$orderby`, `$top`, `$skip` and `$count`.
    pub async fn list_approvals(
        &self,
        actor: &Actor,
        env: &str,
        raw: Option<&str>,
    ) -> Result<api::flows::ApprovalPage> {
        let q = parse_query(raw)?;
        // Each request as the API shows it, with its JSON, which filters and orders read.
        let mut rows: Vec<(Json_, api::flows::Approval)> = Vec::new();
        for a in self.visible_approvals(actor, env).await? {
            let a = convert::approval(&a);
            let r = json!(a);
            let keep = q
                .filter
                .as_ref()
                .is_none_or(|f| eval_filter(f, &|path: &[String]| r.get(path.first()?).cloned()));
            if keep {
                rows.push((r, a));
            }
        }
        for item in q.orderby.iter().rev() {
            let key = &item.path[0];
            rows.sort_by(|(a, _), (b, _)| {
                let o = order(&a[key], &b[key]);
                if item.descending { o.reverse() } else { o }
            });
        }
        let total = rows.len() as u64;
        let value = rows
            .into_iter()
            .skip(q.skip)
            .take(q.top.unwrap_or(usize::MAX))
            .map(|(_, a)| a)
            .collect();
        Ok(api::flows::ApprovalPage {
            value,
            count: q.count.then_some(total),
        })
    }

    /// A request the actor is an approver of (any, for an admin).
    pub async fn approval(
        &self,
        actor: &Actor,
        env: &str,
        id: &str,
    ) -> Result<api::flows::Approval> {
        let a = self.find_approval(env, id).await?;
        policy::answer(actor, &a)?;
        Ok(convert::approval(&a))
    }

    async fn find_approval(&self, env: &str, id: &str) -> Result<Approval> {
        self.store.env_db(env).await?;
        self.store
            .control()
            .approval(env, id)
            .await?
            .ok_or_else(|| {
                ServiceError::NotFound(Missing::Approval {
                    env: env.into(),
                    id: id.into(),
                })
            })
    }

    /// Answers a request as one of its approvers; the waiting run is queued again and
    /// the runtime woken, so it continues now.
    pub async fn answer_approval(
        &self,
        actor: &Actor,
        env: &str,
        id: &str,
        answer: api::flows::Answer,
    ) -> Result<api::flows::Approval> {
        let a = self.find_approval(env, id).await?;
        policy::answer(actor, &a)?;
        let control = self.store.control();
        control
            .answer_approval(
                env,
                id,
                convert::outcome_text(answer.outcome),
                actor.email(),
                &answer.comment,
            )
            .await?;
        control.requeue_run(&a.run_id).await?;
        self.flows.wake();
        Ok(convert::approval(&self.find_approval(env, id).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_checked_against_the_approval_properties() {
        assert!(parse_query(Some("$filter=status eq 'pending'")).is_ok());
        assert!(parse_query(Some("$filter=created_at gt 2026-01-01T00:00:00Z")).is_ok());
        let e = parse_query(Some("$filter=colour eq 'red'")).err().unwrap();
        assert!(e.to_string().contains("colour"), "{e}");
        let e = parse_query(Some("$filter=created_at eq 'soon'"))
            .err()
            .unwrap();
        assert!(e.to_string().contains("$filter"), "{e}");
        let e = parse_query(Some("$orderby=colour")).err().unwrap();
        assert!(e.to_string().contains("colour"), "{e}");
        let e = parse_query(Some("$expand=run")).err().unwrap();
        assert!(e.to_string().contains("$expand"), "{e}");
        let e = parse_query(Some("$top=-1")).err().unwrap();
        assert!(e.to_string().contains("$top"), "{e}");
    }
}
