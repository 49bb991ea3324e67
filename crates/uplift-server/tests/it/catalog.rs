//! Environments and entity definitions through the admin API.

use axum::http::StatusCode;
use serde_json::json;

use crate::support::{ADMIN_TOKEN, Platform};
use uplift_test_macros::engine_test;

fn project() -> serde_json::Value {
    json!({"display_name":{"en":"Project","fr":"Projet"},"business_key":"Title","fields":[
        {"name":"Title","type":"Text","required":true,"max_length":200},
        {"name":"Stage","type":"Picklist","options":["Planned","Active","Done"]},
        {"name":"Customer","type":"Lookup","target":"Account"},
        {"name":"Budget","type":"Currency"},
        {"name":"Site","type":"Address"}]})
}

#[engine_test]
async fn environments_are_created_listed_shown_and_deleted(p: Platform) {
    p.create_env("contoso", "classic", "restricted").await;
    p.create_env("fresh", "modern", "open").await;
    let list = p.get("/api/environments", ADMIN_TOKEN).await;
    let names: Vec<&str> = list
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["contoso", "fresh"], "{}", p.engine);
    let show = p.get("/api/environments/contoso", ADMIN_TOKEN).await;
    assert_eq!(show.body["schema_version"], "classic");
    assert_eq!(
        show.body["entities"].as_array().unwrap().len(),
        9,
        "classic starts with the standard entities"
    );
    let modern = p.get("/api/environments/fresh", ADMIN_TOKEN).await;
    assert_eq!(modern.body["entities"], json!([]), "modern starts empty");

    let dup = p
        .post("/api/environments", ADMIN_TOKEN, json!({"name":"contoso"}))
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    let bad = p
        .post("/api/environments", ADMIN_TOKEN, json!({"name":"Bad Name"}))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let badv = p
        .post(
            "/api/environments",
            ADMIN_TOKEN,
            json!({"name":"x","schema_version":"future"}),
        )
        .await;
    assert!(
        badv.message().contains("schema_version") && badv.message().contains("future"),
        "{}",
        badv.body
    );

    assert_eq!(
        p.delete("/api/environments/fresh", ADMIN_TOKEN)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        p.get("/api/environments/fresh", ADMIN_TOKEN).await.status,
        StatusCode::NOT_FOUND
    );
    // The name is free again, with a fresh database.
    p.create_env("fresh", "modern", "open").await;
}

#[engine_test]
async fn entity_definitions_apply_idempotently_and_add_fields(p: Platform) {
    p.create_env("contoso", "classic", "open").await;
    let put = p
        .put(
            "/api/environments/contoso/entities/Project",
            ADMIN_TOKEN,
            project(),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}: {}", p.engine, put.body);
    assert_eq!(put.body["changes"], json!([{"created_entity":"Project"}]));
    let again = p
        .put(
            "/api/environments/contoso/entities/Project",
            ADMIN_TOKEN,
            project(),
        )
        .await;
    assert_eq!(
        again.body["changes"],
        json!([]),
        "re-applying changes nothing"
    );

    let e = p
        .get("/api/environments/contoso/entities/Project", ADMIN_TOKEN)
        .await;
    assert_eq!(e.body["set_name"], "projects");
    assert_eq!(e.body["origin"], "custom");
    assert_eq!(e.body["display_name"]["fr"], "Projet");
    let account = p
        .get("/api/environments/contoso/entities/Account", ADMIN_TOKEN)
        .await;
    assert_eq!(account.body["origin"], "standard");

    let created = p
        .post(
            "/api/environments/contoso/data/projects",
            ADMIN_TOKEN,
            json!({"Title":"Apollo"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();

    let more =
        json!({"fields":[{"name":"Notes","type":"LargeText"},{"name":"Phase","type":"Integer"}]});
    let add = p
        .put(
            "/api/environments/contoso/entities/Project",
            ADMIN_TOKEN,
            more,
        )
        .await;
    assert_eq!(
        add.body["changes"],
        json!([{"added_field":"Project.Notes"},{"added_field":"Project.Phase"}]),
        "{}",
        add.body
    );
    let upd = p
        .patch(
            &format!("/api/environments/contoso/data/projects({id})"),
            ADMIN_TOKEN,
            json!({"Notes":"long","Phase":2}),
        )
        .await;
    assert_eq!(upd.status, StatusCode::OK, "{}", upd.body);
    assert_eq!(
        upd.body["Title"], "Apollo",
        "existing rows keep their values"
    );
    assert_eq!(upd.body["Phase"], 2);
}

#[engine_test]
async fn bulk_apply_defines_entities_that_refer_to_each_other(p: Platform) {
    p.create_env("contoso", "classic", "open").await;
    let doc = json!({"entities": {
        "Task": {"fields":[{"name":"Project","type":"Lookup","target":"Project"},{"name":"Title","type":"Text"}]},
        "Project": project()
    }});
    let a = p
        .put("/api/environments/contoso/entities", ADMIN_TOKEN, doc)
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["changes"].as_array().unwrap().len(), 2);
}

#[engine_test]
async fn invalid_definitions_are_refused_naming_the_field_and_change_nothing(p: Platform) {
    let cases = [
        (
            json!({"fields":[{"name":"X","type":"Texty"}]}),
            "field 'X': unknown type 'Texty'",
        ),
        (
            json!({"fields":[{"name":"C","type":"Lookup","target":"Nowhere"}]}),
            "field 'C': looks up entity 'Nowhere'",
        ),
        (
            json!({"fields":[{"name":"A","type":"Text"},{"name":"A","type":"Integer"}]}),
            "field 'A': is defined twice",
        ),
        (
            json!({"fields":[{"name":"S","type":"SingleLineText"}]}),
            "field 'S': type 'SingleLineText' is a modern type",
        ),
        (
            json!({"fields":[{"name":"T","type":"Text","max_length":0}]}),
            "field 'T': max_length 0",
        ),
        (
            json!({"fields":[{"name":"ok","type":"Text"},{"name":"P","type":"Picklist","options":[]}]}),
            "field 'P'",
        ),
        (
            json!({"fields":[{"name":"N","typo":"Text"}]}),
            "request body",
        ),
    ];
    p.create_env("contoso", "classic", "open").await;
    let before = p
        .get("/api/environments/contoso/entities", ADMIN_TOKEN)
        .await
        .body;
    for (def, expected) in &cases {
        let a = p
            .put(
                "/api/environments/contoso/entities/Widget",
                ADMIN_TOKEN,
                def.clone(),
            )
            .await;
        assert_eq!(
            a.status,
            StatusCode::BAD_REQUEST,
            "{}: {def}: {}",
            p.engine,
            a.body
        );
        assert!(
            a.message().contains(expected),
            "{}: expected '{expected}' in '{}'",
            p.engine,
            a.message()
        );
        assert_eq!(a.body["error"]["code"], "BadRequest");
    }
    // A bad field on an existing entity refuses the whole definition.
    let mixed = json!({"fields":[{"name":"Fine","type":"Text"},{"name":"Name","type":"Integer"}]});
    let a = p
        .put(
            "/api/environments/contoso/entities/Account",
            ADMIN_TOKEN,
            mixed,
        )
        .await;
    assert!(
        a.message()
            .contains("field 'Name': is Text and cannot be changed to Integer"),
        "{}",
        a.body
    );
    let after = p
        .get("/api/environments/contoso/entities", ADMIN_TOKEN)
        .await
        .body;
    assert_eq!(
        before, after,
        "{}: refused definitions change nothing",
        p.engine
    );
    let probe = p
        .get("/api/environments/contoso/data/widgets", ADMIN_TOKEN)
        .await;
    assert_eq!(probe.status, StatusCode::NOT_FOUND);
}

#[engine_test]
async fn modern_environments_refuse_classic_types(p: Platform) {
    p.create_env("fresh", "modern", "open").await;
    let a = p
        .put(
            "/api/environments/fresh/entities/cr_thing",
            ADMIN_TOKEN,
            json!({"fields":[{"name":"cr_email","type":"Email"}]}),
        )
        .await;
    assert!(
        a.message().contains("'Email' is a classic type"),
        "{}",
        a.body
    );
}

/// Several creates of one environment at once: one 201, the rest 409, and the
/// environment that was created works.
#[engine_test]
async fn concurrent_creates_of_one_environment_have_one_winner(p: Platform) {
    let body = json!({"name": "race", "schema_version": "classic", "security_mode": "open"});
    let create = || p.post("/api/environments", ADMIN_TOKEN, body.clone());
    let (a, b, c, d) = tokio::join!(create(), create(), create(), create());
    let mut statuses: Vec<u16> = [&a, &b, &c, &d].iter().map(|x| x.status.as_u16()).collect();
    statuses.sort();
    assert_eq!(
        statuses,
        [201, 409, 409, 409],
        "{}: {a:?}",
        p.engine,
        a = a.body
    );
    let set = "/api/environments/race/data/accounts";
    let w = p.post(set, ADMIN_TOKEN, json!({"Name": "Contoso"})).await;
    assert_eq!(w.status, StatusCode::CREATED, "{}: {}", p.engine, w.body);
    let r = p.get(&format!("{set}/$count"), ADMIN_TOKEN).await;
    assert_eq!(r.body, json!(1), "{}: {}", p.engine, r.body);
}
