//! Property tests: printing then parsing is the identity on trees, and no
//! input makes any parser panic.
//!
//! The tree generator covers every `ExprKind` and literal kind in any
//! position (a comparison of two `or`s, a `not` as a function argument, ...):
//! the printer adds whatever parentheses are needed, so no shape has to be
//! excluded. Two restrictions are inherent to the language, not the printer:
//! a single-segment property may not be a reserved word (`and`, `null`, ...,
//! which would read back as the keyword), and a function call always has
//! exactly two arguments (the parser rejects other counts).

use proptest::prelude::*;
use time::{Date, OffsetDateTime, Time, UtcOffset};

use super::parse::is_reserved;
use super::*;

fn ident() -> impl Strategy<Value = String> {
    "[A-Za-z_][A-Za-z0-9_]{0,6}"
}

fn path() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(ident(), 1..4).prop_filter("a lone reserved word is a keyword", |p| {
        p.len() > 1 || !is_reserved(&p[0])
    })
}

fn date() -> impl Strategy<Value = Date> {
    let min = Date::from_calendar_date(1, time::Month::January, 1)
        .unwrap()
        .to_julian_day();
    let max = Date::from_calendar_date(9999, time::Month::December, 31)
        .unwrap()
        .to_julian_day();
    prop_oneof![
        (min..=max).prop_map(|j| Date::from_julian_day(j).unwrap()),
        // near the edges and before 1753
        (min..min + 1000).prop_map(|j| Date::from_julian_day(j).unwrap()),
        (max - 1000..=max).prop_map(|j| Date::from_julian_day(j).unwrap()),
    ]
}

fn offset() -> impl Strategy<Value = UtcOffset> {
    prop_oneof![
        Just(UtcOffset::UTC),
        (any::<bool>(), 0i8..=23, 0i8..=59).prop_map(|(neg, h, m)| {
            let (h, m) = if neg { (-h, -m) } else { (h, m) };
            UtcOffset::from_hms(h, m, 0).unwrap()
        }),
    ]
}

fn date_time() -> impl Strategy<Value = OffsetDateTime> {
    let nanos = prop_oneof![
        Just(0u32),
        (0u32..1000).prop_map(|ms| ms * 1_000_000),
        0u32..1_000_000_000,
    ];
    (date(), 0u8..24, 0u8..60, 0u8..60, nanos, offset())
        .prop_map(|(d, h, m, s, ns, off)| {
            OffsetDateTime::new_in_offset(d, Time::from_hms_nano(h, m, s, ns).unwrap(), off)
        })
        // The parser refuses an instant outside years 1 to 9999 in UTC (tested apart).
        .prop_filter("in UTC, within years 1 to 9999", |t| {
            t.checked_to_offset(UtcOffset::UTC)
                .is_some_and(|u| (1..=9999).contains(&u.year()))
        })
}

fn decimal() -> impl Strategy<Value = crate::Decimal> {
    prop_oneof![
        (any::<i64>(), 0u32..=18).prop_map(|(m, scale)| crate::Decimal::new(m, scale)),
        (-100_000i64..100_000).prop_map(|n| crate::Decimal::new(n * 125, 3)),
        Just(crate::Decimal::MAX),
        Just(crate::Decimal::MIN),
    ]
}

fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z' é中😀()/,]{0,8}",
        any::<String>(),
        Just("''".to_string()),
    ]
}

fn literal() -> impl Strategy<Value = Literal> {
    prop_oneof![
        Just(Literal::Null),
        any::<bool>().prop_map(Literal::Bool),
        any::<i64>().prop_map(Literal::Int),
        decimal().prop_map(Literal::Decimal),
        string().prop_map(Literal::String),
        date().prop_map(Literal::Date),
        date_time().prop_map(Literal::DateTimeOffset),
        any::<u128>().prop_map(|n| Literal::Guid(uuid::Uuid::from_u128(n))),
    ]
}

fn node(kind: ExprKind) -> Expr {
    Expr::new(kind, Span::default())
}

fn expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        literal().prop_map(|l| node(ExprKind::Literal(l))),
        path().prop_map(|p| node(ExprKind::Property(p))),
    ];
    leaf.prop_recursive(6, 48, 2, |inner| {
        let op = prop::sample::select(CompareOp::ALL.to_vec());
        let func = prop::sample::select(Func::ALL.to_vec());
        prop_oneof![
            inner.clone().prop_map(|e| node(ExprKind::Not(Box::new(e)))),
            (inner.clone(), inner.clone())
                .prop_map(|(l, r)| node(ExprKind::And(Box::new(l), Box::new(r)))),
            (inner.clone(), inner.clone())
                .prop_map(|(l, r)| node(ExprKind::Or(Box::new(l), Box::new(r)))),
            (op, inner.clone(), inner.clone()).prop_map(|(op, l, r)| node(ExprKind::Compare {
                op,
                left: Box::new(l),
                right: Box::new(r),
            })),
            (func, inner.clone(), inner).prop_map(|(func, a, b)| node(ExprKind::Call {
                func,
                args: vec![a, b],
            })),
        ]
    })
}

/// Fragments that make random input look like filters often enough to reach
/// deep parser states, not just the first lexer error.
fn filterish() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "Name",
        "Site/city",
        " eq ",
        " ne ",
        " gt ",
        " and ",
        " or ",
        "not ",
        "(",
        ")",
        ",",
        "'",
        "''",
        "'x'",
        "contains(",
        "startswith(",
        "1",
        "-",
        "1.5",
        "e",
        "2024-02-29",
        "T10:00",
        "Z",
        "+01:00",
        "deadbeef-0000-4000-8000-0123456789ab",
        "null",
        "true",
        " ",
        "/",
        "é",
        "asc",
        "desc",
        ".",
        ":",
        "$",
        "eqq",
    ]);
    prop::collection::vec(piece, 0..20).prop_map(|v| v.concat())
}

struct AnyResolver;

impl PropertyResolver for AnyResolver {
    fn resolve(&self, path: &[String]) -> Option<PropertyType> {
        resolve_any(path)
    }
}

fn resolve_any(path: &[String]) -> Option<PropertyType> {
    use ScalarType as T;
    match path.first().map(String::as_str) {
        Some("Name") => Some(PropertyType::Scalar(T::String)),
        Some("Site") if path.len() == 1 => Some(PropertyType::Complex {
            parts: vec!["city".into()],
        }),
        Some("Site") => Some(PropertyType::Scalar(T::String)),
        _ => None,
    }
}

/// Everything a request handler might run on untrusted text: none of it may
/// panic, and whatever parses must survive a print/parse round trip.
fn exercise(s: &str) -> Result<(), TestCaseError> {
    if let Ok(e) = parse_filter(s) {
        let printed = print_filter(&e);
        let again = parse_filter(&printed);
        prop_assert_eq!(again.as_ref(), Ok(&e), "printed {:?}", printed);
        let _ = check_filter(&e, s, &AnyResolver);
    }
    let _ = parse_orderby(s);
    let _ = parse_select(s);
    let _ = parse_expand(s);
    Ok(())
}

/// No failure persistence: proptest would write a `proptest-regressions/`
/// directory beside the crate, outside this module; a failing case is printed
/// in full instead and can be pinned as a unit test.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn print_then_parse_is_identity(e in expr()) {
        let printed = print_filter(&e);
        let parsed = parse_filter(&printed);
        prop_assert_eq!(parsed.as_ref(), Ok(&e), "printed {:?}", printed);
        // OffsetDateTime equality compares instants; comparing the text again
        // also proves offsets survive.
        if let Ok(parsed) = parsed {
            prop_assert_eq!(print_filter(&parsed), printed);
        }
    }

    #[test]
    fn random_text_never_panics(s in any::<String>()) {
        exercise(&s)?;
    }

    #[test]
    fn filter_like_text_never_panics(s in filterish()) {
        exercise(&s)?;
    }
}
