//! What a service call can fail with. Each variant carries the facts of the failure;
//! the HTTP edge maps each variant to one status, and nothing compares message text.

use std::fmt;

use uplift_store::StoreError;

/// The failure of a service call.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    Unauthenticated(AuthFailure),
    #[error("user {0} is disabled")]
    Disabled(String),
    #[error("{0}")]
    Forbidden(Denial),
    #[error("{0}")]
    NotFound(Missing),
    /// The input is wrong; the message names the problem.
    #[error("{0}")]
    Invalid(String),
    /// One field's value is wrong: `message` names it and says why (a form shows it at
    /// the field).
    #[error("{message}")]
    Field { field: String, message: String },
    /// The input is fine but the state of things refuses it.
    #[error("{0}")]
    Conflict(String),
    /// A stale `If-Match`.
    #[error("{0}")]
    PreconditionFailed(String),
    #[error(
        "the schema of '{env}' is locked: an upgrade's {by} is running; entity definitions can change again when it ends"
    )]
    Locked { env: String, by: &'static str },
    #[error(
        "the schema of '{env}' is held by its upgrade's step 2: the test database and the copies were made from it; change it with ?force=true, which marks the test database stale"
    )]
    LockedForStep2 { env: String },
    #[error("the {action} is not allowed on {target}")]
    MethodNotAllowed {
        action: &'static str,
        target: &'static str,
    },
    /// A write waited at the gate while step 3 switched the environment to its new
    /// production database, and could not be made there either (sent again once).
    #[error(
        "the environment switched to its upgraded production database while this write waited; send it again"
    )]
    Switched,
    /// The database is busy or unreachable: a retry may succeed.
    #[error("the database is busy or unreachable; retry shortly")]
    Unavailable { detail: String },
    /// A fault of ours or of the storage; `detail` goes to the log, never to a client.
    #[error("{what} failed")]
    Internal { what: &'static str, detail: String },
}

pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

/// Why a request could not be tied to a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    NoToken,
    NotBearer,
    UnknownToken,
    /// The web UI: no session, or one that is not known (signed out).
    NoSession,
    /// The web UI: the session's time is up.
    SessionEnded,
}

impl fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuthFailure::NoToken => "no token: send 'Authorization: Bearer <token>'",
            AuthFailure::NotBearer => "the Authorization header must be 'Bearer <token>'",
            AuthFailure::UnknownToken => "the token is not valid",
            AuthFailure::NoSession => "not signed in",
            AuthFailure::SessionEnded => "the session has ended: sign in again",
        })
    }
}

/// What kind of owned thing a denial or a lookup is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    App,
    Flow,
}

impl fmt::Display for ItemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ItemKind::App => "app",
            ItemKind::Flow => "flow",
        })
    }
}

/// Why the policy refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    NotAdmin {
        user: String,
    },
    NotMaker {
        user: String,
    },
    OtherUser {
        user: String,
        what: &'static str,
    },
    NotEditor {
        user: String,
        kind: ItemKind,
        name: String,
    },
    DraftPlayer {
        app: String,
    },
    OwnerOfNew {
        user: String,
        kind: ItemKind,
        name: String,
        owner: String,
    },
    ChangeOwner {
        kind: ItemKind,
        name: String,
        from: String,
        to: String,
    },
    ChangeEditors {
        kind: ItemKind,
        name: String,
        owner: String,
    },
    SelfDemotion,
    NoRole {
        user: String,
        env: String,
    },
    NoPrivilege {
        user: String,
        privilege: String,
        entity: String,
        env: String,
    },
    TestDatabase {
        env: String,
    },
    NotApprover {
        user: String,
        title: String,
    },
    /// A web form without its session's form token (CSRF).
    FormToken,
    /// An app not shared with the user: their roles read none of what it shows.
    NotShared {
        user: String,
        app: String,
    },
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denial::NotAdmin { user } => write!(f, "{user} is not an administrator"),
            Denial::NotMaker { user } => {
                write!(f, "{user} is neither a maker nor an administrator")
            }
            Denial::OtherUser { user, what } => {
                write!(
                    f,
                    "only administrators can {what} for other users than {user}"
                )
            }
            Denial::NotEditor { user, kind, name } => {
                write!(
                    f,
                    "{user} is neither the owner nor an editor of {kind} '{name}'"
                )
            }
            Denial::DraftPlayer { app } => write!(
                f,
                "only the owner, editors and administrators play the draft of app '{app}'"
            ),
            Denial::OwnerOfNew {
                user,
                kind,
                name,
                owner,
            } => write!(
                f,
                "{user} cannot make {kind} '{name}' owned by {owner}: makers own what they create, and only an admin names another owner"
            ),
            Denial::ChangeOwner {
                kind,
                name,
                from,
                to,
            } => write!(
                f,
                "only an admin changes the owner of {kind} '{name}' (from {from} to {to})"
            ),
            Denial::ChangeEditors { kind, name, owner } => write!(
                f,
                "only the owner ({owner}) or an admin changes the editors of {kind} '{name}'"
            ),
            Denial::SelfDemotion => {
                f.write_str("administrators cannot disable or demote themselves")
            }
            Denial::NoRole { user, env } => {
                write!(f, "{user} has no role in environment '{env}'")
            }
            Denial::NoPrivilege {
                user,
                privilege,
                entity,
                env,
            } => write!(
                f,
                "{user} lacks the {privilege} privilege on {entity} in environment '{env}'"
            ),
            Denial::TestDatabase { env } => write!(
                f,
                "the test database of '{env}' is open to administrators and makers only"
            ),
            Denial::NotApprover { user, title } => {
                write!(f, "{user} is not an approver of '{title}'")
            }
            Denial::FormToken => f.write_str(
                "the form's token does not match the session's: reload the page and send it again",
            ),
            Denial::NotShared { user, app } => write!(
                f,
                "app '{app}' is not shared with {user}: their roles read none of what it shows"
            ),
        }
    }
}

/// What was not found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    Environment(String),
    Entity {
        env: String,
        entity: String,
    },
    EntitySet {
        env: String,
        set: String,
    },
    /// An old name the environment's upgrade changed.
    Renamed {
        env: String,
        old: String,
        new: String,
    },
    NavigationProperty {
        entity: String,
        name: String,
    },
    Record {
        entity: String,
        id: String,
    },
    User(String),
    /// A token, by its id.
    Token(String),
    Role {
        env: String,
        role: String,
    },
    App {
        env: String,
        app: String,
    },
    AppVersion {
        app: String,
        version: i64,
    },
    Draft {
        app: String,
    },
    PublishedVersion {
        app: String,
    },
    View {
        app: String,
        view: String,
    },
    Form {
        app: String,
        form: String,
    },
    Command {
        app: String,
        command: String,
    },
    Flow {
        env: String,
        id: String,
    },
    Run {
        flow: String,
        run: String,
    },
    Approval {
        env: String,
        id: String,
    },
    Upgrade {
        env: String,
    },
    TestDatabase {
        env: String,
    },
    /// An item of step 2, or one the caller may not see.
    Item {
        env: String,
        item: String,
    },
    Resource(String),
    /// A store lookup that failed deep down (a database a binding names, say).
    Stored(String),
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Missing::Environment(e) => write!(f, "no environment '{e}'"),
            Missing::Token(id) => write!(f, "no token '{id}'"),
            Missing::Entity { env, entity } => {
                write!(f, "no entity '{entity}' in environment '{env}'")
            }
            Missing::EntitySet { env, set } => {
                write!(f, "no entity set '{set}' in environment '{env}'")
            }
            Missing::NavigationProperty { entity, name } => {
                write!(f, "{entity} has no navigation property '{name}'")
            }
            Missing::Item { env, item } => {
                write!(f, "no item '{item}' in the upgrade of '{env}'")
            }
            Missing::Record { entity, id } => write!(f, "no {entity} with id {id}"),
            Missing::User(u) => write!(f, "no user {u}"),
            Missing::Role { env, role } => write!(f, "no role '{role}' in environment '{env}'"),
            Missing::App { env, app } => write!(f, "no app '{app}' in '{env}'"),
            Missing::AppVersion { app, version } => {
                write!(f, "app '{app}' has no version {version}")
            }
            Missing::Draft { app } => write!(f, "app '{app}' has no draft"),
            Missing::PublishedVersion { app } => {
                write!(f, "app '{app}' has no published version")
            }
            Missing::View { app, view } => write!(f, "app '{app}' has no view '{view}'"),
            Missing::Form { app, form } => write!(f, "app '{app}' has no form '{form}'"),
            Missing::Command { app, command } => {
                write!(f, "app '{app}' has no command '{command}'")
            }
            Missing::Flow { env, id } => write!(f, "no flow '{id}' in '{env}'"),
            Missing::Run { flow, run } => write!(f, "flow '{flow}' has no run '{run}'"),
            Missing::Approval { env, id } => write!(f, "no approval '{id}' in '{env}'"),
            Missing::Upgrade { env } => write!(f, "'{env}' has never been upgraded"),
            Missing::TestDatabase { env } => write!(
                f,
                "'{env}' has no test database ready (step 1 has not completed)"
            ),
            Missing::Resource(r) => write!(f, "no such resource: {r}"),
            Missing::Renamed { env, old, new } => write!(
                f,
                "'{old}' is now '{new}': the upgrade of '{env}' renamed it"
            ),
            Missing::Stored(m) => f.write_str(m),
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => ServiceError::NotFound(Missing::Stored(m)),
            StoreError::Conflict(m) => ServiceError::Conflict(m),
            StoreError::Invalid(m) => ServiceError::Invalid(m),
            StoreError::Field { field, message } => ServiceError::Field { field, message },
            StoreError::PreconditionFailed(m) => ServiceError::PreconditionFailed(m),
            StoreError::Retired => ServiceError::Switched,
            e if e.is_unique_violation() => ServiceError::Conflict(
                "it was changed at the same time by another request; reload and retry".into(),
            ),
            e if e.is_unavailable() => ServiceError::Unavailable {
                detail: e.to_string(),
            },
            e @ StoreError::Io(_) => ServiceError::Internal {
                what: "reading or writing a file",
                detail: e.to_string(),
            },
            e @ StoreError::Corrupt(_) => ServiceError::Internal {
                what: "reading stored data",
                detail: e.to_string(),
            },
            e => ServiceError::Internal {
                what: "a database operation",
                detail: e.to_string(),
            },
        }
    }
}

impl From<uplift_upgrade::runner::UpgradeError> for ServiceError {
    fn from(e: uplift_upgrade::runner::UpgradeError) -> Self {
        use uplift_upgrade::runner::UpgradeError;
        match e {
            UpgradeError::NotFound(m) => ServiceError::NotFound(Missing::Stored(m)),
            UpgradeError::Invalid(m) => ServiceError::Invalid(m),
            UpgradeError::Conflict(m) => ServiceError::Conflict(m),
            UpgradeError::Store(s) => s.into(),
            e @ UpgradeError::Log(_) => ServiceError::Internal {
                what: "reading the upgrade's log",
                detail: e.to_string(),
            },
        }
    }
}

impl From<uplift_flows::FlowError> for ServiceError {
    fn from(e: uplift_flows::FlowError) -> Self {
        match e {
            uplift_flows::FlowError::Store(s) => s.into(),
            uplift_flows::FlowError::Invalid(m) => ServiceError::Conflict(m),
        }
    }
}

/// Validation problems, each naming its place, as one message.
pub(crate) fn invalid<E: ToString>(errors: &[E]) -> ServiceError {
    ServiceError::Invalid(
        errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "),
    )
}
