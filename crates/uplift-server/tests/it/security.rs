//! Authentication and authorisation: tokens, platform roles, security roles, modes.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::support::{ADMIN_TOKEN, Platform};
use uplift_test_macros::engine_test;

#[engine_test]
async fn no_token_or_a_bad_one_is_401(p: Platform) {
    p.create_env("contoso", "classic", "restricted").await;
    let none = p
        .call(
            Method::GET,
            "/api/environments/contoso/data/accounts",
            None,
            None,
            &[],
        )
        .await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert_eq!(none.headers["www-authenticate"], "Bearer");
    assert_eq!(none.body["error"]["code"], "Unauthorized");
    let bad = p
        .get("/api/environments/contoso/data/accounts", "upl_wrong")
        .await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    let garbled = p
        .call(
            Method::GET,
            "/api/users",
            None,
            None,
            &[("authorization", "Basic xyz")],
        )
        .await;
    assert_eq!(garbled.status, StatusCode::UNAUTHORIZED);
    // The scheme is case-insensitive.
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let a = p
            .call(
                Method::GET,
                "/api/me",
                None,
                None,
                &[("authorization", &format!("{scheme} {ADMIN_TOKEN}"))],
            )
            .await;
        assert_eq!(
            a.status,
            StatusCode::OK,
            "{}: {scheme}: {}",
            p.engine,
            a.body
        );
    }
}

#[engine_test]
async fn restricted_environments_enforce_roles_per_entity_and_privilege(p: Platform) {
    p.create_env("contoso", "classic", "restricted").await;
    let seller = p.user("seller@contoso.com", "user").await;
    let nobody = p.user("nobody@contoso.com", "user").await;
    let role = p
        .put(
            "/api/environments/contoso/roles/Sales",
            ADMIN_TOKEN,
            json!({"privileges":{"Account":["Create","Read"],"Contact":["Read"]}}),
        )
        .await;
    assert_eq!(role.status, StatusCode::OK, "{}", role.body);
    let m = p
        .post(
            "/api/environments/contoso/roles/Sales/members",
            ADMIN_TOKEN,
            json!({"user":"seller@contoso.com"}),
        )
        .await;
    assert_eq!(m.status, StatusCode::OK, "{}", m.body);

    let created = p
        .post(
            "/api/environments/contoso/data/accounts",
            &seller,
            json!({"Name":"Mine"}),
        )
        .await;
    assert_eq!(
        created.status,
        StatusCode::CREATED,
        "{}: {}",
        p.engine,
        created.body
    );
    assert_eq!(created.body["CreatedBy"], "seller@contoso.com");
    let id = created.body["id"].as_str().unwrap();
    assert_eq!(
        p.get("/api/environments/contoso/data/accounts", &seller)
            .await
            .status,
        StatusCode::OK
    );
    let upd = p
        .patch(
            &format!("/api/environments/contoso/data/accounts({id})"),
            &seller,
            json!({"Name":"x"}),
        )
        .await;
    assert_eq!(upd.status, StatusCode::FORBIDDEN);
    assert!(
        upd.message()
            .contains("lacks the Update privilege on Account"),
        "{}",
        upd.body
    );
    let del = p
        .delete(
            &format!("/api/environments/contoso/data/accounts({id})"),
            &seller,
        )
        .await;
    assert_eq!(del.status, StatusCode::FORBIDDEN);
    let prod = p
        .get("/api/environments/contoso/data/products", &seller)
        .await;
    assert_eq!(prod.status, StatusCode::FORBIDDEN);
    let exp = p
        .get(
            "/api/environments/contoso/data/contacts?$expand=Account_ref",
            &seller,
        )
        .await;
    assert_eq!(
        exp.status,
        StatusCode::OK,
        "expanding needs Read on the target, which Sales has"
    );
    assert_eq!(
        p.get("/api/environments/contoso/data/accounts", &nobody)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        p.get("/api/environments/contoso/data/$metadata", &nobody)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        p.get("/api/environments/contoso/data/$metadata", &seller)
            .await
            .status,
        StatusCode::OK
    );

    // Plain users cannot administer.
    assert_eq!(
        p.post("/api/environments", &seller, json!({"name":"mine"}))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        p.get("/api/users", &seller).await.status,
        StatusCode::FORBIDDEN
    );
    let def = p
        .put(
            "/api/environments/contoso/entities/Thing",
            &seller,
            json!({"fields":[]}),
        )
        .await;
    assert_eq!(def.status, StatusCode::FORBIDDEN);
    let tok = p
        .post("/api/tokens", &seller, json!({"user":"nobody@contoso.com"}))
        .await;
    assert_eq!(tok.status, StatusCode::FORBIDDEN);
    let own = p.post("/api/tokens", &seller, json!({})).await;
    assert_eq!(
        own.status,
        StatusCode::CREATED,
        "users may create their own tokens"
    );

    let bad_priv = p
        .put(
            "/api/environments/contoso/roles/X",
            ADMIN_TOKEN,
            json!({"privileges":{"Account":["Write"]}}),
        )
        .await;
    assert!(
        bad_priv
            .message()
            .contains("'Write' is not a classic privilege"),
        "{}",
        bad_priv.body
    );
    let bad_entity = p
        .put(
            "/api/environments/contoso/roles/X",
            ADMIN_TOKEN,
            json!({"privileges":{"Nope":["Read"]}}),
        )
        .await;
    assert!(
        bad_entity.message().contains("no entity 'Nope'"),
        "{}",
        bad_entity.body
    );
}

#[engine_test]
async fn open_mode_lets_every_active_user_do_everything(p: Platform) {
    p.create_env("commons", "classic", "open").await;
    let u = p.user("someone@contoso.com", "user").await;
    let c = p
        .post(
            "/api/environments/commons/data/accounts",
            &u,
            json!({"Name":"Shared"}),
        )
        .await;
    assert_eq!(c.status, StatusCode::CREATED);
    let id = c.body["id"].as_str().unwrap();
    assert_eq!(
        p.delete(
            &format!("/api/environments/commons/data/accounts({id})"),
            &u
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
}

#[engine_test]
async fn a_disabled_user_is_refused_everywhere(p: Platform) {
    p.create_env("commons", "classic", "open").await;
    let u = p.user("leaver@contoso.com", "maker").await;
    assert_eq!(
        p.get("/api/environments/commons/data/accounts", &u)
            .await
            .status,
        StatusCode::OK
    );
    let d = p
        .patch(
            "/api/users/leaver@contoso.com",
            ADMIN_TOKEN,
            json!({"status":"disabled"}),
        )
        .await;
    assert_eq!(d.body["status"], "disabled");
    let refused = p.get("/api/environments/commons/data/accounts", &u).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.message().contains("disabled"), "{}", refused.body);
    assert_eq!(p.get("/api/me", &u).await.status, StatusCode::FORBIDDEN);
    let back = p
        .patch(
            "/api/users/leaver@contoso.com",
            ADMIN_TOKEN,
            json!({"status":"active"}),
        )
        .await;
    assert_eq!(back.status, StatusCode::OK);
    assert_eq!(
        p.get("/api/environments/commons/data/accounts", &u)
            .await
            .status,
        StatusCode::OK
    );
}

#[engine_test]
async fn modern_lookups_need_append_and_append_to(p: Platform) {
    p.create_env("fresh", "modern", "restricted").await;
    let defs = json!({"entities":{
        "cr_parent":{"fields":[{"name":"cr_name","type":"SingleLineText"}]},
        "cr_child":{"fields":[{"name":"cr_parent","type":"Lookup","target":"cr_parent"}]}}});
    assert_eq!(
        p.put("/api/environments/fresh/entities", ADMIN_TOKEN, defs)
            .await
            .status,
        StatusCode::OK
    );
    let parent = p
        .post(
            "/api/environments/fresh/data/cr_parents",
            ADMIN_TOKEN,
            json!({"cr_name":"p"}),
        )
        .await;
    let pid = parent.body["id"].as_str().unwrap().to_string();
    let u = p.user("maker@contoso.com", "maker").await;
    p.put(
        "/api/environments/fresh/roles/Basic",
        ADMIN_TOKEN,
        json!({"privileges":{"cr_child":["Create","Read","Write"],"cr_parent":["Read"]}}),
    )
    .await;
    p.post(
        "/api/environments/fresh/roles/Basic/members",
        ADMIN_TOKEN,
        json!({"user":"maker@contoso.com"}),
    )
    .await;
    let plain = p
        .post("/api/environments/fresh/data/cr_childs", &u, json!({}))
        .await;
    assert_eq!(plain.status, StatusCode::CREATED, "{}", plain.body);
    let linked = p
        .post(
            "/api/environments/fresh/data/cr_childs",
            &u,
            json!({"cr_parent":pid}),
        )
        .await;
    assert_eq!(linked.status, StatusCode::FORBIDDEN);
    assert!(linked.message().contains("Append"), "{}", linked.body);
    p.put("/api/environments/fresh/roles/Basic", ADMIN_TOKEN, json!({"privileges":{"cr_child":["Create","Read","Write","Append"],"cr_parent":["Read","AppendTo"]}})).await;
    let linked = p
        .post(
            "/api/environments/fresh/data/cr_childs",
            &u,
            json!({"cr_parent":pid}),
        )
        .await;
    assert_eq!(linked.status, StatusCode::CREATED, "{}", linked.body);
}

#[tokio::test]
async fn first_start_writes_a_private_admin_token_stored_only_as_a_hash() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let store = uplift_store::Store::open(uplift_store::Backend::Sqlite {
        data_dir: dir.path().to_path_buf(),
    })
    .await
    .unwrap();
    let boot = uplift_server::bootstrap(&store, dir.path(), None)
        .await
        .unwrap();
    let token = boot.new_token.expect("a new token on first start");
    let file = dir.path().join("admin.token");
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), token);
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // A restart makes no new token; the old one still works.
    let again = uplift_server::bootstrap(&store, dir.path(), None)
        .await
        .unwrap();
    assert!(again.new_token.is_none());
    let user = store
        .control()
        .user_by_token_hash(&uplift_server::auth::hash_token(&token))
        .await
        .unwrap();
    assert_eq!(
        user.unwrap().role,
        uplift_model::security::PlatformRole::Admin
    );
    drop(store);
    let mut raw = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let p = entry.unwrap().path();
        if p.to_string_lossy().contains("control.db") {
            raw.extend(std::fs::read(p).unwrap());
        }
    }
    let text = String::from_utf8_lossy(&raw);
    assert!(!text.contains(&token), "the token itself is never stored");
    assert!(
        text.contains(&uplift_server::auth::hash_token(&token)),
        "its hash is"
    );
}

#[engine_test]
async fn oversized_bodies_and_unknown_paths_get_json_errors(p: Platform) {
    p.create_env("commons", "classic", "open").await;
    let big = json!({"Name": "x".repeat(uplift_server::MAX_BODY_BYTES + 10)});
    let a = p
        .post("/api/environments/commons/data/accounts", ADMIN_TOKEN, big)
        .await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", a.body);
    assert!(a.body["error"]["message"].is_string());
    let n = p.get("/api/nothing/here", ADMIN_TOKEN).await;
    assert_eq!(n.status, StatusCode::NOT_FOUND);
    assert!(n.message().contains("/api/nothing/here"));
    let count = p
        .get(
            "/api/environments/commons/data/accounts/$count",
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(count.body, json!(0));
}

/// In a restricted environment, what it is made of (its details, entities,
/// `$metadata`, apps and their definitions) is refused to a user without a role,
/// as its records are; a role opens it.
#[engine_test]
async fn a_user_without_a_role_reads_nothing_of_a_restricted_environment(p: Platform) {
    p.create_env("contoso", "classic", "restricted").await;
    let app = json!({"name": "Desk", "owner": "admin@uplift.local",
                     "views": [{"name": "All", "entity": "Account", "columns": ["Name"]}]});
    let a = p
        .put("/api/environments/contoso/apps/Desk", ADMIN_TOKEN, app)
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let nobody = p.user("nobody@contoso.com", "user").await;
    let reads = [
        "/api/environments/contoso",
        "/api/environments/contoso/entities",
        "/api/environments/contoso/entities/Account",
        "/api/environments/contoso/data/$metadata",
        "/api/environments/contoso/apps/Desk",
    ];
    for path in reads {
        let a = p.get(path, &nobody).await;
        assert_eq!(
            a.status,
            StatusCode::FORBIDDEN,
            "{}: {path}: {}",
            p.engine,
            a.body
        );
    }
    let apps = p.get("/api/environments/contoso/apps", &nobody).await;
    assert_eq!(apps.body["value"], json!([]), "{}", p.engine);
    p.put(
        "/api/environments/contoso/roles/Reader",
        ADMIN_TOKEN,
        json!({"privileges": {"Account": ["Read"]}}),
    )
    .await;
    p.post(
        "/api/environments/contoso/roles/Reader/members",
        ADMIN_TOKEN,
        json!({"user": "nobody@contoso.com"}),
    )
    .await;
    for path in reads {
        let a = p.get(path, &nobody).await;
        assert_eq!(
            a.status,
            StatusCode::OK,
            "{}: {path} with a role: {}",
            p.engine,
            a.body
        );
    }
    let apps = p.get("/api/environments/contoso/apps", &nobody).await;
    assert_eq!(apps.body["value"][0]["name"], "Desk", "{}", p.engine);
}

/// Tokens are listed without the token and revoked by id; a revoked token stops
/// working at once.
#[engine_test]
async fn a_revoked_token_stops_working_at_once(p: Platform) {
    let first = p.user("ada@contoso.com", "maker").await;
    let second = p
        .post("/api/tokens", &first, json!({"label": "laptop"}))
        .await
        .body["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(p.get("/api/me", &second).await.status, StatusCode::OK);
    let listed = p.get("/api/tokens", &second).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    let mine = listed.body.as_array().unwrap();
    assert_eq!(
        mine.len(),
        2,
        "{}: only ada's own tokens: {}",
        p.engine,
        listed.body
    );
    assert!(
        !listed.body.to_string().contains(&second),
        "the token itself is never listed"
    );
    let laptop = mine.iter().find(|t| t["label"] == "laptop").unwrap();
    let id = laptop["id"].as_str().unwrap();
    let path = format!("/api/tokens/{id}");
    assert_eq!(p.delete(&path, &first).await.status, StatusCode::NO_CONTENT);
    assert_eq!(
        p.get("/api/me", &second).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(p.get("/api/me", &first).await.status, StatusCode::OK);
    assert_eq!(p.delete(&path, &first).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        p.delete("/api/tokens/nothex", &first).await.status,
        StatusCode::NOT_FOUND
    );
}
