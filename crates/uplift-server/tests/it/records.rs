//! Record CRUD of every field type, validation, ETags and lookups.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{ADMIN_TOKEN, Platform};
use uplift_test_macros::engine_test;

const PNG_B64: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGMAAQAABQABDQottAAAAABJRU5ErkJggg==";

fn classic_all_types() -> Value {
    json!({"fields":[
        {"name":"Title","type":"Text","required":true,"max_length":20},
        {"name":"Mail","type":"Email"},
        {"name":"Tel","type":"Phone"},
        {"name":"Web","type":"WebsiteUrl"},
        {"name":"Ref","type":"Guid"},
        {"name":"Memo","type":"MultilineText"},
        {"name":"Body","type":"LargeText"},
        {"name":"Site","type":"Address"},
        {"name":"Person","type":"PersonName"},
        {"name":"Seq","type":"AutoNumber"},
        {"name":"Small","type":"Integer"},
        {"name":"Big","type":"Number"},
        {"name":"Qty","type":"Quantity"},
        {"name":"Flag","type":"Boolean"},
        {"name":"Price","type":"Currency"},
        {"name":"Day","type":"Date"},
        {"name":"At","type":"DateTime"},
        {"name":"Stage","type":"Picklist","options":["Planned","Active","Done"]},
        {"name":"Pic","type":"Image"},
        {"name":"Customer","type":"Lookup","target":"Account"},
        {"name":"Owner","type":"UserOrGroup"}]})
}

fn modern_all_types() -> Value {
    json!({"fields":[
        {"name":"cr_name","type":"SingleLineText","required":true},
        {"name":"cr_mail","type":"SingleLineText","format":"Email"},
        {"name":"cr_tel","type":"SingleLineText","format":"Phone"},
        {"name":"cr_web","type":"SingleLineText","format":"Url"},
        {"name":"cr_memo","type":"MultipleLinesOfText"},
        {"name":"cr_count","type":"WholeNumber"},
        {"name":"cr_ratio","type":"DecimalNumber"},
        {"name":"cr_flag","type":"TwoOptions"},
        {"name":"cr_state","type":"OptionSet","options":[{"value":1,"label":"Open"},{"value":2,"label":"Closed"}]},
        {"name":"cr_amount","type":"Money"},
        {"name":"cr_due","type":"DateTime","date_only":true},
        {"name":"cr_at","type":"DateTime"},
        {"name":"cr_pic","type":"Image"},
        {"name":"cr_parent","type":"Lookup","target":"cr_thing"},
        {"name":"cr_ref","type":"UniqueIdentifier"}]})
}

/// Asserts every key of `sent` reads back equal.
fn assert_round_trip(engine: &str, sent: &Value, got: &Value) {
    for (k, v) in sent.as_object().unwrap() {
        assert_eq!(&got[k], v, "{engine}: field {k} did not round-trip: {got}");
    }
}

async fn account(p: &Platform, env: &str) -> String {
    let a = p
        .post(
            &format!("/api/environments/{env}/data/accounts"),
            ADMIN_TOKEN,
            json!({"Name":"Fabrikam"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    a.body["id"].as_str().unwrap().to_string()
}

#[engine_test]
async fn every_classic_type_round_trips(p: Platform) {
    p.create_env("contoso", "classic", "open").await;
    let d = p
        .put(
            "/api/environments/contoso/entities/Gadget",
            ADMIN_TOKEN,
            classic_all_types(),
        )
        .await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.body);
    let acc = account(&p, "contoso").await;
    let record = json!({
        "Title":"Widget","Mail":"ada@example.com","Tel":"+44 20 7946 0958","Web":"https://example.com/x",
        "Ref":"6f9619ff-8b86-d011-b42d-00c04fc964ff","Memo":"line one\nline two","Body":"x".repeat(5000),
        "Site":{"line1":"1 Rue de Rivoli","line2":"Bâtiment B","city":"Paris","state_or_province":"Île-de-France","postal_code":"75001","country":"France"},
        "Person":{"first_name":"Ada","middle_name":"King","last_name":"Lovelace"},
        "Small":-42,"Big":9007199254740000i64,"Qty":12.75,"Flag":true,
        "Price":{"code":"EUR","value":12.5},"Day":"1699-12-31","At":"2024-03-01T08:00:00.123Z",
        "Stage":"Active","Pic":PNG_B64,"Customer":acc,"Owner":"Sales Team"
    });
    let c = p
        .post(
            "/api/environments/contoso/data/gadgets",
            ADMIN_TOKEN,
            record.clone(),
        )
        .await;
    assert_eq!(c.status, StatusCode::CREATED, "{}: {}", p.engine, c.body);
    let id = c.body["id"].as_str().unwrap();
    assert!(
        c.headers["odata-entityid"]
            .to_str()
            .unwrap()
            .ends_with(&format!("gadgets({id})"))
    );
    assert_eq!(c.body["Seq"], 1, "AutoNumber is assigned");
    assert_eq!(c.body["CreatedBy"], "admin@uplift.local");
    assert!(c.body["CreatedDateTime"].is_string());
    let g = p
        .get(
            &format!("/api/environments/contoso/data/gadgets({id})"),
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(g.status, StatusCode::OK);
    assert_round_trip(p.engine, &record, &g.body);
    // A second record continues the AutoNumber series; partial complex values keep nulls.
    let c2 = p
        .post(
            "/api/environments/contoso/data/gadgets",
            ADMIN_TOKEN,
            json!({"Title":"Second","Site":{"city":"Oslo"}}),
        )
        .await;
    assert_eq!(c2.body["Seq"], 2);
    assert_eq!(
        c2.body["Site"],
        json!({"line1":null,"line2":null,"city":"Oslo","state_or_province":null,"postal_code":null,"country":null})
    );
    // Offsets are kept as the same instant, normalised to UTC.
    let u = p
        .patch(
            &format!("/api/environments/contoso/data/gadgets({id})"),
            ADMIN_TOKEN,
            json!({"At":"2024-03-01T10:00:00.5+02:00","Stage":"done"}),
        )
        .await;
    assert_eq!(u.body["At"], "2024-03-01T08:00:00.500Z");
    assert_eq!(
        u.body["Stage"], "Done",
        "picklist labels match without regard to case"
    );
}

#[engine_test]
async fn every_modern_type_round_trips(p: Platform) {
    p.create_env("fresh", "modern", "open").await;
    let base = p
        .put(
            "/api/environments/fresh/entities/cr_thing",
            ADMIN_TOKEN,
            json!({"fields":[{"name":"cr_label","type":"SingleLineText"}]}),
        )
        .await;
    assert_eq!(base.status, StatusCode::OK, "{}", base.body);
    let d = p
        .put(
            "/api/environments/fresh/entities/cr_thing",
            ADMIN_TOKEN,
            modern_all_types(),
        )
        .await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.body);
    let parent = p
        .post(
            "/api/environments/fresh/data/cr_things",
            ADMIN_TOKEN,
            json!({"cr_name":"parent"}),
        )
        .await;
    let parent_id = parent.body["id"].as_str().unwrap().to_string();
    let record = json!({
        "cr_name":"Thing","cr_mail":"grace@example.org","cr_tel":"(555) 010-9999","cr_web":"http://example.org",
        "cr_memo":"many\nlines","cr_count":123456789012i64,"cr_ratio":0.125,"cr_flag":false,"cr_state":2,
        "cr_amount":{"value":100.0,"currency":"GBP","base_value":127.0,"exchange_rate":1.27},
        "cr_due":"1600-02-29","cr_at":"1999-12-31T23:59:59.999Z","cr_pic":PNG_B64,"cr_parent":parent_id,
        "cr_ref":"00000000-0000-0000-0000-000000000001"
    });
    let c = p
        .post(
            "/api/environments/fresh/data/cr_things",
            ADMIN_TOKEN,
            record.clone(),
        )
        .await;
    assert_eq!(c.status, StatusCode::CREATED, "{}: {}", p.engine, c.body);
    let id = c.body["id"].as_str().unwrap();
    let g = p
        .get(
            &format!("/api/environments/fresh/data/cr_things({id})"),
            ADMIN_TOKEN,
        )
        .await;
    assert_round_trip(p.engine, &record, &g.body);
    assert!(g.body["createdon"].is_string() && g.body["modifiedby"] == "admin@uplift.local");
    // Option sets accept a label too, and answer with the value.
    let u = p
        .patch(
            &format!("/api/environments/fresh/data/cr_things({id})"),
            ADMIN_TOKEN,
            json!({"cr_state":"open"}),
        )
        .await;
    assert_eq!(u.body["cr_state"], 1);
    // The import time can be carried over; the platform's own times cannot be set.
    let o = p
        .patch(
            &format!("/api/environments/fresh/data/cr_things({id})"),
            ADMIN_TOKEN,
            json!({"overriddencreatedon":"2001-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(o.body["overriddencreatedon"], "2001-01-01T00:00:00.000Z");
    let ro = p
        .patch(
            &format!("/api/environments/fresh/data/cr_things({id})"),
            ADMIN_TOKEN,
            json!({"createdon":"2001-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(ro.status, StatusCode::BAD_REQUEST);
    assert!(ro.message().contains("'createdon'"));
}

#[engine_test]
async fn invalid_values_are_refused_naming_the_field(p: Platform) {
    let cases = [
        (json!({"Title":"t","Mail":"nope"}), "field 'Mail'"),
        (json!({"Title":"t","Tel":"call me maybe"}), "field 'Tel'"),
        (json!({"Title":"t","Web":"ftp://x"}), "field 'Web'"),
        (
            json!({"Title":"this title is far too long to fit"}),
            "field 'Title' is 33 characters long",
        ),
        (json!({"Title":"t","Small":3000000000i64}), "field 'Small'"),
        (
            json!({"Title":"t","Stage":"Cancelled"}),
            "field 'Stage': 'Cancelled' is not one of its options",
        ),
        (json!({"Title":"t","Day":"2024-02-30"}), "field 'Day'"),
        (
            json!({"Title":"t","Price":{"code":"EUR"}}),
            "field 'Price/value' is required",
        ),
        (
            json!({"Title":"t","Site":{"town":"x"}}),
            "field 'Site' has no part 'town'",
        ),
        (json!({"Title":"t","Flag":"yes"}), "field 'Flag'"),
        (
            json!({"Title":"t","Customer":"00000000-0000-0000-0000-00000000abcd"}),
            "field 'Customer': there is no Account",
        ),
        (
            json!({"Title":"t","Nope":1}),
            "'Nope' is not a field of entity 'Gadget'",
        ),
        (
            json!({"Mail":"ada@example.com"}),
            "field 'Title' is required",
        ),
        (json!({"Title":null}), "field 'Title' is required"),
        (
            json!({"Title":"t","Seq":5}),
            "field 'Seq' is set by the platform",
        ),
        (
            json!({"Title":"t","Pic":"***"}),
            "field 'Pic': not valid base64",
        ),
    ];
    p.create_env("contoso", "classic", "open").await;
    p.put(
        "/api/environments/contoso/entities/Gadget",
        ADMIN_TOKEN,
        classic_all_types(),
    )
    .await;
    for (body, expected) in &cases {
        let a = p
            .post(
                "/api/environments/contoso/data/gadgets",
                ADMIN_TOKEN,
                body.clone(),
            )
            .await;
        assert_eq!(
            a.status,
            StatusCode::BAD_REQUEST,
            "{}: {body}: {}",
            p.engine,
            a.body
        );
        assert!(
            a.message().contains(expected),
            "{}: expected '{expected}' in '{}'",
            p.engine,
            a.message()
        );
    }
    let n = p
        .get("/api/environments/contoso/data/gadgets/$count", ADMIN_TOKEN)
        .await;
    assert_eq!(n.body, json!(0), "{}: nothing was written", p.engine);
    let junk = p
        .call(
            Method::POST,
            "/api/environments/contoso/data/gadgets",
            Some(ADMIN_TOKEN),
            None,
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(junk.status, StatusCode::BAD_REQUEST);
    assert!(junk.message().contains("request body"), "{}", junk.body);
    let nokey = p
        .get(
            "/api/environments/contoso/data/gadgets(not-a-guid)",
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(nokey.status, StatusCode::BAD_REQUEST);
    let noset = p
        .get("/api/environments/contoso/data/nothings", ADMIN_TOKEN)
        .await;
    assert_eq!(noset.status, StatusCode::NOT_FOUND);
    assert!(noset.message().contains("no entity set 'nothings'"));
}

#[engine_test]
async fn stale_etags_are_refused_with_412(p: Platform) {
    p.create_env("contoso", "classic", "open").await;
    let id = account(&p, "contoso").await;
    let path = format!("/api/environments/contoso/data/accounts({id})");
    let first = p.get(&path, ADMIN_TOKEN).await;
    let etag = first.headers["etag"].to_str().unwrap().to_string();
    assert_eq!(first.body["@odata.etag"], etag.as_str());
    let ok = p
        .call(
            Method::PATCH,
            &path,
            Some(ADMIN_TOKEN),
            Some(json!({"Phone":"+1 555 0100"})),
            &[("if-match", &etag)],
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_ne!(ok.headers["etag"].to_str().unwrap(), etag);
    let stale = p
        .call(
            Method::PATCH,
            &path,
            Some(ADMIN_TOKEN),
            Some(json!({"Phone":"+1 555 0199"})),
            &[("if-match", &etag)],
        )
        .await;
    assert_eq!(
        stale.status,
        StatusCode::PRECONDITION_FAILED,
        "{}",
        stale.body
    );
    assert_eq!(stale.body["error"]["code"], "PreconditionFailed");
    let now = p.get(&path, ADMIN_TOKEN).await;
    assert_eq!(
        now.body["Phone"], "+1 555 0100",
        "the stale write changed nothing"
    );
    let del = p
        .call(
            Method::DELETE,
            &path,
            Some(ADMIN_TOKEN),
            None,
            &[("if-match", &etag)],
        )
        .await;
    assert_eq!(del.status, StatusCode::PRECONDITION_FAILED);
    let any = p
        .call(
            Method::PATCH,
            &path,
            Some(ADMIN_TOKEN),
            Some(json!({"Phone":"+1 555 0177"})),
            &[("if-match", "*")],
        )
        .await;
    assert_eq!(any.status, StatusCode::OK);
}

#[engine_test]
async fn lookups_bind_by_reference_and_clear_on_delete(p: Platform) {
    p.create_env("contoso", "classic", "open").await;
    let acc = account(&p, "contoso").await;
    let c = p
        .post(
            "/api/environments/contoso/data/contacts",
            ADMIN_TOKEN,
            json!({"FullName":{"first_name":"Ada","middle_name":null,"last_name":"Lovelace"},"Account@odata.bind":format!("accounts({acc})")}),
        )
        .await;
    assert_eq!(c.status, StatusCode::CREATED, "{}", c.body);
    assert_eq!(c.body["Account"], acc.as_str());
    let cid = c.body["id"].as_str().unwrap().to_string();
    let wrong = p
        .post(
            "/api/environments/contoso/data/contacts",
            ADMIN_TOKEN,
            json!({"FullName":{"last_name":"X"},"Account@odata.bind":format!("contacts({cid})")}),
        )
        .await;
    assert!(
        wrong.message().contains("looks up Account, not Contact"),
        "{}",
        wrong.body
    );
    let exp = p
        .get(
            &format!("/api/environments/contoso/data/contacts({cid})?$expand=Account_ref"),
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(exp.body["Account_ref"]["Name"], "Fabrikam", "{}", exp.body);
    assert!(
        exp.body["Account"].is_string(),
        "the lookup stays its id: {}",
        exp.body
    );
    let by_id = p
        .get(
            &format!("/api/environments/contoso/data/contacts({cid})?$expand=Account"),
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(by_id.status, StatusCode::BAD_REQUEST, "{}", by_id.body);
    assert!(
        by_id.message().contains("expand 'Account_ref'"),
        "{}",
        by_id.body
    );
    let del = p
        .delete(
            &format!("/api/environments/contoso/data/accounts({acc})"),
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    let after = p
        .get(
            &format!("/api/environments/contoso/data/contacts({cid})"),
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(
        after.body["Account"],
        Value::Null,
        "the lookup to the deleted account was cleared"
    );
    let gone = p
        .get(
            &format!("/api/environments/contoso/data/accounts({acc})"),
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    let dup = p
        .post(
            "/api/environments/contoso/data/contacts",
            ADMIN_TOKEN,
            json!({"id":cid,"FullName":{"last_name":"Again"}}),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT, "{}", dup.body);
}

/// A NUL character (which PostgreSQL cannot store and SQLite would keep) is refused in
/// any body with a 400 naming where it is, and nothing is written.
#[engine_test]
async fn nul_characters_are_refused_with_a_400_that_names_the_field(p: Platform) {
    p.create_env("contoso", "classic", "open").await;
    let set = "/api/environments/contoso/data/accounts";
    let id = account(&p, "contoso").await;
    let before = p.get(&format!("{set}/$count"), ADMIN_TOKEN).await.body;
    let cases = [
        (
            Method::POST,
            set.to_string(),
            json!({"Name": "a\u{0}b"}),
            "Name",
        ),
        (
            Method::POST,
            set.to_string(),
            json!({"Name": "ok", "Address": {"city": "\u{0}"}}),
            "Address.city",
        ),
        (
            Method::PATCH,
            format!("{set}({id})"),
            json!({"Phone": "\u{0}"}),
            "Phone",
        ),
        (
            Method::POST,
            "/api/users".to_string(),
            json!({"email": "n@x.test", "display_name": "N\u{0}", "role": "user"}),
            "display_name",
        ),
    ];
    for (method, path, body, at) in cases {
        let a = p
            .call(method.clone(), &path, Some(ADMIN_TOKEN), Some(body), &[])
            .await;
        assert_eq!(
            a.status,
            StatusCode::BAD_REQUEST,
            "{}: {method} {path}: {}",
            p.engine,
            a.body
        );
        assert_eq!(
            a.message(),
            format!("request body: {at}: text must not contain the NUL character (U+0000)"),
            "{}",
            p.engine
        );
    }
    let after = p.get(&format!("{set}/$count"), ADMIN_TOKEN).await.body;
    assert_eq!(before, after, "{}: nothing was created", p.engine);
    let rec = p.get(&format!("{set}({id})"), ADMIN_TOKEN).await.body;
    assert!(
        rec["Phone"].is_null(),
        "{}: nothing was changed: {rec}",
        p.engine
    );
    let users = p.get("/api/users", ADMIN_TOKEN).await.body;
    assert!(!users.to_string().contains("n@x.test"), "{}", p.engine);
}

/// A PATCH may send the record's own id back, but not another id, nor an id of
/// another type.
#[engine_test]
async fn a_patch_cannot_change_the_id(p: Platform) {
    p.create_env("contoso", "classic", "open").await;
    let id = account(&p, "contoso").await;
    let path = format!("/api/environments/contoso/data/accounts({id})");
    let same = p
        .patch(
            &path,
            ADMIN_TOKEN,
            json!({"id": id, "Phone": "+1 555 0100"}),
        )
        .await;
    assert_eq!(same.status, StatusCode::OK, "{}: {}", p.engine, same.body);
    let other = uuid::Uuid::new_v4().to_string();
    for bad in [json!(5), json!(other), json!(null), json!({"id": 1})] {
        let a = p
            .patch(
                &path,
                ADMIN_TOKEN,
                json!({"id": bad, "Phone": "+1 555 0199"}),
            )
            .await;
        assert_eq!(
            a.status,
            StatusCode::BAD_REQUEST,
            "{}: {bad}: {}",
            p.engine,
            a.body
        );
        assert!(
            a.message().contains("the id of a record cannot be changed"),
            "{}",
            a.message()
        );
    }
    let rec = p.get(&path, ADMIN_TOKEN).await.body;
    assert_eq!(
        rec["Phone"], "+1 555 0100",
        "{}: nothing was changed",
        p.engine
    );
}

/// Holds a write lock on `id`'s row (PostgreSQL) or on the whole database (SQLite)
/// until `release` is awaited, so two writers can be made to wait side by side.
enum Held {
    Postgres(tokio_postgres::Client),
    Sqlite(rusqlite::Connection),
}

impl Held {
    async fn lock(p: &Platform, id: &str) -> Held {
        match p.pg_client().await {
            Some(c) => {
                c.batch_execute(&format!(
                    "BEGIN; SELECT 1 FROM env_contoso.account WHERE id = '{id}' FOR UPDATE"
                ))
                .await
                .unwrap();
                Held::Postgres(c)
            }
            None => {
                let db =
                    rusqlite::Connection::open(p.data_dir().join("envs/contoso/prod.db")).unwrap();
                db.execute_batch("BEGIN IMMEDIATE").unwrap();
                Held::Sqlite(db)
            }
        }
    }

    /// Lets go after both writers had time to start waiting.
    async fn release(self) {
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        match self {
            Held::Postgres(c) => c.batch_execute("ROLLBACK").await.unwrap(),
            Held::Sqlite(db) => db.execute_batch("ROLLBACK").unwrap(),
        }
    }
}

/// A PATCH and a DELETE sent with the same ETag at the same moment: one wins and the
/// other is refused, so no acknowledged write is destroyed; so for two DELETEs.
#[engine_test]
async fn two_writes_with_one_etag_cannot_both_succeed(p: Platform) {
    p.create_env("contoso", "classic", "open").await;
    for second_is_delete in [false, true] {
        let id = account(&p, "contoso").await;
        let path = format!("/api/environments/contoso/data/accounts({id})");
        let etag = p.get(&path, ADMIN_TOKEN).await.headers["etag"]
            .to_str()
            .unwrap()
            .to_string();
        let if_match = [("if-match", etag.as_str())];
        let held = Held::lock(&p, &id).await;
        let (first, second, ()) = tokio::join!(
            p.call(Method::DELETE, &path, Some(ADMIN_TOKEN), None, &if_match),
            async {
                match second_is_delete {
                    true => {
                        p.call(Method::DELETE, &path, Some(ADMIN_TOKEN), None, &if_match)
                            .await
                    }
                    false => {
                        let body = json!({"Phone": "+1 555 0100"});
                        p.call(
                            Method::PATCH,
                            &path,
                            Some(ADMIN_TOKEN),
                            Some(body),
                            &if_match,
                        )
                        .await
                    }
                }
            },
            held.release(),
        );
        let ok = [&first, &second]
            .iter()
            .filter(|a| a.status.is_success())
            .count();
        assert_eq!(
            ok, 1,
            "{}: {} and {}: {} / {}",
            p.engine, first.status, second.status, first.body, second.body
        );
        let loser = if first.status.is_success() {
            &second
        } else {
            &first
        };
        assert!(
            [StatusCode::PRECONDITION_FAILED, StatusCode::NOT_FOUND].contains(&loser.status),
            "{}: {}",
            p.engine,
            loser.status
        );
    }
}

/// A record created with a lookup while its target is deleted never points at the
/// deleted record. The create is held between its check of the target and its
/// commit (an uncommitted row with the same id makes its insert wait) while the
/// delete runs; on SQLite the one writer orders them anyway.
#[engine_test]
async fn a_lookup_never_points_at_a_record_deleted_meanwhile(p: Platform) {
    p.create_env("contoso", "classic", "open").await;
    let acc = account(&p, "contoso").await;
    let contact = uuid::Uuid::new_v4().to_string();
    let held = match p.pg_client().await {
        Some(c) => {
            c.batch_execute(&format!(
                "BEGIN; INSERT INTO env_contoso.contact (id) VALUES ('{contact}')"
            ))
            .await
            .unwrap();
            Held::Postgres(c)
        }
        None => Held::lock(&p, &acc).await,
    };
    let data = "/api/environments/contoso/data";
    let body = json!({"id": contact, "FullName": {"last_name": "Byron"},
                      "Account@odata.bind": format!("accounts({acc})")});
    let contacts = format!("{data}/contacts");
    let (created, deleted, ()) = tokio::join!(
        p.post(&contacts, ADMIN_TOKEN, body),
        async {
            // The create has checked the account before the delete starts.
            tokio::time::sleep(std::time::Duration::from_millis(150)).await;
            p.delete(&format!("{data}/accounts({acc})"), ADMIN_TOKEN)
                .await
        },
        held.release(),
    );
    assert_eq!(
        deleted.status,
        StatusCode::NO_CONTENT,
        "{}: {}",
        p.engine,
        deleted.body
    );
    if created.status == StatusCode::CREATED {
        let c = p
            .get(&format!("{data}/contacts({contact})"), ADMIN_TOKEN)
            .await;
        assert!(
            c.body["Account"].is_null(),
            "{}: the contact points at the deleted account: {}",
            p.engine,
            c.body
        );
    } else {
        assert_eq!(
            created.status,
            StatusCode::BAD_REQUEST,
            "{}: {}",
            p.engine,
            created.body
        );
    }
}

/// With a public URL configured, `Location` and `@odata.nextLink` start with it,
/// whatever `Host` the client sent.
#[tokio::test]
async fn links_start_with_the_public_url_when_one_is_set() {
    use tower::ServiceExt as _;
    let dir = tempfile::tempdir().unwrap();
    let backend = uplift_store::Backend::Sqlite {
        data_dir: dir.path().to_path_buf(),
    };
    let store = uplift_store::Store::open(backend).await.unwrap();
    uplift_server::bootstrap(&store, dir.path(), Some(ADMIN_TOKEN))
        .await
        .unwrap();
    let state =
        uplift_server::AppState::new(store).with_public_url("https://uplift.example.com/u/");
    let router = uplift_server::router(state);
    let call = |method: Method, path: &str, body: Option<Value>| {
        let req = axum::http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "evil.test")
            .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
            .header("content-type", "application/json")
            .header("prefer", "odata.maxpagesize=1")
            .body(axum::body::Body::from(
                body.map_or(String::new(), |b| b.to_string()),
            ))
            .unwrap();
        router.clone().oneshot(req)
    };
    let env = json!({"name": "contoso", "schema_version": "classic", "security_mode": "open"});
    let r = call(Method::POST, "/api/environments", Some(env))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let set = "/api/environments/contoso/data/accounts";
    let mut locations = Vec::new();
    for name in ["A", "B"] {
        let r = call(Method::POST, set, Some(json!({"Name": name})))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        locations.push(r.headers()["location"].to_str().unwrap().to_string());
    }
    let origin = "https://uplift.example.com/u/api/environments/contoso/data";
    assert!(
        locations[0].starts_with(&format!("{origin}/accounts(")),
        "{locations:?}"
    );
    let r = call(Method::GET, &format!("{set}?$orderby=Name"), None)
        .await
        .unwrap();
    let bytes = http_body_util::BodyExt::collect(r.into_body())
        .await
        .unwrap()
        .to_bytes();
    let page: Value = serde_json::from_slice(&bytes).unwrap();
    let next = page["@odata.nextLink"].as_str().unwrap_or_default();
    assert!(next.starts_with(&format!("{origin}/accounts?")), "{page}");
    let context = page["@odata.context"].as_str().unwrap_or_default();
    assert!(context.starts_with(origin), "{page}");
}
