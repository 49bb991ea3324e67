//! Step 1 runs the row transforms as SQL compiled for each engine (`transform_sql`);
//! `uplift_model::transform::evaluate` is the independent oracle of what they mean.
//! Generated rows of every classic type (nulls, unicode, extremes, fractions, dates
//! before 1753, unknown picklist labels, currencies without a rate, fields whose names
//! collide at 50 characters) go through both; values, refused rows, warned rows and
//! samples must agree exactly, on each engine.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::http::StatusCode;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::json;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};
use uplift_model::layout::{Column, entity_columns};
use uplift_model::transform::{EntityTransform, EvalContext, RowOutcome, Severity, evaluate};
use uplift_model::{ColType, Decimal, Entity, FieldType, SchemaVersion, Value};
use uplift_store::copy::{self, CopyLimits, CopyObserver};

use crate::support::{ADMIN_TOKEN, Platform};
use uplift_test_macros::engine_test;

/// Generated cases per engine, and rows per case: bounded, so the default run stays
/// fast; the generator is deterministic, so a failure repeats.
const CASES: usize = 6;
const ROWS_PER_CASE: usize = 24;
const LONG_PREFIX: &str = "AVeryLongCustomFieldNamePrefixThatIsExactlyFiftyCh";

fn thing() -> serde_json::Value {
    json!({"fields": [
        {"name":"Title","type":"Text"},{"name":"Mail","type":"Email"},{"name":"Tel","type":"Phone"},
        {"name":"Web","type":"WebsiteUrl"},{"name":"Ref","type":"Guid"},{"name":"Memo","type":"MultilineText"},
        {"name":"Body","type":"LargeText"},{"name":"Site","type":"Address"},{"name":"Person","type":"PersonName"},
        {"name":"Seq","type":"AutoNumber"},{"name":"Small","type":"Integer"},{"name":"Big","type":"Number"},
        {"name":"Qty","type":"Quantity"},{"name":"Flag","type":"Boolean"},{"name":"Price","type":"Currency"},
        {"name":"Day","type":"Date"},{"name":"At","type":"DateTime"},
        {"name":"Stage","type":"Picklist","options":["Planned","Active","Done","Kept"]},
        {"name":"Pic","type":"Image"},{"name":"Owner","type":"UserOrGroup"},
        {"name": format!("{LONG_PREFIX}One"), "type":"Integer"},
        {"name": format!("{LONG_PREFIX}Two"), "type":"Integer"}
    ]})
}

fn nullable(v: impl Strategy<Value = Value> + 'static) -> BoxedStrategy<Value> {
    prop_oneof![1 => Just(Value::Null), 4 => v].boxed()
}

fn text() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(String::new()),
        "[a-zA-Z0-9 ']{0,20}",
        "[^\u{0}]{0,30}",
        Just("\u{212A}ept".to_string()),
    ]
    .prop_map(Value::Text)
}

fn decimal() -> impl Strategy<Value = Decimal> {
    prop_oneof![
        (any::<i32>(), 0u32..=6).prop_map(|(m, s)| Decimal::new(i64::from(m), s)),
        (-1_000_000i64..1_000_000, 0u32..=2).prop_map(|(m, s)| Decimal::new(m, s)),
        prop::sample::select(vec![
            "2.5",
            "-2.5",
            "0.5",
            "-0.5",
            "0.125",
            "10000000000000000000",
            "-10000000000000000000",
            "9223372036854775807",
            "9223372036854775807.4",
            "-9223372036854775808",
            "123456789012345.678901",
        ])
        .prop_map(|s| Decimal::from_str_exact(s).unwrap()),
    ]
}

fn date() -> impl Strategy<Value = Date> {
    (1i32..=9999, 1u8..=12, 1u8..=28)
        .prop_map(|(y, m, d)| Date::from_calendar_date(y, Month::try_from(m).unwrap(), d).unwrap())
}

fn instant() -> impl Strategy<Value = OffsetDateTime> {
    (date(), 0u8..24, 0u8..60, 0u16..1000).prop_map(|(d, h, m, ms)| {
        PrimitiveDateTime::new(d, Time::from_hms_milli(h, m, 0, ms).unwrap()).assume_utc()
    })
}

/// A stored value for one column of the source: whatever a classic database may hold,
/// including what the data API would refuse today (unknown labels, codes without rates).
fn column_value(entity: &Entity, c: &Column) -> BoxedStrategy<Value> {
    let field = entity
        .field(SchemaVersion::Classic, &c.field)
        .map(|f| f.ty.clone());
    match (field, c.part, c.ty) {
        (Some(FieldType::Picklist { .. }), _, _) => nullable(
            prop::sample::select(vec![
                "Planned",
                "active",
                "DONE",
                "Nope",
                "",
                "Ａctive",
                "\u{212A}ept",
            ])
            .prop_map(|s| Value::Text(s.into())),
        ),
        (Some(FieldType::Currency), Some("code"), _) => nullable(
            prop::sample::select(vec!["EUR", "USD", "GBP", "JPY", "eur", "XXX", "ChF"])
                .prop_map(|s| Value::Text(s.into())),
        ),
        // The platform numbers every record: never NULL.
        (Some(FieldType::AutoNumber), _, _) => any::<i64>().prop_map(Value::Int).boxed(),
        (Some(FieldType::Integer), _, _) => {
            nullable(any::<i32>().prop_map(|i| Value::Int(i.into())))
        }
        (_, _, ColType::Text) => nullable(text()),
        (_, _, ColType::Int) => nullable(any::<i64>().prop_map(Value::Int)),
        (_, _, ColType::Decimal) => nullable(decimal().prop_map(Value::Decimal)),
        (_, _, ColType::Bool) => nullable(any::<bool>().prop_map(Value::Bool)),
        (_, _, ColType::Date) => nullable(date().prop_map(Value::Date)),
        (_, _, ColType::DateTime) => nullable(instant().prop_map(Value::DateTime)),
        (_, _, ColType::Bytes) => {
            nullable(prop::collection::vec(any::<u8>(), 0..16).prop_map(Value::Bytes))
        }
    }
}

fn rows(entity: &Entity) -> impl Strategy<Value = Vec<Vec<Value>>> {
    let cols = entity_columns(entity, SchemaVersion::Classic);
    let row: Vec<BoxedStrategy<Value>> = cols
        .iter()
        .map(|c| match c.name.as_str() {
            // The key and the row version are the platform's, never NULL.
            "id" => Just(Value::Null).boxed(),
            "_version" => (1i64..1000).prop_map(Value::Int).boxed(),
            _ => column_value(entity, c),
        })
        .collect();
    prop::collection::vec(row, ROWS_PER_CASE).prop_map(|mut rows| {
        for (i, r) in rows.iter_mut().enumerate() {
            r[0] = Value::Text(format!("00000000-0000-7000-8000-{i:012}"));
        }
        rows
    })
}

struct Quiet;
impl CopyObserver for Quiet {
    fn progress(&self, _: &str, _: u64, _: u64) {}
    fn cancelled(&self) -> bool {
        false
    }
}

/// Values compared by their exact text, so a decimal's scale counts (`12.10` is not
/// `12.1` here).
fn exact(v: &Value) -> String {
    match v {
        Value::Decimal(d) => format!("Decimal({d})"),
        other => format!("{other:?}"),
    }
}

/// What the oracle says a set of rows becomes: copied values by id, and the samples.
struct Expected {
    copied: BTreeMap<String, Vec<String>>,
    errors: u64,
    warned: u64,
    error_samples: BTreeSet<(String, String)>,
    warning_samples: BTreeSet<(String, String)>,
}

fn expected(
    t: &EntityTransform,
    source: &[Vec<Value>],
    cols: &[Column],
    ctx: &EvalContext,
) -> Expected {
    let mut e = Expected {
        copied: BTreeMap::new(),
        errors: 0,
        warned: 0,
        error_samples: BTreeSet::new(),
        warning_samples: BTreeSet::new(),
    };
    for row in source {
        let named: BTreeMap<String, Value> = cols
            .iter()
            .map(|c| c.name.clone())
            .zip(row.iter().cloned())
            .collect();
        let id = named["id"].as_text().unwrap().to_string();
        let out = evaluate(t, &named, ctx).expect("the oracle evaluates every generated row");
        let reasons = |ix: &[usize], sev: Severity| -> Vec<(String, String)> {
            ix.iter()
                .filter(|i| t.checks[**i].severity == sev)
                .map(|i| (id.clone(), t.checks[*i].reason.clone()))
                .collect()
        };
        match &out {
            RowOutcome::Copied { values, warnings } => {
                e.copied
                    .insert(id.clone(), values.iter().map(exact).collect());
                e.warned += u64::from(!warnings.is_empty());
                e.warning_samples
                    .extend(reasons(warnings, Severity::Warning));
            }
            RowOutcome::Rejected { errors, warnings } => {
                e.errors += 1;
                e.warned += u64::from(!warnings.is_empty());
                e.error_samples.extend(reasons(errors, Severity::Error));
                e.warning_samples
                    .extend(reasons(warnings, Severity::Warning));
            }
        }
    }
    e
}

async fn check_case(p: &Platform, case: usize, source: Vec<Vec<Value>>) {
    let env = format!("oracle{case}");
    p.create_env(&env, "classic", "open").await;
    let d = p
        .put(
            &format!("/api/environments/{env}/entities/Thing"),
            ADMIN_TOKEN,
            thing(),
        )
        .await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.body);
    let prod = p.store.env_db(&env).await.unwrap();
    let entity = prod.catalog().entity("Thing").unwrap().clone();
    let cols = entity_columns(&entity, SchemaVersion::Classic);
    uplift_store::bulk::load(&prod, &entity, source.clone())
        .await
        .unwrap();

    let plan = uplift_plan::parse_plan(uplift_plan::builtin("classic-to-modern").unwrap()).unwrap();
    let options = uplift_plan::Options {
        language: "en".into(),
        currency: "USD".into(),
        exchange_rates: BTreeMap::from([
            ("EUR".to_string(), Decimal::new(108, 2)),
            ("GBP".to_string(), Decimal::new(127, 2)),
            ("JPY".to_string(), Decimal::new(67, 4)),
            ("CHF".to_string(), Decimal::new(1_123_456_789, 9)),
        ]),
    };
    let upgrade = uplift_plan::apply(&plan, &prod.catalog(), &options).unwrap();
    let t = upgrade.transform("Thing").unwrap().clone();
    let test = p
        .store
        .create_database_with(
            &env,
            "test-1",
            upgrade.target.clone(),
            uplift_store::ddl::Keys::AfterLoad,
        )
        .await
        .unwrap();
    let ctx = EvalContext {
        upgrade_time: time::macros::datetime!(2026-06-01 12:00:00.123 UTC),
        actor: "oracle@uplift.local".into(),
    };
    let work = vec![(t.clone(), copy::source_types(&prod, &entity))];
    let limits = CopyLimits {
        chunk_rows: 7,
        chunk_pause_ms: 0,
    };
    let got = copy::copy(&prod, &test, &work, &ctx, limits, Arc::new(Quiet))
        .await
        .unwrap_or_else(|e| panic!("{}: case {case}: the copy failed: {e}", p.engine));
    let got = &got[0];
    let want = expected(&t, &source, &cols, &ctx);

    let names: Vec<String> = t
        .columns
        .iter()
        .map(|c| uplift_store::sql::ident(&c.name))
        .collect();
    let types: Vec<ColType> = t.columns.iter().map(|c| c.ty).collect();
    let sql = format!(
        "SELECT {} FROM {} ORDER BY id",
        names.join(", "),
        test.qualify(&t.target_table)
    );
    let mut conn = test.pool().conn().await.unwrap();
    let landed: BTreeMap<String, Vec<String>> = conn
        .query(&sql, &[], &types)
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            (
                r[0].as_text().unwrap().to_string(),
                r.iter().map(exact).collect(),
            )
        })
        .collect();
    drop(conn);

    let engine = p.engine;
    for (id, values) in &want.copied {
        let Some(row) = landed.get(id) else {
            panic!(
                "{engine}: case {case}: row {id} is missing from the target; source {:?}",
                source_row(&source, id)
            );
        };
        for (i, c) in t.columns.iter().enumerate() {
            assert_eq!(
                row[i],
                values[i],
                "{engine}: case {case}: row {id} column {} (SQL left, oracle right); source {:?}",
                c.name,
                source_row(&source, id)
            );
        }
    }
    let extra: Vec<&String> = landed
        .keys()
        .filter(|id| !want.copied.contains_key(*id))
        .collect();
    assert!(
        extra.is_empty(),
        "{engine}: case {case}: rows the oracle refuses were copied: {:?}",
        extra
            .iter()
            .map(|id| source_row(&source, id))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        (got.exported, got.imported, got.errors, got.warnings),
        (
            source.len() as u64,
            want.copied.len() as u64,
            want.errors,
            want.warned
        ),
        "{engine}: case {case}: exported, imported, errors, warned rows"
    );
    let samples = |s: &[copy::SampledRow]| -> BTreeSet<(String, String)> {
        s.iter().map(|r| (r.id.clone(), r.reason.clone())).collect()
    };
    if want.error_samples.len() <= copy::MAX_SAMPLES as usize {
        assert_eq!(
            samples(&got.error_samples),
            want.error_samples,
            "{engine}: case {case}: error samples"
        );
    }
    if want.warning_samples.len() <= copy::MAX_SAMPLES as usize {
        assert_eq!(
            samples(&got.warning_samples),
            want.warning_samples,
            "{engine}: case {case}: warning samples"
        );
    }
    assert!(
        got.matches(),
        "{engine}: case {case}: the copy's own check: {got:?}"
    );
}

fn source_row<'a>(source: &'a [Vec<Value>], id: &str) -> Option<&'a Vec<Value>> {
    source.iter().find(|r| r[0].as_text() == Some(id))
}

#[engine_test]
async fn compiled_transforms_agree_with_the_evaluator(p: Platform) {
    p.create_env("shape", "classic", "open").await;
    let d = p
        .put(
            "/api/environments/shape/entities/Thing",
            ADMIN_TOKEN,
            thing(),
        )
        .await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.body);
    let entity = p
        .store
        .env_db("shape")
        .await
        .unwrap()
        .catalog()
        .entity("Thing")
        .unwrap()
        .clone();
    let strategy = rows(&entity);
    let mut runner = TestRunner::deterministic();
    for case in 0..CASES {
        let source = strategy.new_tree(&mut runner).unwrap().current();
        check_case(&p, case, source).await;
    }
}
