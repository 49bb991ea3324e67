//! The demo environment `contoso`: standard and custom entities that together use every
//! classic field type, names the upgrade must truncate, pre-1753 dates, several
//! currencies, makers, users with roles and a disabled user who still holds one.
//! Data is generated from a fixed seed, so every machine gets the same demo.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use time::{Date, Duration, Month, OffsetDateTime, PrimitiveDateTime, Time};
use uplift_model::input::EntityDef;
use uplift_model::layout::entity_columns;
use uplift_model::security::{PlatformRole, Privileges, SecurityMode, UserStatus};
use uplift_model::{Decimal, Entity, FieldType, SchemaVersion, Value};
use uplift_store::{Store, bulk};

/// The demo environment's name.
pub const ENV: &str = "contoso";
/// Rows per bulk load: bounds memory whatever `--rows` is.
const BATCH_ROWS: usize = 10_000;
const SEED: u64 = 0x5eed_c0de_2026;
/// A name longer than 50 characters (the modern limit).
pub const LONG_ENTITY: &str = "CustomerSatisfactionSurveyResponseForEnterpriseAccountsProgram";
/// Two field names sharing their first 50 characters, so they collide when truncated.
const LONG_FIELD_PREFIX: &str = "SatisfactionScoreReportedByRespondentForTheProduct";

/// SplitMix64: tiny, fast and stable across releases, which is all a demo generator
/// needs (a crate's RNG may change its stream between versions).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// A stable id for row `i` of `entity`, so lookups can name their targets without
/// keeping every id in memory.
fn id_of(entity: &str, i: u64) -> String {
    let mut h: u64 = SEED;
    for b in entity.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut r = Rng(h ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&r.next().to_le_bytes());
    bytes[8..].copy_from_slice(&r.next().to_le_bytes());
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

const FIRST: &[&str] = &[
    "Ada", "Grace", "Alan", "Linus", "Margaret", "Dennis", "Barbara", "Ken", "Frances", "Edsger",
    "Hedy", "Tim",
];
const MIDDLE: &[&str] = &["J.", "Marie", "Lee", "Ann", "Ray", "Q."];
const LAST: &[&str] = &[
    "Lovelace",
    "Hopper",
    "Turing",
    "Torvalds",
    "Hamilton",
    "Ritchie",
    "Liskov",
    "Thompson",
    "Allen",
    "Dijkstra",
    "Lamarr",
    "Berners-Lee",
];
const COMPANY: &[&str] = &[
    "Fabrikam",
    "Contoso",
    "Northwind",
    "Tailspin",
    "Wingtip",
    "Litware",
    "Adventure Works",
    "Proseware",
    "Woodgrove",
    "Alpine Ski",
];
const SUFFIX: &[&str] = &["Ltd", "GmbH", "Inc", "SA", "BV", "plc"];
const CITY: &[(&str, &str, &str)] = &[
    ("Paris", "Île-de-France", "France"),
    ("London", "England", "United Kingdom"),
    ("Seattle", "WA", "United States"),
    ("Berlin", "Berlin", "Germany"),
    ("Tokyo", "Tokyo", "Japan"),
    ("Amsterdam", "North Holland", "Netherlands"),
];
const CURRENCIES: &[&str] = &["USD", "USD", "EUR", "EUR", "GBP", "JPY"];
const TITLES: &[&str] = &[
    "Buyer",
    "Engineer",
    "Director",
    "Analyst",
    "Manager",
    "Consultant",
];
const DEPARTMENTS: &[&str] = &["Sales", "Finance", "Operations", "Research", "Support"];
const WORDS: &[&str] = &[
    "quality", "delivery", "invoice", "contract", "renewal", "priority", "forecast", "pipeline",
    "order", "support",
];
const USERS: &[&str] = &[
    "alice.maker@contoso.com",
    "bob.maker@contoso.com",
    "carol.maker@contoso.com",
    "dave@contoso.com",
    "erin@contoso.com",
];
/// A 1x1 transparent PNG: small real images keep the demo light.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE,
    0x42, 0x60, 0x82,
];

fn custom_entities() -> Result<BTreeMap<String, EntityDef>> {
    let doc = json!({
        "Project": {"display_name": {"en": "Project", "fr": "Projet"}, "business_key": "Title", "fields": [
            {"name": "Title", "type": "Text", "required": true, "max_length": 200},
            {"name": "Stage", "type": "Picklist", "options": ["Planned", "Active", "On hold", "Done"]},
            {"name": "Customer", "type": "Lookup", "target": "Account"},
            {"name": "Budget", "type": "Currency"},
            {"name": "Site", "type": "Address"},
            {"name": "Sponsor", "type": "PersonName"},
            {"name": "StartDate", "type": "Date"},
            {"name": "Kickoff", "type": "DateTime"},
            {"name": "EstimatedHours", "type": "Quantity"},
            {"name": "Priority", "type": "Integer"},
            {"name": "Headcount", "type": "Number"},
            {"name": "Sequence", "type": "AutoNumber"},
            {"name": "ExternalKey", "type": "Guid"},
            {"name": "Billable", "type": "Boolean"},
            {"name": "Summary", "type": "MultilineText", "max_length": 4000},
            {"name": "Charter", "type": "LargeText"},
            {"name": "ContactEmail", "type": "Email"},
            {"name": "Hotline", "type": "Phone"},
            {"name": "Homepage", "type": "WebsiteUrl"},
            {"name": "Badge", "type": "Image"},
            {"name": "Owner", "type": "UserOrGroup"}
        ]},
        "ArchiveItem": {"display_name": {"en": "Archive item", "fr": "Pièce d'archive"}, "business_key": "Reference", "fields": [
            {"name": "Reference", "type": "Text", "required": true, "max_length": 40},
            {"name": "Description", "type": "MultilineText"},
            {"name": "RecordedOn", "type": "Date"},
            {"name": "Catalogued", "type": "DateTime"},
            {"name": "Collection", "type": "Picklist", "options": ["Maps", "Letters", "Ledgers", "Charters"]},
            {"name": "AppraisedValue", "type": "Currency"}
        ]},
        LONG_ENTITY: {"display_name": {"en": "Satisfaction survey response"}, "fields": [
            {"name": "Account", "type": "Lookup", "target": "Account"},
            {"name": format!("{LONG_FIELD_PREFIX}QualityRating"), "type": "Integer"},
            {"name": format!("{LONG_FIELD_PREFIX}ReliabilityRating"), "type": "Integer"},
            {"name": "RespondedOn", "type": "Date"},
            {"name": "Comments", "type": "MultilineText"}
        ]}
    });
    serde_json::from_value(doc).context("demo entity definitions")
}

fn roles() -> Vec<(&'static str, Privileges)> {
    let set = |ps: &[&str]| ps.iter().map(|s| s.to_string()).collect();
    let all = ["Create", "Read", "Update", "Delete"];
    let sales: Privileges = [
        "Account",
        "Contact",
        "SalesOrder",
        "SalesOrderLine",
        "SalesOrderTax",
    ]
    .iter()
    .map(|e| (e.to_string(), set(&all)))
    .chain([("Product".to_string(), set(&["Read"]))])
    .collect();
    let hr: Privileges = ["Worker", "Position", "PositionWorkerAssignment"]
        .iter()
        .map(|e| (e.to_string(), set(&all)))
        .collect();
    let read_only: Privileges = uplift_model::standard::classic_entities()
        .iter()
        .map(|e| e.name.clone())
        .chain(["Project".into(), "ArchiveItem".into(), LONG_ENTITY.into()])
        .map(|e| (e, set(&["Read"])))
        .collect();
    let pm: Privileges = ["Project", "ArchiveItem", LONG_ENTITY]
        .iter()
        .map(|e| (e.to_string(), set(&all)))
        .collect();
    vec![
        ("Salesperson", sales),
        ("HR Manager", hr),
        ("Read Only", read_only),
        ("Project Manager", pm),
    ]
}

/// Who gets which role: makers, users, and a disabled user who keeps a role.
const PEOPLE: &[(&str, &str, PlatformRole, &[&str])] = &[
    (
        "alice.maker@contoso.com",
        "Alice Maker",
        PlatformRole::Maker,
        &["Project Manager", "Read Only"],
    ),
    (
        "bob.maker@contoso.com",
        "Bob Maker",
        PlatformRole::Maker,
        &["Salesperson"],
    ),
    (
        "carol.maker@contoso.com",
        "Carol Maker",
        PlatformRole::Maker,
        &["HR Manager", "Read Only"],
    ),
    (
        "dave@contoso.com",
        "Dave Seller",
        PlatformRole::User,
        &["Salesperson"],
    ),
    (
        "erin@contoso.com",
        "Erin People",
        PlatformRole::User,
        &["HR Manager"],
    ),
    (
        "frank@contoso.com",
        "Frank Viewer",
        PlatformRole::User,
        &["Read Only"],
    ),
    (
        "mallory@contoso.com",
        "Mallory Former",
        PlatformRole::User,
        &["Salesperson"],
    ),
];
const DISABLED: &str = "mallory@contoso.com";

/// Row shares per entity, in creation order (targets before the lookups to them).
const SHARES: &[(&str, u64)] = &[
    ("Account", 8),
    ("Contact", 15),
    ("Product", 4),
    ("SalesOrder", 18),
    ("SalesOrderLine", 28),
    ("SalesOrderTax", 6),
    ("Worker", 5),
    ("Position", 3),
    ("PositionWorkerAssignment", 5),
    ("Project", 4),
    ("ArchiveItem", 2),
    (LONG_ENTITY, 2),
];

/// Creates the demo unless a complete one exists. An interrupted creation (no marker
/// file) is thrown away and redone, so a restart never serves half a demo.
pub async fn ensure(store: &Store, data_dir: &Path, rows: u64) -> Result<()> {
    let marker = data_dir.join("demo.done");
    let exists = store.control().get_env(ENV).await?.is_some();
    if exists && marker.exists() {
        println!("Reusing the demo environment '{ENV}'.");
        return Ok(());
    }
    if exists {
        store.delete_environment(ENV).await?;
    }
    println!("Creating the demo environment '{ENV}' with {rows} rows...");
    store
        .create_environment(ENV, SchemaVersion::Classic, SecurityMode::Restricted)
        .await?;
    let db = store.env_db(ENV).await?;
    db.apply(&custom_entities()?).await?;

    let control = store.control();
    for (email, name, role, _) in PEOPLE {
        if control.get_user(email).await?.is_none() {
            control.insert_user(email, name, *role).await?;
        }
    }
    for (name, privileges) in roles() {
        control.put_role(ENV, name, &privileges).await?;
    }
    for (email, _, _, roles) in PEOPLE {
        for r in *roles {
            control.add_member(ENV, r, email).await?;
        }
    }
    control
        .update_user(DISABLED, Some(UserStatus::Disabled), None, None)
        .await?;
    let production = control
        .get_env(ENV)
        .await?
        .map(|e| e.database)
        .unwrap_or_default();
    crate::demo_apps::create(store, ENV, &db.catalog(), &production).await?;

    let catalog = db.catalog();
    let total_share: u64 = SHARES.iter().map(|(_, s)| s).sum();
    let counts: BTreeMap<&str, u64> = SHARES
        .iter()
        .map(|(e, s)| (*e, (rows * s / total_share).max(3)))
        .collect();
    let bar = ProgressBar::new(counts.values().sum());
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:>28} [{bar:40}] {pos}/{len} rows ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    for (name, _) in SHARES {
        let entity = catalog
            .entity(name)
            .with_context(|| format!("demo entity {name} missing"))?;
        let n = counts[name];
        bar.set_message(name.to_string());
        let mut rng = Rng(SEED ^ n ^ (name.len() as u64) << 32);
        let mut start = 0;
        while start < n {
            let end = (start + BATCH_ROWS as u64).min(n);
            let batch: Vec<Vec<Value>> = (start..end)
                .map(|i| row(entity, i, &counts, &mut rng))
                .collect();
            bulk::load(&db, entity, batch).await?;
            bar.inc(end - start);
            start = end;
        }
        bulk::sync_autonumbers(&db, entity).await?;
        bulk::analyze(&db, entity).await?;
    }
    bar.finish_with_message("done");
    std::fs::write(&marker, format!("{rows}\n"))?;
    Ok(())
}

fn date(rng: &mut Rng, from_year: i32, to_year: i32) -> Date {
    let year = from_year + rng.below((to_year - from_year + 1) as u64) as i32;
    let month = Month::try_from(1 + rng.below(12) as u8).unwrap_or(Month::January);
    let day = 1 + rng.below(28) as u8;
    Date::from_calendar_date(year, month, day).unwrap_or(Date::MIN)
}

fn instant(rng: &mut Rng, from_year: i32, to_year: i32) -> OffsetDateTime {
    let d = date(rng, from_year, to_year);
    let t = Time::from_hms(
        rng.below(24) as u8,
        rng.below(60) as u8,
        rng.below(60) as u8,
    )
    .unwrap_or(Time::MIDNIGHT);
    PrimitiveDateTime::new(d, t).assume_utc()
}

/// An amount below `max` with two decimal places, exact.
fn money(rng: &mut Rng, max: u64) -> Decimal {
    Decimal::new(rng.below(max * 100) as i64, 2)
}

/// One generated row, aligned with the entity's columns: the id, each field's
/// columns (all parts of a complex value null together, or all set), the row version.
fn row(entity: &Entity, i: u64, counts: &BTreeMap<&str, u64>, rng: &mut Rng) -> Vec<Value> {
    let version = SchemaVersion::Classic;
    let created = instant(rng, 2015, 2024);
    let modified = created + Duration::days(rng.below(300) as i64);
    let mut out = vec![Value::Text(id_of(&entity.name, i))];
    for f in entity.all_fields(version) {
        let parts: Vec<Option<&str>> = match f.ty.parts() {
            Some(p) => p.iter().map(|s| Some(*s)).collect(),
            None => vec![None],
        };
        let null = !f.required
            && f.origin != uplift_model::Origin::System
            && !f.ty.is_server_assigned()
            && rng.chance(8);
        for part in parts {
            out.push(match f.name.as_str() {
                _ if null => Value::Null,
                "CreatedDateTime" => Value::DateTime(created),
                "ModifiedDateTime" => Value::DateTime(modified),
                "CreatedBy" | "ModifiedBy" => Value::Text(rng.pick(USERS).to_string()),
                _ => value(entity, &f.name, &f.ty, part, i, counts, rng),
            });
        }
    }
    out.push(Value::Int(1));
    debug_assert_eq!(out.len(), entity_columns(entity, version).len());
    out
}

fn value(
    entity: &Entity,
    field: &str,
    ty: &FieldType,
    part: Option<&str>,
    i: u64,
    counts: &BTreeMap<&str, u64>,
    rng: &mut Rng,
) -> Value {
    let text = |s: String| Value::Text(s);
    match ty {
        FieldType::Text { max_length } => {
            let s = match (entity.name.as_str(), field) {
                ("Account", "Name") => format!("{} {} {}", rng.pick(COMPANY), rng.pick(SUFFIX), i),
                ("Account", "AccountNumber") => format!("ACC-{i:07}"),
                ("Product", "ProductNumber") => format!("PRD-{i:06}"),
                ("Product", "Name") => format!(
                    "{} {}",
                    rng.pick(WORDS),
                    rng.pick(&["kit", "module", "licence", "service", "part"])
                ),
                ("Worker", "PersonnelNumber") => format!("W-{i:06}"),
                ("Position", "PositionId") => format!("POS-{i:05}"),
                ("Position", "Title") | ("Contact", "JobTitle") => rng.pick(TITLES).to_string(),
                ("Position", "Department") => rng.pick(DEPARTMENTS).to_string(),
                ("SalesOrderTax", "TaxCode") => {
                    rng.pick(&["VAT20", "VAT7", "GST10", "EXEMPT"]).to_string()
                }
                ("Project", "Title") => format!("Project {} {i}", rng.pick(WORDS)),
                ("ArchiveItem", "Reference") => format!("ARC-{i:06}"),
                _ => format!("{} {i}", rng.pick(WORDS)),
            };
            text(s.chars().take(*max_length as usize).collect())
        }
        FieldType::Email { .. } => text(format!(
            "{}.{}{i}@example.com",
            rng.pick(FIRST).to_lowercase(),
            rng.pick(LAST).to_lowercase()
        )),
        FieldType::Phone { .. } => text(format!("+1 555 {:04}", rng.below(10_000))),
        FieldType::WebsiteUrl { .. } => text(format!(
            "https://www.{}{i}.example",
            rng.pick(COMPANY).to_lowercase().replace(' ', "")
        )),
        FieldType::Guid => text(id_of("external", rng.next())),
        FieldType::MultilineText { .. } => text(format!(
            "{} {} {}.\nFollow-up on {}.",
            rng.pick(WORDS),
            rng.pick(WORDS),
            rng.pick(WORDS),
            rng.pick(WORDS)
        )),
        FieldType::LargeText => text(
            (0..8)
                .map(|_| *rng.pick(WORDS))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        FieldType::Address => {
            // One place per row, so city, region and country agree across the parts.
            let (city, state, country) = CITY[(i % CITY.len() as u64) as usize];
            match part.unwrap_or_default() {
                "line1" => text(format!("{} {} Street", 1 + rng.below(200), rng.pick(LAST))),
                "line2" if rng.chance(30) => text(format!("Suite {}", rng.below(900))),
                "city" => text(city.into()),
                "state_or_province" => text(state.into()),
                "postal_code" => text(format!("{:05}", rng.below(100_000))),
                "country" => text(country.into()),
                _ => Value::Null,
            }
        }
        FieldType::PersonName => match part.unwrap_or_default() {
            "first_name" => text(rng.pick(FIRST).to_string()),
            "middle_name" if rng.chance(25) => text(rng.pick(MIDDLE).to_string()),
            "last_name" => text(rng.pick(LAST).to_string()),
            _ => Value::Null,
        },
        FieldType::AutoNumber => Value::Int(i as i64 + 1),
        FieldType::Integer if field == "LineNumber" => Value::Int(1 + (i % 5) as i64),
        FieldType::Integer if field.starts_with(LONG_FIELD_PREFIX) => {
            Value::Int(1 + rng.below(5) as i64)
        }
        FieldType::Integer => Value::Int(rng.below(10) as i64),
        FieldType::Number => Value::Int(rng.below(50_000) as i64),
        FieldType::Quantity => Value::Decimal(money(rng, 1000)),
        FieldType::Boolean => Value::Bool(rng.chance(50)),
        FieldType::Currency => match part.unwrap_or_default() {
            "code" => text(rng.pick(CURRENCIES).to_string()),
            _ => Value::Decimal(money(rng, 100_000)),
        },
        FieldType::Date => match (entity.name.as_str(), field) {
            // Historical records: many before 1753, the reference's date floor.
            ("ArchiveItem", _) => Value::Date(date(rng, 1450, 1900)),
            ("Contact", "Birthday") if rng.chance(2) => Value::Date(date(rng, 1700, 1752)),
            ("Contact", "Birthday") => Value::Date(date(rng, 1950, 2004)),
            _ => Value::Date(date(rng, 2010, 2025)),
        },
        FieldType::DateTime if entity.name == "ArchiveItem" => {
            Value::DateTime(instant(rng, 1700, 2020))
        }
        FieldType::DateTime => Value::DateTime(instant(rng, 2015, 2026)),
        FieldType::Picklist { options } => text(rng.pick(options).clone()),
        FieldType::Image => {
            if rng.chance(20) {
                Value::Bytes(PNG.to_vec())
            } else {
                Value::Null
            }
        }
        FieldType::Lookup { target } => {
            let n = counts.get(target.as_str()).copied().unwrap_or(1);
            // Lines, taxes and assignments cluster on their parents, as real data does.
            Value::Text(id_of(target, rng.below(n)))
        }
        FieldType::UserOrGroup => text(if rng.chance(70) {
            rng.pick(USERS).to_string()
        } else {
            "Sales Team".into()
        }),
        _ => Value::Null,
    }
}
