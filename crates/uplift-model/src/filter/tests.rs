//! Table-driven unit tests: each row is an input and what must come out, so a
//! new case is one line.

use super::*;

/// Inputs that must parse, with their canonical printed form.
const GOOD: &[(&str, &str)] = &[
    // every comparison operator
    ("Name eq 'x'", "Name eq 'x'"),
    ("Name ne 'x'", "Name ne 'x'"),
    ("Age gt 5", "Age gt 5"),
    ("Age ge 5", "Age ge 5"),
    ("Age lt 5", "Age lt 5"),
    ("Age le 5", "Age le 5"),
    // each function
    ("contains(Name,'ab')", "contains(Name, 'ab')"),
    ("startswith( Name , 'a' )", "startswith(Name, 'a')"),
    ("endswith(Site/city, 'z')", "endswith(Site/city, 'z')"),
    // a predicate compared with a boolean literal, as the grammar allows
    ("contains(Name, 'a') eq true", "contains(Name, 'a') eq true"),
    (
        "startswith(Name,'A') eq false",
        "startswith(Name, 'A') eq false",
    ),
    ("true ne endswith(Name,'z')", "true ne endswith(Name, 'z')"),
    ("not contains(Name,'x')", "not contains(Name, 'x')"),
    (
        "contains(Name, 'a') or IsActive",
        "contains(Name, 'a') or IsActive",
    ),
    // literal kinds
    ("Deleted eq null", "Deleted eq null"),
    ("null ne Deleted", "null ne Deleted"),
    ("IsActive eq true", "IsActive eq true"),
    ("IsActive eq false", "IsActive eq false"),
    ("Age eq -42", "Age eq -42"),
    ("Age eq 007", "Age eq 7"),
    ("x eq 9223372036854775807", "x eq 9223372036854775807"),
    ("x eq -9223372036854775808", "x eq -9223372036854775808"),
    ("Amount gt 1.5", "Amount gt 1.5"),
    ("Amount gt -2e3", "Amount gt -2000.0"),
    ("Amount gt 1.25E-2", "Amount gt 0.0125"),
    ("Amount gt 1e27", "Amount gt 1000000000000000000000000000.0"),
    ("Amount gt 1E20", "Amount gt 100000000000000000000.0"),
    ("Amount gt 3.0", "Amount gt 3.0"),
    ("Amount gt 1e-7", "Amount gt 0.0000001"),
    ("Born eq 2024-02-29", "Born eq 2024-02-29"),
    ("Born eq 1600-02-29", "Born eq 1600-02-29"),
    ("Born eq 0001-01-01", "Born eq 0001-01-01"),
    ("Born eq 9999-12-31", "Born eq 9999-12-31"),
    ("At gt 2024-03-01T10:20Z", "At gt 2024-03-01T10:20:00Z"),
    ("At gt 2024-03-01t10:20:30z", "At gt 2024-03-01T10:20:30Z"),
    (
        "At gt 2024-03-01T10:20:30.5+02:00",
        "At gt 2024-03-01T10:20:30.5+02:00",
    ),
    (
        "At lt 1700-12-31T23:59:59.123456789-05:30",
        "At lt 1700-12-31T23:59:59.123456789-05:30",
    ),
    (
        "At lt 2000-01-01T00:00:00.000Z",
        "At lt 2000-01-01T00:00:00Z",
    ),
    (
        "At lt 2000-01-01T00:00:00-00:30",
        "At lt 2000-01-01T00:00:00-00:30",
    ),
    (
        "At lt 0001-01-01T00:00:00-23:59",
        "At lt 0001-01-01T00:00:00-23:59",
    ),
    (
        "At lt 9999-12-31T23:59:59+23:59",
        "At lt 9999-12-31T23:59:59+23:59",
    ),
    (
        "Id eq deadbeef-0000-4000-8000-0123456789ab",
        "Id eq deadbeef-0000-4000-8000-0123456789ab",
    ),
    (
        "Id eq 01234567-89AB-CDEF-0123-456789abcdef",
        "Id eq 01234567-89ab-cdef-0123-456789abcdef",
    ),
    (
        "(Id eq 01234567-89ab-cdef-0123-456789abcdef)",
        "Id eq 01234567-89ab-cdef-0123-456789abcdef",
    ),
    // strings
    ("Name eq 'O''Brien'", "Name eq 'O''Brien'"),
    ("Name eq ''''", "Name eq ''''"),
    ("Name eq ''", "Name eq ''"),
    ("Name eq 'héllo 中 😀'", "Name eq 'héllo 中 😀'"),
    (
        "Name eq 'a and b or not c eq'",
        "Name eq 'a and b or not c eq'",
    ),
    // whitespace
    ("  Name   eq\t'x'  ", "Name eq 'x'"),
    // parentheses and precedence
    ("((Name eq 'x'))", "Name eq 'x'"),
    ("(((IsActive)))", "IsActive"),
    ("a eq 1 or b eq 2 and c eq 3", "a eq 1 or b eq 2 and c eq 3"),
    (
        "a eq 1 or (b eq 2 and c eq 3)",
        "a eq 1 or b eq 2 and c eq 3",
    ),
    (
        "(a eq 1 or b eq 2) and c eq 3",
        "(a eq 1 or b eq 2) and c eq 3",
    ),
    (
        "a eq 1 and (b eq 2 or c eq 3)",
        "a eq 1 and (b eq 2 or c eq 3)",
    ),
    (
        "(a eq 1 and b eq 2) and c eq 3",
        "a eq 1 and b eq 2 and c eq 3",
    ),
    (
        "a eq 1 and (b eq 2 and c eq 3)",
        "a eq 1 and (b eq 2 and c eq 3)",
    ),
    ("a or (b or c)", "a or (b or c)"),
    ("(a eq 1) eq true", "(a eq 1) eq true"),
    ("a eq (not b)", "a eq (not b)"),
    ("(a and b) ne (c or d)", "(a and b) ne (c or d)"),
    // not
    ("not IsActive", "not IsActive"),
    ("not (a eq 1)", "not (a eq 1)"),
    ("not a eq 1", "not (a eq 1)"),
    ("not not IsActive", "not not IsActive"),
    ("not(IsActive)", "not IsActive"),
    ("not (a and b)", "not (a and b)"),
    ("not a and b", "not a and b"),
    ("(not a) and b", "not a and b"),
    ("IsActive and not Deleted", "IsActive and not Deleted"),
    // paths and bare booleans
    ("Site/city eq 'Paris'", "Site/city eq 'Paris'"),
    ("A/b/c_1 eq 1", "A/b/c_1 eq 1"),
    ("IsActive", "IsActive"),
    ("true", "true"),
    ("x/and eq 1", "x/and eq 1"),
    ("contains eq 'x'", "contains eq 'x'"),
    (
        "Name eq 'a' and Age gt 5 or IsActive",
        "Name eq 'a' and Age gt 5 or IsActive",
    ),
];

/// Inputs that must fail: (input, 1-based position, part of the message).
const BAD: &[(&str, usize, &str)] = &[
    ("", 1, "empty filter"),
    ("   ", 1, "empty filter"),
    (
        "Name eqq 'x'",
        6,
        "unexpected 'eqq', expected an operator such as eq, ne, gt",
    ),
    ("Name EQ 'x'", 6, "write 'eq'"),
    ("Name eq 'x", 9, "unterminated string literal"),
    ("Name eq 'it''s", 9, "unterminated string literal"),
    ("Name eq", 8, "unexpected end of input"),
    ("Name eq 'x' and", 16, "unexpected end of input"),
    ("not", 4, "unexpected end of input"),
    ("Name eq 'x' foo", 13, "unexpected 'foo'"),
    ("Name eq 'x' 'y'", 13, "unexpected string 'y'"),
    ("IsActive IsActive", 10, "expected an operator"),
    ("a eq b eq c", 8, "cannot be chained"),
    ("a eq b lt c", 8, "cannot be chained"),
    ("Born eq 2021-02-30", 9, "invalid date '2021-02-30'"),
    ("Born eq 2021-13-01", 9, "invalid date"),
    (
        "Born eq 0000-01-01",
        9,
        "year must be between 0001 and 9999",
    ),
    ("Born eq 2021-1-01", 9, "invalid date"),
    ("At eq 2021-01-01T25:00Z", 7, "invalid date-time"),
    ("At eq 2021-01-01T10:00", 7, "invalid date-time"),
    ("At eq 2021-01-01T10:00:60Z", 7, "invalid date-time"),
    (
        "At lt 0001-01-01T00:00:00+23:59",
        7,
        "outside the years 0001 to 9999",
    ),
    (
        "At gt 9999-12-31T23:00:00-23:00",
        7,
        "outside the years 0001 to 9999",
    ),
    ("At eq 2021-01-01T10:00:00.Z", 7, "digits after '.'"),
    (
        "At eq 2021-01-01T10:00:00.1234567891Z",
        7,
        "more than 9 digits",
    ),
    ("At eq 2021-01-01T10:00+24:00", 7, "offset"),
    ("x eq 99999999999999999999", 6, "out of range"),
    ("x eq -9223372036854775809", 6, "out of range"),
    ("x eq 1.2.3", 6, "invalid number '1.2.3'"),
    ("x eq 1.", 6, "invalid number"),
    ("x eq 1e", 6, "invalid number"),
    ("x eq 1e999", 6, "out of range"),
    ("Name eq 5or", 9, "invalid number '5or'"),
    ("x eq -", 6, "unexpected character '-'"),
    ("x eq .5", 6, "unexpected character '.'"),
    ("foo(Name, 'x')", 1, "unknown function 'foo'"),
    ("Contains(Name, 'x')", 1, "write 'contains'"),
    ("contains(Name)", 1, "exactly 2 arguments, got 1"),
    ("contains(Name, 'a', 'b')", 1, "exactly 2 arguments, got 3"),
    ("contains()", 1, "exactly 2 arguments, got 0"),
    ("contains(Name 'a')", 15, "unexpected string 'a'"),
    ("contains(Name, 'a' 'b')", 20, "unexpected string 'b'"),
    ("contains(Name, 'a'", 19, "expected ',' or ')'"),
    (
        "(Name eq 'x'",
        13,
        "expected ')' to close the '(' at position 1",
    ),
    ("Name eq 'x')", 12, "without a matching '('"),
    ("()", 2, "unexpected ')', expected a value"),
    ("a eq 1, b", 7, "unexpected ','"),
    ("Name = 'x'", 6, "use eq"),
    ("Name eq \"x\"", 9, "single quotes"),
    ("a && b", 3, "use and"),
    ("é eq 1", 1, "unexpected character 'é'"),
    ("'é' eq x y", 10, "unexpected 'y'"),
    ("Name eq 'ü' and ü", 17, "unexpected character 'ü'"),
    ("Site/ eq 1", 6, "property name after '/'"),
    ("Site/1 eq 1", 6, "property name after '/'"),
    ("and", 1, "unexpected 'and', expected a value"),
    ("Name eq and", 9, "expected a value"),
    ("Name eq not IsActive", 9, "put parentheses around it"),
    (
        "Id eq deadbeef-0000-4000-8000-0123456789a",
        7,
        "invalid GUID",
    ),
    (
        "Id eq 01234567-0000-4000-8000-0123456789",
        7,
        "invalid GUID",
    ),
    ("Id eq deadbeef-0000", 7, "invalid GUID"),
];

#[test]
fn good_inputs_parse_and_print_canonically() {
    for (input, expected) in GOOD {
        let e = parse_filter(input).unwrap_or_else(|err| panic!("{input:?}: {err}"));
        let printed = print_filter(&e);
        assert_eq!(printed, *expected, "printing {input:?}");
        assert_eq!(e.to_string(), printed, "Display of {input:?}");
        let again = parse_filter(&printed).unwrap_or_else(|err| panic!("{printed:?}: {err}"));
        assert_eq!(again, e, "re-parsing {printed:?}");
        assert_eq!(print_filter(&again), printed, "printing is idempotent");
    }
}

#[test]
fn bad_inputs_report_position_and_token() {
    for (input, position, needle) in BAD {
        match parse_filter(input) {
            Ok(e) => panic!("{input:?} should fail but parsed as {e:?}"),
            Err(err) => {
                assert!(
                    err.message.contains(needle),
                    "{input:?}: message {:?} lacks {needle:?}",
                    err.message
                );
                assert_eq!(err.position, *position, "{input:?}: {err}");
            }
        }
    }
}

#[test]
fn error_display_includes_position() {
    let err = parse_filter("Name eqq 'x'").unwrap_err();
    assert_eq!(
        err.to_string(),
        "unexpected 'eqq', expected an operator such as eq, ne, gt, ge, lt, le, and, or at position 6"
    );
}

fn prop(path: &[&str]) -> Expr {
    Expr::new(
        ExprKind::Property(path.iter().map(|s| s.to_string()).collect()),
        Span::default(),
    )
}

fn lit(l: Literal) -> Expr {
    Expr::new(ExprKind::Literal(l), Span::default())
}

fn cmp(op: CompareOp, left: Expr, right: Expr) -> Expr {
    Expr::new(
        ExprKind::Compare {
            op,
            left: Box::new(left),
            right: Box::new(right),
        },
        Span::default(),
    )
}

#[test]
fn precedence_groups_and_tighter_than_or() {
    let e = parse_filter("a eq 1 or b eq 2 and c eq 3").unwrap();
    let expected = Expr::new(
        ExprKind::Or(
            Box::new(cmp(CompareOp::Eq, prop(&["a"]), lit(Literal::Int(1)))),
            Box::new(Expr::new(
                ExprKind::And(
                    Box::new(cmp(CompareOp::Eq, prop(&["b"]), lit(Literal::Int(2)))),
                    Box::new(cmp(CompareOp::Eq, prop(&["c"]), lit(Literal::Int(3)))),
                ),
                Span::default(),
            )),
        ),
        Span::default(),
    );
    assert_eq!(e, expected);
}

#[test]
fn not_binds_looser_than_comparison_but_tighter_than_and() {
    let e = parse_filter("not a eq 1 and b").unwrap();
    let ExprKind::And(l, r) = &e.kind else {
        panic!("{e:?}")
    };
    assert!(
        matches!(&l.kind, ExprKind::Not(inner) if matches!(inner.kind, ExprKind::Compare { .. }))
    );
    assert_eq!(**r, prop(&["b"]));
}

#[test]
fn literals_have_the_right_values() {
    use time::macros::{date, datetime};
    let cases: &[(&str, Literal)] = &[
        ("null", Literal::Null),
        ("true", Literal::Bool(true)),
        ("-5", Literal::Int(-5)),
        ("1.25E-2", Literal::Decimal(crate::Decimal::new(125, 4))),
        ("'a''b'", Literal::String("a'b".into())),
        ("1600-02-29", Literal::Date(date!(1600 - 02 - 29))),
        (
            "2024-03-01T10:20:30.25+02:00",
            Literal::DateTimeOffset(datetime!(2024-03-01 10:20:30.25 +02:00)),
        ),
        (
            "deadbeef-0000-4000-8000-0123456789ab",
            Literal::Guid(uuid::Uuid::from_u128(
                0xdeadbeef_0000_4000_8000_0123456789ab,
            )),
        ),
    ];
    for (text, expected) in cases {
        let src = format!("x eq {text}");
        let e = parse_filter(&src).unwrap();
        let ExprKind::Compare { right, .. } = &e.kind else {
            panic!("{e:?}")
        };
        assert_eq!(right.kind, ExprKind::Literal(expected.clone()), "{text}");
        // the span covers exactly the literal text
        assert_eq!(&src[right.span.start..right.span.end], *text);
    }
}

#[test]
fn date_time_keeps_its_offset() {
    let e = parse_filter("At eq 2024-03-01T10:20:00-05:30").unwrap();
    let ExprKind::Compare { right, .. } = &e.kind else {
        panic!()
    };
    let ExprKind::Literal(Literal::DateTimeOffset(dt)) = right.kind else {
        panic!()
    };
    assert_eq!(dt.offset().as_hms(), (-5, -30, 0));
    assert_eq!(dt.hour(), 10);
}

#[test]
fn spans_are_byte_ranges_of_the_source() {
    let src = "'é' eq Name and contains(Site/city, 'x')";
    let e = parse_filter(src).unwrap();
    assert_eq!(
        e.span,
        Span {
            start: 0,
            end: src.len()
        }
    );
    let ExprKind::And(l, r) = &e.kind else {
        panic!()
    };
    let ExprKind::Compare { right, .. } = &l.kind else {
        panic!()
    };
    assert_eq!(&src[right.span.start..right.span.end], "Name");
    assert_eq!(&src[r.span.start..r.span.end], "contains(Site/city, 'x')");
    let paren = parse_filter(" (a eq 1) ").unwrap();
    assert_eq!(paren.span, Span { start: 1, end: 9 });
}

#[test]
fn printer_parenthesises_hand_built_trees() {
    // A comparison whose operand is a comparison, an `and` inside `not`, and
    // a right-nested `or` cannot be written without parentheses.
    let inner = cmp(CompareOp::Gt, prop(&["a"]), lit(Literal::Int(1)));
    let e = cmp(CompareOp::Eq, inner.clone(), lit(Literal::Bool(false)));
    assert_eq!(print_filter(&e), "(a gt 1) eq false");
    let not = Expr::new(
        ExprKind::Not(Box::new(Expr::new(
            ExprKind::And(Box::new(prop(&["a"])), Box::new(prop(&["b"]))),
            Span::default(),
        ))),
        Span::default(),
    );
    assert_eq!(print_filter(&not), "not (a and b)");
    let or = Expr::new(
        ExprKind::Or(
            Box::new(prop(&["a"])),
            Box::new(Expr::new(
                ExprKind::Or(Box::new(prop(&["b"])), Box::new(prop(&["c"]))),
                Span::default(),
            )),
        ),
        Span::default(),
    );
    assert_eq!(print_filter(&or), "a or (b or c)");
    assert_eq!(parse_filter(&print_filter(&or)).unwrap(), or);
}

#[test]
fn decimals_always_print_as_decimals() {
    use crate::Decimal;
    for f in [
        Decimal::ZERO,
        Decimal::new(-0, 1),
        Decimal::ONE,
        Decimal::new(1210, 2),
        Decimal::MAX,
        Decimal::MIN,
        Decimal::new(1, 28),
        Decimal::new(123456789, 0),
        Decimal::new(1, 1),
    ] {
        let text = print_filter(&lit(Literal::Decimal(f)));
        let e = parse_filter(&format!("x eq {text}")).unwrap();
        let ExprKind::Compare { right, .. } = &e.kind else {
            panic!()
        };
        assert_eq!(right.kind, ExprKind::Literal(Literal::Decimal(f)), "{text}");
    }
}

#[test]
fn nesting_is_bounded() {
    let ok = format!("{}a{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
    assert!(parse_filter(&ok).is_ok());
    let deep = format!(
        "{}a{}",
        "(".repeat(MAX_DEPTH + 1),
        ")".repeat(MAX_DEPTH + 1)
    );
    let err = parse_filter(&deep).unwrap_err();
    assert_eq!(err.position, MAX_DEPTH + 1);
    assert!(err.message.contains("nested too deeply"), "{err}");
    let nots = format!("{}a", "not ".repeat(MAX_DEPTH + 1));
    assert!(
        parse_filter(&nots)
            .unwrap_err()
            .message
            .contains("nested too deeply")
    );
    let calls = format!(
        "{}a, 'x'{}",
        "contains(".repeat(MAX_DEPTH + 1),
        ")".repeat(MAX_DEPTH + 1)
    );
    assert!(
        parse_filter(&calls)
            .unwrap_err()
            .message
            .contains("nested too deeply")
    );
    // Hostile input far beyond the limit fails cleanly rather than overflowing.
    let huge = "(".repeat(100_000);
    assert!(parse_filter(&huge).is_err());
}

#[test]
fn long_chains_do_not_recurse() {
    // Chains are as long as the input allows; more terms than 8 KiB can hold
    // (at 5 bytes per `a or ` term, about 1,640) must parse, print and check.
    // Parsing, printing and checking loop over chains; only the compiler's
    // recursive drop of the tree remains, which manages about 10,000 terms on
    // a 2 MiB test thread in a debug build.
    let src = vec!["IsActive"; 2000].join(" or ");
    let e = parse_filter(&src).unwrap();
    assert_eq!(print_filter(&e), src);
    check_filter(&e, &src, &Table).unwrap();
    let src = vec!["Age eq 1"; 2000].join(" and ");
    let e = parse_filter(&src).unwrap();
    assert_eq!(print_filter(&e), src);
    check_filter(&e, &src, &Table).unwrap();
}

// ---------------------------------------------------------------- checker

/// The test catalog: one entity set with a property of every type.
struct Table;

impl PropertyResolver for Table {
    fn resolve(&self, path: &[String]) -> Option<PropertyType> {
        resolve_test_path(path)
    }
}

fn resolve_test_path(path: &[String]) -> Option<PropertyType> {
    use ScalarType as T;
    let p = path.join("/");
    Some(match p.as_str() {
        "Name" => PropertyType::Scalar(T::String),
        "Age" => PropertyType::Scalar(T::Int),
        "Amount" => PropertyType::Scalar(T::Decimal),
        "IsActive" | "Deleted" => PropertyType::Scalar(T::Bool),
        "Born" => PropertyType::Scalar(T::Date),
        "At" => PropertyType::Scalar(T::DateTimeOffset),
        "Id" => PropertyType::Scalar(T::Guid),
        "Photo" => PropertyType::Scalar(T::Binary),
        "Site" => PropertyType::Complex {
            parts: vec!["city".into(), "zip".into()],
        },
        "Other" => PropertyType::Complex {
            parts: vec!["Other/x".into()],
        },
        "Site/city" | "Site/zip" => PropertyType::Scalar(T::String),
        _ => return None,
    })
}

const TYPE_OK: &[&str] = &[
    "contains(Name, 'a') eq true",
    "false ne startswith(Name, 'a')",
    "Name eq 'x'",
    "Name ne null",
    "null eq Name",
    "null eq null",
    "Age gt 5",
    "Age gt 5.5",
    "Amount le 3",
    "Age eq Amount",
    "Name eq Site/city",
    "IsActive",
    "true",
    "IsActive eq true",
    "IsActive ne Deleted",
    "not IsActive",
    "IsActive and not Deleted or Age lt 3",
    "Born lt 1600-01-01",
    "Born lt 2020-01-01T00:00Z",
    "At gt 2020-01-01",
    "At ge 2020-01-01T00:00:00.5+01:00",
    "Id eq 01234567-89ab-cdef-0123-456789abcdef",
    "Id ne deadbeef-0000-4000-8000-0123456789ab",
    "Id eq 'deadbeef-0000-4000-8000-0123456789ab'",
    "'deadbeef-0000-4000-8000-0123456789ab' eq Id",
    "Photo eq null",
    "null ne Photo",
    "Site/city eq 'Paris'",
    "contains(Site/city, 'Par')",
    "startswith('abc', Name)",
    "endswith(Name, Site/zip)",
    "1 eq 1",
    "(Age gt 5) eq true",
    "contains(Name, 'a') eq false",
];

const TYPE_BAD: &[(&str, usize, &str)] = &[
    // a condition compares only with true or false: SQL has no such comparison
    ("(Age gt 5) ne IsActive", 1, "is a condition"),
    ("Foo eq 1", 1, "unknown property 'Foo'"),
    ("Site/country eq 'x'", 1, "unknown property 'Site/country'"),
    ("'é' eq Foo", 8, "unknown property 'Foo'"),
    ("IsActive and Foo", 14, "unknown property 'Foo'"),
    ("Site eq 'x'", 1, "'Site' is a complex value"),
    ("Site eq 'x'", 1, "Site/city, Site/zip"),
    ("Other eq 'x'", 1, "use one of its parts: Other/x"),
    ("contains(Site, 'x')", 10, "complex value"),
    ("Name and IsActive", 1, "'Name' is String, not a condition"),
    ("IsActive and Age", 14, "'Age' is Int"),
    ("not Name", 5, "'Name' is String"),
    ("Name", 1, "not a condition"),
    ("5", 1, "expected a condition, found Int 5"),
    ("null", 1, "expected a condition, found null"),
    ("Name eq 5", 9, "cannot compare String 'Name' with Int 5"),
    ("5 eq Name", 1, "cannot compare Int 5 with String 'Name'"),
    (
        "Age eq Name",
        8,
        "cannot compare Int 'Age' with String 'Name'",
    ),
    (
        "Born eq 'x'",
        9,
        "cannot compare Date 'Born' with String 'x'",
    ),
    ("Age eq true", 8, "cannot compare Int 'Age' with Bool true"),
    ("Id eq 5", 7, "cannot compare Guid 'Id' with Int 5"),
    ("Age gt null", 8, "cannot use gt with null"),
    ("null le Age", 1, "cannot use le with null"),
    ("IsActive gt true", 13, "can only be compared with eq or ne"),
    (
        "Id lt 01234567-89ab-cdef-0123-456789abcdef",
        7,
        "cannot use lt to compare Guid 'Id'",
    ),
    ("Photo eq Photo", 1, "Binary 'Photo' cannot be compared"),
    ("Name eq Photo", 9, "Binary 'Photo' cannot be compared"),
    ("Id eq 'nope'", 7, "'nope' is not a valid GUID"),
    (
        "contains(Age, '1')",
        10,
        "contains() needs String arguments, but argument 1 is Int 'Age'",
    ),
    ("startswith(Name, 5)", 18, "argument 2 is Int 5"),
    ("endswith(Name, null)", 16, "argument 2 is null"),
    (
        "contains(Name, Age gt 1)",
        16,
        "argument 2 is Bool (Age gt 1)",
    ),
    ("(Age gt 'x') eq true", 9, "cannot compare Int 'Age'"),
];

#[test]
fn checker_accepts_well_typed_filters() {
    for src in TYPE_OK {
        let e = parse_filter(src).unwrap_or_else(|err| panic!("{src:?}: {err}"));
        check_filter(&e, src, &Table).unwrap_or_else(|err| panic!("{src:?}: {err}"));
    }
}

#[test]
fn checker_rejects_ill_typed_filters() {
    for (src, position, needle) in TYPE_BAD {
        let e = parse_filter(src).unwrap_or_else(|err| panic!("{src:?}: {err}"));
        match check_filter(&e, src, &Table) {
            Ok(()) => panic!("{src:?} should not type-check"),
            Err(err) => {
                assert!(
                    err.message.contains(needle),
                    "{src:?}: message {:?} lacks {needle:?}",
                    err.message
                );
                assert_eq!(err.position, *position, "{src:?}: {err}");
            }
        }
    }
}

#[test]
fn checker_reports_wrong_arity_of_hand_built_calls() {
    let e = Expr::new(
        ExprKind::Call {
            func: Func::Contains,
            args: vec![prop(&["Name"])],
        },
        Span::default(),
    );
    let err = check_filter(&e, "", &Table).unwrap_err();
    assert!(err.message.contains("exactly 2 arguments, got 1"), "{err}");
}

#[test]
fn checker_works_with_a_struct_resolver() {
    struct Everything;
    impl PropertyResolver for Everything {
        fn resolve(&self, _: &[String]) -> Option<PropertyType> {
            Some(PropertyType::Scalar(ScalarType::String))
        }
    }
    let src = "Anything eq 'x'";
    check_filter(&parse_filter(src).unwrap(), src, &Everything).unwrap();
}

// ---------------------------------------------------------------- options

fn path(p: &str) -> Vec<String> {
    p.split('/').map(str::to_string).collect()
}

#[test]
fn orderby_good() {
    let items = parse_orderby("Name desc, Site/city asc, Amount").unwrap();
    let got: Vec<(Vec<String>, bool)> = items
        .iter()
        .map(|i| (i.path.clone(), i.descending))
        .collect();
    assert_eq!(
        got,
        vec![
            (path("Name"), true),
            (path("Site/city"), false),
            (path("Amount"), false)
        ]
    );
    assert_eq!(items[0].span, Span { start: 0, end: 9 });
    assert_eq!(items[2].span, Span { start: 26, end: 32 });
    let items = parse_orderby("  asc  ,desc desc").unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].path, path("asc"));
    assert!(!items[0].descending);
    assert_eq!(items[1].path, path("desc"));
    assert!(items[1].descending);
}

#[test]
fn select_good() {
    assert_eq!(
        parse_select("Name,Site , Site/city").unwrap(),
        vec![path("Name"), path("Site"), path("Site/city")]
    );
    assert_eq!(parse_select(" Id ").unwrap(), vec![path("Id")]);
}

#[test]
fn expand_good() {
    let item = |name: &str, options: &[(&str, &str, usize)]| ExpandItem {
        name: name.into(),
        options: options
            .iter()
            .map(|(k, v, position)| ExpandOption {
                name: k.to_string(),
                value: v.to_string(),
                position: *position,
            })
            .collect(),
    };
    let cases: &[(&str, Vec<ExpandItem>)] = &[
        ("Customer", vec![item("Customer", &[])]),
        (
            " Customer , Owner ",
            vec![item("Customer", &[]), item("Owner", &[])],
        ),
        (
            "Account_ref($select=Name,Address)",
            vec![item("Account_ref", &[("$select", "Name,Address", 21)])],
        ),
        (
            "A_ref($select=Name; $expand=B_ref($select=X;$expand=C_ref)),D_ref",
            vec![
                item(
                    "A_ref",
                    &[
                        ("$select", "Name", 15),
                        ("$expand", "B_ref($select=X;$expand=C_ref)", 29),
                    ],
                ),
                item("D_ref", &[]),
            ],
        ),
        (
            "é_ref($filter=Name eq 'a,b;(c''d')",
            vec![item("é_ref", &[("$filter", "Name eq 'a,b;(c''d'", 15)])],
        ),
    ];
    for (src, expect) in cases {
        assert_eq!(&parse_expand(src).unwrap(), expect, "{src}");
    }
}

#[test]
fn options_bad() {
    type Parser = fn(&str) -> Result<(), FilterError>;
    let orderby: Parser = |s| parse_orderby(s).map(drop);
    let select: Parser = |s| parse_select(s).map(drop);
    let expand: Parser = |s| parse_expand(s).map(drop);
    let cases: &[(Parser, &str, usize, &str)] = &[
        (orderby, "", 1, "empty $orderby"),
        (orderby, "  ", 1, "empty $orderby"),
        (
            orderby,
            "Name desc,",
            11,
            "expected a property name after ','",
        ),
        (
            orderby,
            ",Name",
            1,
            "expected a property name in $orderby, found ','",
        ),
        (orderby, "Name up", 6, "unexpected 'up', expected asc, desc"),
        (orderby, "Name DESC", 6, "write 'desc'"),
        (orderby, "Name desc desc", 11, "expected ','"),
        (orderby, "Name desc Age", 11, "expected ','"),
        (orderby, "5", 1, "found number 5"),
        (orderby, "'Name'", 1, "found string 'Name'"),
        (orderby, "Name,,Age", 6, "found ','"),
        (orderby, "Site/", 6, "property name after '/'"),
        (select, "", 1, "empty $select"),
        (select, "Name,", 6, "expected a property name after ','"),
        (select, "Name Age", 6, "unexpected 'Age', expected ','"),
        (select, "Name;Age", 5, "unexpected character ';'"),
        (select, "*", 1, "unexpected character '*'"),
        (expand, "", 1, "empty $expand"),
        (expand, "Customer($select=Name", 9, "'(' is not closed"),
        (expand, "Customer)", 9, "unexpected ')'"),
        (expand, "Customer()", 10, "empty options for 'Customer'"),
        (
            expand,
            "Owner,Customer($select)",
            16,
            "expected '$option=value'",
        ),
        (
            expand,
            "Customer(select=Name)",
            10,
            "expected '$option=value'",
        ),
        (
            expand,
            "Customer($filter=Name eq 'x)",
            26,
            "unterminated string",
        ),
        (expand, "Customer/Address", 1, "not paths"),
        (expand, "*", 1, "found '*'"),
        (expand, "Owner($select=Name) x", 21, "unexpected 'x'"),
        (expand, "é($select=Name)x,B", 16, "unexpected 'x'"),
        (
            expand,
            "Customer,",
            10,
            "expected a property name after ','",
        ),
        (expand, "Customer Owner", 10, "expected ','"),
    ];
    for (parse, src, position, needle) in cases {
        match parse(src) {
            Ok(()) => panic!("{src:?} should fail"),
            Err(err) => {
                assert!(
                    err.message.contains(needle),
                    "{src:?}: message {:?} lacks {needle:?}",
                    err.message
                );
                assert_eq!(err.position, *position, "{src:?}: {err}");
            }
        }
    }
}
