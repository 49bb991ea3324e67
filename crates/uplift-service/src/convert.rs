//! Internal types into API types, field by field. Explicit on purpose: a change to a
//! storage or domain type stops compiling here instead of changing the contract.

use serde_json::json;
use uplift_api as api;
use uplift_model::entity::{Origin, system_fields};
use uplift_model::security::{PlatformRole, SecurityMode, UserStatus};
use uplift_model::{Entity, Field, FieldType, SchemaVersion};
use uplift_store::control::{
    self, AppRecord, EnvRecord, FlowRecord, RunRecord, RunStatus, TokenRecord, User,
};

pub fn platform_role(r: PlatformRole) -> api::admin::PlatformRole {
    match r {
        PlatformRole::Admin => api::admin::PlatformRole::Admin,
        PlatformRole::Maker => api::admin::PlatformRole::Maker,
        PlatformRole::User => api::admin::PlatformRole::User,
    }
}

pub fn platform_role_in(r: api::admin::PlatformRole) -> PlatformRole {
    match r {
        api::admin::PlatformRole::Admin => PlatformRole::Admin,
        api::admin::PlatformRole::Maker => PlatformRole::Maker,
        api::admin::PlatformRole::User => PlatformRole::User,
    }
}

pub fn user_status(s: UserStatus) -> api::admin::UserStatus {
    match s {
        UserStatus::Active => api::admin::UserStatus::Active,
        UserStatus::Disabled => api::admin::UserStatus::Disabled,
    }
}

pub fn user_status_in(s: api::admin::UserStatus) -> UserStatus {
    match s {
        api::admin::UserStatus::Active => UserStatus::Active,
        api::admin::UserStatus::Disabled => UserStatus::Disabled,
    }
}

pub fn schema_version(v: SchemaVersion) -> api::admin::SchemaVersion {
    match v {
        SchemaVersion::Classic => api::admin::SchemaVersion::Classic,
        SchemaVersion::Modern => api::admin::SchemaVersion::Modern,
    }
}

pub fn schema_version_in(v: api::admin::SchemaVersion) -> SchemaVersion {
    match v {
        api::admin::SchemaVersion::Classic => SchemaVersion::Classic,
        api::admin::SchemaVersion::Modern => SchemaVersion::Modern,
    }
}

pub fn security_mode(m: SecurityMode) -> api::admin::SecurityMode {
    match m {
        SecurityMode::Open => api::admin::SecurityMode::Open,
        SecurityMode::Restricted => api::admin::SecurityMode::Restricted,
    }
}

pub fn security_mode_in(m: api::admin::SecurityMode) -> SecurityMode {
    match m {
        api::admin::SecurityMode::Open => SecurityMode::Open,
        api::admin::SecurityMode::Restricted => SecurityMode::Restricted,
    }
}

pub fn user(u: &User) -> api::admin::User {
    api::admin::User {
        email: u.email.clone(),
        display_name: u.display_name.clone(),
        role: platform_role(u.role),
        status: user_status(u.status),
        created_at: u.created_at.clone(),
    }
}

pub fn token(t: &TokenRecord) -> api::admin::Token {
    api::admin::Token {
        id: t.id.clone(),
        user: t.user.clone(),
        label: t.label.clone(),
        created_at: t.created_at.clone(),
    }
}

pub fn environment(e: &EnvRecord) -> api::admin::Environment {
    api::admin::Environment {
        name: e.name.clone(),
        schema_version: schema_version(e.schema_version),
        security_mode: security_mode(e.security_mode),
        created_at: e.created_at.clone(),
        database: e.database.clone(),
    }
}

fn origin(o: Origin) -> api::admin::Origin {
    match o {
        Origin::System => api::admin::Origin::System,
        Origin::Standard => api::admin::Origin::Standard,
        Origin::Custom => api::admin::Origin::Custom,
    }
}

/// A field in the definition format users write, plus its origin.
pub fn field(f: &Field) -> api::admin::Field {
    let max_length =
        f.ty.max_chars()
            .filter(|_| !matches!(f.ty, FieldType::LargeText | FieldType::UserOrGroup));
    let (mut options, mut target, mut format, mut date_only) = (None, None, None, None);
    match &f.ty {
        FieldType::Picklist { options: o } => options = Some(json!(o)),
        FieldType::OptionSet { options: o } => options = Some(json!(o)),
        FieldType::Lookup { target: t } => target = Some(t.clone()),
        FieldType::SingleLineText { format: fm, .. } => format = Some(fm.as_str().to_string()),
        FieldType::ModernDateTime { date_only: d } => date_only = Some(*d),
        _ => {}
    }
    api::admin::Field {
        name: f.name.clone(),
        ty: f.ty.type_name().to_string(),
        origin: origin(f.origin),
        required: f.required,
        display_name: f.display_name.clone(),
        max_length,
        options,
        target,
        format,
        date_only,
    }
}

pub fn entity(e: &Entity, version: SchemaVersion) -> api::admin::Entity {
    api::admin::Entity {
        name: e.name.clone(),
        display_name: e.display_name.clone(),
        set_name: e.set_name.clone(),
        business_key: e.business_key.clone(),
        origin: origin(e.origin),
        fields: e.fields.iter().map(field).collect(),
        system_fields: system_fields(version).iter().map(field).collect(),
    }
}

fn document<T: serde::Serialize>(t: &T) -> api::Document {
    serde_json::to_value(t).unwrap_or(serde_json::Value::Null)
}

pub fn bound_app(b: &control::Bound) -> api::apps::BoundApp {
    api::apps::BoundApp {
        definition: document(&b.definition),
        database: b.database.clone(),
    }
}

pub fn app_version(v: &control::AppVersion) -> api::apps::AppVersion {
    api::apps::AppVersion {
        version: v.version,
        definition: document(&v.bound.definition),
        database: v.bound.database.clone(),
        published_at: v.published_at.clone(),
        published_by: v.published_by.clone(),
    }
}

/// The app; its draft only when `with_draft` (the policy decides).
pub fn app(a: &AppRecord, with_draft: bool) -> api::apps::App {
    api::apps::App {
        name: a.name.clone(),
        owner: a.owner.clone(),
        editors: a.editors.clone(),
        published: a.published.as_ref().map(app_version),
        last_used_at: a.last_used_at.clone(),
        draft: with_draft.then(|| a.draft.as_ref().map(bound_app)),
    }
}

pub fn flow(f: &FlowRecord) -> api::flows::Flow {
    api::flows::Flow {
        id: f.id.clone(),
        name: f.definition.name.clone(),
        owner: f.definition.owner.clone(),
        editors: f.definition.editors.clone(),
        state: match f.definition.state {
            uplift_model::flow::FlowState::On => api::flows::FlowState::On,
            uplift_model::flow::FlowState::Off => api::flows::FlowState::Off,
        },
        database: f.database.clone(),
        definition: document(&f.definition),
        updated_at: f.updated_at.clone(),
    }
}

pub fn run(r: &RunRecord) -> api::flows::Run {
    api::flows::Run {
        id: r.id.clone(),
        env: r.env.clone(),
        flow_id: r.flow_id.clone(),
        trigger_key: r.trigger_key.clone(),
        status: match r.status {
            RunStatus::Queued => api::flows::RunStatus::Queued,
            RunStatus::Running => api::flows::RunStatus::Running,
            RunStatus::Waiting => api::flows::RunStatus::Waiting,
            RunStatus::Succeeded => api::flows::RunStatus::Succeeded,
            RunStatus::Failed => api::flows::RunStatus::Failed,
        },
        depth: r.depth,
        trigger: r.trigger.clone(),
        steps: r.steps.clone(),
        error: r.error.clone(),
        attempts: r.attempts,
        created_at: r.created_at.clone(),
        started_at: r.started_at.clone(),
        finished_at: r.finished_at.clone(),
    }
}

pub fn outcome(s: &str) -> Option<api::flows::Outcome> {
    match s {
        "approved" => Some(api::flows::Outcome::Approved),
        "rejected" => Some(api::flows::Outcome::Rejected),
        _ => None,
    }
}

pub fn outcome_text(o: api::flows::Outcome) -> &'static str {
    match o {
        api::flows::Outcome::Approved => "approved",
        api::flows::Outcome::Rejected => "rejected",
    }
}

pub fn approval(a: &control::Approval) -> api::flows::Approval {
    let outcome = a.outcome.as_deref().and_then(outcome);
    api::flows::Approval {
        id: a.id.clone(),
        env: a.env.clone(),
        run_id: a.run_id.clone(),
        step: a.step.clone(),
        title: a.title.clone(),
        details: a.details.clone(),
        approvers: a.approvers.clone(),
        outcome,
        responder: a.responder.clone(),
        comment: a.comment.clone(),
        created_at: a.created_at.clone(),
        responded_at: a.responded_at.clone(),
        status: match outcome {
            None => api::flows::ApprovalStatus::Pending,
            Some(api::flows::Outcome::Approved) => api::flows::ApprovalStatus::Approved,
            Some(api::flows::Outcome::Rejected) => api::flows::ApprovalStatus::Rejected,
        },
    }
}
