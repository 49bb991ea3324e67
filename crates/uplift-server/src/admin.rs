//! The admin API: environments, their catalogs, users, tokens, security roles.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use uplift_api::ErrorBody;
use uplift_api::admin::*;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::{ApiError, Body, Params};
use crate::state::AppState;

type Answer<T> = Result<Json<T>, ApiError>;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(me))
        .routes(routes!(list_envs, create_env))
        .routes(routes!(show_env, delete_env))
        .routes(routes!(list_entities, apply_entities))
        .routes(routes!(show_entity, put_entity))
        .routes(routes!(list_roles))
        .routes(routes!(show_role, put_role))
        .routes(routes!(add_member))
        .routes(routes!(list_users, create_user))
        .routes(routes!(show_user, update_user))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
}

/// Whether the server can serve (it reads the control plane), and on which engine.
#[utoipa::path(get, path = "/api/health", tag = "admin", security(()),
    responses((status = 200, body = Health)))]
async fn health(State(s): State<AppState>) -> Answer<Health> {
    Ok(Json(s.services.health().await?))
}

/// The caller's own account.
#[utoipa::path(get, path = "/api/me", tag = "admin", responses((status = 200, body = User)))]
async fn me(State(s): State<AppState>, Caller(c): Caller) -> Json<User> {
    Json(s.services.me(&c))
}

/// Creates an environment with an empty production database (admins).
#[utoipa::path(post, path = "/api/environments", tag = "admin", request_body = NewEnvironment,
    responses((status = 201, body = Environment), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_env(
    State(s): State<AppState>,
    Caller(c): Caller,
    Body(req): Body<NewEnvironment>,
) -> Result<(StatusCode, Json<Environment>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.services.create_environment(&c, req).await?),
    ))
}

#[utoipa::path(get, path = "/api/environments", tag = "admin",
    responses((status = 200, body = Vec<Environment>)))]
async fn list_envs(State(s): State<AppState>, Caller(c): Caller) -> Answer<Vec<Environment>> {
    Ok(Json(s.services.list_environments(&c).await?))
}

#[utoipa::path(get, path = "/api/environments/{env}", tag = "admin", params(("env" = String, Path)),
    responses((status = 200, body = EnvironmentDetail), (status = 404, body = ErrorBody)))]
async fn show_env(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(env): Path<String>,
) -> Answer<EnvironmentDetail> {
    Ok(Json(s.services.environment(&c, &env).await?))
}

/// Deletes an environment and everything in it (admins).
#[utoipa::path(delete, path = "/api/environments/{env}", tag = "admin", params(("env" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_env(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(env): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.services.delete_environment(&c, &env).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/environments/{env}/entities", tag = "admin", params(("env" = String, Path)),
    responses((status = 200, body = Catalog), (status = 404, body = ErrorBody)))]
async fn list_entities(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(env): Path<String>,
) -> Answer<Catalog> {
    Ok(Json(s.services.catalog(&c, &env).await?))
}

#[utoipa::path(get, path = "/api/environments/{env}/entities/{entity}", tag = "admin",
    params(("env" = String, Path), ("entity" = String, Path)),
    responses((status = 200, body = Entity), (status = 404, body = ErrorBody)))]
async fn show_entity(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((env, name)): Path<(String, String)>,
) -> Answer<Entity> {
    Ok(Json(s.services.entity(&c, &env, &name).await?))
}

/// Whether to change production's schema although an upgrade's step 2 was built from it.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ForceQuery {
    /// During step 2: change it anyway, marking the test database stale.
    force: Option<bool>,
}

/// Creates or extends one entity (makers); 423 while an upgrade's step 1 runs, and
/// during step 2 unless `?force=true`.
#[utoipa::path(put, path = "/api/environments/{env}/entities/{entity}", tag = "admin",
    params(("env" = String, Path), ("entity" = String, Path), ForceQuery), request_body = Object,
    responses((status = 200, body = CatalogChanges), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 423, body = ErrorBody)))]
async fn put_entity(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((env, name)): Path<(String, String)>,
    Params(q): Params<ForceQuery>,
    Body(def): Body<uplift_api::Document>,
) -> Answer<CatalogChanges> {
    let defs = BTreeMap::from([(name, def)]);
    let force = q.force.unwrap_or(false);
    Ok(Json(
        s.services.apply_entities(&c, &env, defs, force).await?,
    ))
}

/// Creates or extends several entities at once (makers); locked as one entity is.
#[utoipa::path(put, path = "/api/environments/{env}/entities", tag = "admin",
    params(("env" = String, Path), ForceQuery), request_body = EntitiesDocument,
    responses((status = 200, body = CatalogChanges), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 423, body = ErrorBody)))]
async fn apply_entities(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(env): Path<String>,
    Params(q): Params<ForceQuery>,
    Body(doc): Body<EntitiesDocument>,
) -> Answer<CatalogChanges> {
    let force = q.force.unwrap_or(false);
    Ok(Json(
        s.services
            .apply_entities(&c, &env, doc.entities, force)
            .await?,
    ))
}

/// Creates a user (admins).
#[utoipa::path(post, path = "/api/users", tag = "admin", request_body = NewUser,
    responses((status = 201, body = User), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_user(
    State(s): State<AppState>,
    Caller(c): Caller,
    Body(req): Body<NewUser>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.services.create_user(&c, req).await?),
    ))
}

#[utoipa::path(get, path = "/api/users", tag = "admin", responses((status = 200, body = Vec<User>)))]
async fn list_users(State(s): State<AppState>, Caller(c): Caller) -> Answer<Vec<User>> {
    Ok(Json(s.services.list_users(&c).await?))
}

/// One user: oneself, or anyone for an admin.
#[utoipa::path(get, path = "/api/users/{email}", tag = "admin", params(("email" = String, Path)),
    responses((status = 200, body = User), (status = 404, body = ErrorBody)))]
async fn show_user(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(email): Path<String>,
) -> Answer<User> {
    Ok(Json(s.services.user(&c, &email).await?))
}

/// Changes a user's status, role or display name (admins; never themselves out).
#[utoipa::path(patch, path = "/api/users/{email}", tag = "admin", params(("email" = String, Path)),
    request_body = UserChange,
    responses((status = 200, body = User), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn update_user(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(email): Path<String>,
    Body(req): Body<UserChange>,
) -> Answer<User> {
    Ok(Json(s.services.update_user(&c, &email, req).await?))
}

/// A new token for the caller, or for anyone (admins). Shown once.
#[utoipa::path(post, path = "/api/tokens", tag = "admin", request_body = TokenRequest,
    responses((status = 201, body = NewToken), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn create_token(
    State(s): State<AppState>,
    Caller(c): Caller,
    Body(req): Body<TokenRequest>,
) -> Result<(StatusCode, Json<NewToken>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.services.create_token(&c, req).await?),
    ))
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct TokenQuery {
    /// Whose tokens (admins; anyone else lists their own).
    user: Option<String>,
}

/// Tokens: an admin's listing is everyone's (or `user`'s), anyone else's their own.
/// Never the tokens themselves.
#[utoipa::path(get, path = "/api/tokens", tag = "admin", params(TokenQuery),
    responses((status = 200, body = Vec<Token>), (status = 400, body = ErrorBody)))]
async fn list_tokens(
    State(s): State<AppState>,
    Caller(c): Caller,
    Params(q): Params<TokenQuery>,
) -> Answer<Vec<Token>> {
    Ok(Json(s.services.list_tokens(&c, q.user).await?))
}

/// Revokes a token (its user's or an admin's to do); it stops working at once.
#[utoipa::path(delete, path = "/api/tokens/{id}", tag = "admin", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn revoke_token(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.services.revoke_token(&c, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Creates or replaces a security role (admins).
#[utoipa::path(put, path = "/api/environments/{env}/roles/{role}", tag = "admin",
    params(("env" = String, Path), ("role" = String, Path)), request_body = RoleDefinition,
    responses((status = 200, body = Role), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn put_role(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((env, role)): Path<(String, String)>,
    Body(req): Body<RoleDefinition>,
) -> Answer<Role> {
    Ok(Json(s.services.put_role(&c, &env, &role, req).await?))
}

#[utoipa::path(get, path = "/api/environments/{env}/roles/{role}", tag = "admin",
    params(("env" = String, Path), ("role" = String, Path)),
    responses((status = 200, body = Role), (status = 404, body = ErrorBody)))]
async fn show_role(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((env, role)): Path<(String, String)>,
) -> Answer<Role> {
    Ok(Json(s.services.role(&c, &env, &role).await?))
}

#[utoipa::path(get, path = "/api/environments/{env}/roles", tag = "admin", params(("env" = String, Path)),
    responses((status = 200, body = Vec<RoleWithMembers>), (status = 404, body = ErrorBody)))]
async fn list_roles(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(env): Path<String>,
) -> Answer<Vec<RoleWithMembers>> {
    Ok(Json(s.services.list_roles(&c, &env).await?))
}

/// Assigns a role to a user (admins).
#[utoipa::path(post, path = "/api/environments/{env}/roles/{role}/members", tag = "admin",
    params(("env" = String, Path), ("role" = String, Path)), request_body = NewMember,
    responses((status = 200, body = Membership), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn add_member(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((env, role)): Path<(String, String)>,
    Body(req): Body<NewMember>,
) -> Answer<Membership> {
    Ok(Json(s.services.add_member(&c, &env, &role, req).await?))
}
