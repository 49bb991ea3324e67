//! Databases besides production (an upgrade's test database) and the upgrade event log.

use uplift_model::{Catalog, SchemaVersion};

use crate::support::Platform;
use uplift_test_macros::engine_test;

#[engine_test]
async fn test_databases_are_created_reopened_and_removed_with_their_environment(p: Platform) {
    p.create_env("contoso", "classic", "open").await;
    let s = &p.store;
    assert!(!s.database_exists("contoso", "test-1").await.unwrap());
    let db = s
        .create_database("contoso", "test-1", Catalog::empty(SchemaVersion::Modern))
        .await
        .unwrap();
    assert_eq!(db.catalog().version, SchemaVersion::Modern);
    assert!(
        s.database_exists("contoso", "test-1").await.unwrap(),
        "{}",
        p.engine
    );
    // Production is untouched and still classic.
    assert_eq!(
        s.env_db("contoso").await.unwrap().catalog().version,
        SchemaVersion::Classic
    );
    assert!(
        s.create_database("contoso", "prod", Catalog::empty(SchemaVersion::Modern))
            .await
            .is_err()
    );
    assert!(
        s.create_database("contoso", "../x", Catalog::empty(SchemaVersion::Modern))
            .await
            .is_err()
    );

    // A killed load leaves a rollback journal beside the file; it must go with it,
    // or SQLite would play it back into the next database created there.
    let journal = match db.pool() {
        uplift_store::Pool::Sqlite(f) => {
            let j = std::path::PathBuf::from(format!("{}-journal", f.path().display()));
            std::fs::write(&j, b"stale").unwrap();
            Some(j)
        }
        uplift_store::Pool::Postgres(_) => None,
    };
    drop(db);
    s.remove_database("contoso", "test-1").await.unwrap();
    assert!(!s.database_exists("contoso", "test-1").await.unwrap());
    if let Some(j) = journal {
        assert!(!j.exists(), "the journal is removed with the database");
    }
    assert!(s.database("contoso", "test-1").await.is_err());

    s.create_database("contoso", "test-2", Catalog::empty(SchemaVersion::Modern))
        .await
        .unwrap();
    s.delete_environment("contoso").await.unwrap();
    assert!(
        !s.database_exists("contoso", "test-2").await.unwrap(),
        "{}: deleting the environment removes its test databases",
        p.engine
    );
}

#[engine_test]
async fn upgrade_events_append_in_order(p: Platform) {
    p.create_env("contoso", "classic", "open").await;
    let c = p.store.control();
    c.insert_upgrade("u1", "contoso").await.unwrap();
    for i in 1..=3 {
        let seq = c
            .append_event("u1", "2026-01-01T00:00:00Z", &format!("{{\"n\":{i}}}"))
            .await
            .unwrap();
        assert_eq!(seq, i);
    }
    assert_eq!(
        c.events("u1").await.unwrap(),
        ["{\"n\":1}", "{\"n\":2}", "{\"n\":3}"]
    );
    assert_eq!(c.upgrades("contoso").await.unwrap(), ["u1"]);
    assert!(
        c.append_event("nope", "t", "{}").await.is_err(),
        "{}: events belong to a known upgrade",
        p.engine
    );
}

/// The check is only worth something if it notices a difference: copy, verify the
/// checksums agree, then change one stored value and see them disagree.
#[engine_test]
async fn the_copy_checksum_notices_a_changed_row(p: Platform) {
    use std::sync::Arc;
    use uplift_store::copy::{self, CopyObserver};
    struct Quiet;
    impl CopyObserver for Quiet {
        fn progress(&self, _: &str, _: u64, _: u64) {}
        fn cancelled(&self) -> bool {
            false
        }
    }
    p.create_env("acme", "classic", "open").await;
    for name in ["Fabrikam", "Contoso", "Northwind"] {
        let a = p
            .post(
                "/api/environments/acme/data/accounts",
                crate::support::ADMIN_TOKEN,
                serde_json::json!({"Name": name}),
            )
            .await;
        assert_eq!(a.status, axum::http::StatusCode::CREATED);
    }
    let prod = p.store.env_db("acme").await.unwrap();
    let plan = uplift_plan::parse_plan(uplift_plan::builtin("classic-to-modern").unwrap()).unwrap();
    let options = uplift_plan::Options {
        language: "en".into(),
        currency: "USD".into(),
        exchange_rates: Default::default(),
    };
    let upgrade = uplift_plan::apply(&plan, &prod.catalog(), &options).unwrap();
    let test = p
        .store
        .create_database_with(
            "acme",
            "test-1",
            upgrade.target.clone(),
            uplift_store::ddl::Keys::AfterLoad,
        )
        .await
        .unwrap();
    let t = upgrade.transform("Account").unwrap().clone();
    let account = prod.catalog().entity("Account").unwrap().clone();
    let work = vec![(t.clone(), copy::source_types(&prod, &account))];
    let ctx = uplift_model::transform::EvalContext {
        upgrade_time: time::OffsetDateTime::UNIX_EPOCH,
        actor: "a@b.c".into(),
    };
    let limits = copy::CopyLimits {
        chunk_rows: 2,
        chunk_pause_ms: 0,
    };
    let out = copy::copy(&prod, &test, &work, &ctx, limits, Arc::new(Quiet))
        .await
        .unwrap();
    assert_eq!(out[0].imported, 3);
    assert!(out[0].matches(), "{}: {:?}", p.engine, out[0]);
    let (rows, sum) = copy::target_checksum(&test, &t).await.unwrap();
    assert_eq!((rows, &sum), (out[0].target_rows, &out[0].target_checksum));
    assert_eq!(
        (rows, sum.clone()),
        (out[0].source_rows, out[0].source_checksum.clone()),
        "{}",
        p.engine
    );
    let mut conn = test.pool().conn().await.unwrap();
    conn.batch(&format!(
        "UPDATE {} SET {} = 'Tampered' WHERE {} = 'Contoso'",
        test.qualify("account"),
        "\"name\"",
        "\"name\""
    ))
    .await
    .unwrap();
    let (rows2, sum2) = copy::target_checksum(&test, &t).await.unwrap();
    assert_eq!(rows2, rows);
    assert_ne!(
        sum2, sum,
        "{}: a changed value changes the checksum",
        p.engine
    );
}
