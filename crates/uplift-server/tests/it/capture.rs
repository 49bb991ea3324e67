//! Step 3's change capture on a real database: every committed write through the API
//! leaves its change, in order; a rolled-back one leaves none; consumed changes are
//! gone; removal takes the triggers with it.

use axum::http::StatusCode;
use serde_json::json;
use uplift_model::Value;
use uplift_store::capture::{self, Change, ChangeOp};

use crate::support::{ADMIN_TOKEN, Platform};
use uplift_test_macros::engine_test;

const DATA: &str = "/api/environments/acme/data";

/// What the captured changes say, without their sequence numbers.
fn said(changes: &[Change]) -> Vec<(String, String, ChangeOp)> {
    changes
        .iter()
        .map(|c| (c.entity.clone(), c.record_id.clone(), c.op))
        .collect()
}

async fn create(p: &Platform, set: &str, body: serde_json::Value) -> String {
    let r = p.post(&format!("{DATA}/{set}"), ADMIN_TOKEN, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}: {}", p.engine, r.body);
    r.body["id"].as_str().unwrap().to_string()
}

#[engine_test]
async fn every_committed_write_is_captured_in_order(p: Platform) {
    p.create_env("acme", "classic", "open").await;
    let before = create(&p, "accounts", json!({"Name": "Before"})).await;
    let db = p.store.env_db("acme").await.unwrap();
    assert!(!capture::installed(&db).await.unwrap());
    capture::install(&db).await.unwrap();
    capture::install(&db).await.unwrap(); // again: harmless
    assert!(capture::installed(&db).await.unwrap());
    assert_eq!(capture::lag(&db).await.unwrap(), 0, "{}", p.engine);

    let a = create(&p, "accounts", json!({"Name": "Fabrikam"})).await;
    let r = p
        .patch(
            &format!("{DATA}/accounts({a})"),
            ADMIN_TOKEN,
            json!({"Name": "Fabrikam Ltd"}),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let c = create(&p, "contacts", json!({"FullName": {"first_name": "Ada", "last_name": "Lovelace"}, "Email": "ada@acme.test"})).await;
    let r = p
        .delete(&format!("{DATA}/accounts({before})"), ADMIN_TOKEN)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);

    // A write that rolls back leaves no change.
    let account = db.catalog().entity("Account").unwrap().clone();
    let mut tx = db.pool().begin().await.unwrap();
    let sql = uplift_store::sql::placeholders(
        db.dialect(),
        &format!("DELETE FROM {} WHERE \"id\" = ?", db.table(&account)),
    );
    assert_eq!(
        tx.execute(&sql, &[Value::Text(a.clone())]).await.unwrap(),
        1
    );
    drop(tx);

    let all = capture::oldest(&db, 100).await.unwrap();
    let expected = [
        ("Account".to_string(), a.clone(), ChangeOp::Insert),
        ("Account".to_string(), a.clone(), ChangeOp::Update),
        ("Contact".to_string(), c.clone(), ChangeOp::Insert),
        ("Account".to_string(), before.clone(), ChangeOp::Delete),
    ];
    assert_eq!(said(&all), expected, "{}", p.engine);
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq), "{all:?}");
    assert_eq!(capture::lag(&db).await.unwrap(), 4);

    // Consumed changes are gone; the rest wait, oldest first.
    let seqs: Vec<i64> = all[..2].iter().map(|c| c.seq).collect();
    capture::consume(&db, &seqs).await.unwrap();
    assert_eq!(
        said(&capture::oldest(&db, 100).await.unwrap()),
        expected[2..]
    );
    assert_eq!(
        said(&capture::oldest(&db, 1).await.unwrap()),
        expected[2..3]
    );
}

#[engine_test]
async fn removing_capture_stops_it_and_can_be_repeated(p: Platform) {
    p.create_env("acme", "classic", "open").await;
    let db = p.store.env_db("acme").await.unwrap();
    capture::remove(&db).await.unwrap(); // nothing installed: harmless
    capture::install(&db).await.unwrap();
    create(&p, "accounts", json!({"Name": "Seen"})).await;
    assert_eq!(capture::lag(&db).await.unwrap(), 1, "{}", p.engine);
    capture::remove(&db).await.unwrap();
    assert!(!capture::installed(&db).await.unwrap());
    // Writes go on without the triggers, and a second install starts empty.
    create(&p, "accounts", json!({"Name": "Unseen"})).await;
    capture::install(&db).await.unwrap();
    assert_eq!(capture::lag(&db).await.unwrap(), 0, "{}", p.engine);
}
