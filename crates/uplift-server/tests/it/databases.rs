//! Databases besides production (an upgrade's test database) and the upgrade event log.

use uplift_model::{Catalog, SchemaVersion};

use crate::support::platforms;

#[tokio::test]
async fn test_databases_are_created_reopened_and_removed_with_their_environment() {
    for p in platforms().await {
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

        s.remove_database("contoso", "test-1").await.unwrap();
        assert!(!s.database_exists("contoso", "test-1").await.unwrap());
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
}

#[tokio::test]
async fn upgrade_events_append_in_order() {
    for p in platforms().await {
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
}
