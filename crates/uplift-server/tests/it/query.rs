//! `$filter`, `$select`, `$orderby`, `$top`, `$skip`, `$count`, `$expand` and paging.

use axum::http::{Method, StatusCode};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::support::{ADMIN_TOKEN, Platform};
use uplift_test_macros::engine_test;

const SET: &str = "/api/environments/contoso/data/items";

async fn seed(p: &Platform) {
    p.create_env("contoso", "classic", "open").await;
    let def = json!({"fields":[
        {"name":"Name","type":"Text"},{"name":"Qty","type":"Integer"},{"name":"Price","type":"Quantity"},
        {"name":"Active","type":"Boolean"},{"name":"Day","type":"Date"},{"name":"At","type":"DateTime"},
        {"name":"Ref","type":"Guid"},{"name":"Site","type":"Address"},{"name":"Maker","type":"Lookup","target":"Account"}]});
    let a = p
        .put("/api/environments/contoso/entities/Item", ADMIN_TOKEN, def)
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let acc = p
        .post(
            "/api/environments/contoso/data/accounts",
            ADMIN_TOKEN,
            json!({"Name":"Fabrikam"}),
        )
        .await;
    let acc = acc.body["id"].as_str().unwrap().to_string();
    let rows = [
        (
            "apple",
            1,
            0.5,
            true,
            "1700-01-01",
            "2024-01-01T00:00:00Z",
            "Paris",
        ),
        (
            "Banana",
            2,
            1.25,
            false,
            "2020-05-05",
            "2024-01-02T12:00:00Z",
            "paris",
        ),
        (
            "cherry",
            3,
            2.0,
            true,
            "2021-06-06",
            "2024-01-03T00:00:00Z",
            "London",
        ),
        (
            "Date 50%_off",
            4,
            10.0,
            false,
            "2022-07-07",
            "2024-01-04T00:00:00Z",
            "Berlin",
        ),
        (
            "elderberry",
            5,
            99.99,
            true,
            "2023-08-08",
            "2025-06-01T08:30:00+02:00",
            "Rome",
        ),
    ];
    for (i, (name, qty, price, active, day, at, city)) in rows.iter().enumerate() {
        let mut body = json!({"Name":name,"Qty":qty,"Price":price,"Active":active,"Day":day,"At":at,
            "Ref":format!("00000000-0000-0000-0000-00000000000{i}"),"Site":{"city":city}});
        if i % 2 == 0 {
            body["Maker"] = json!(acc);
        }
        let c = p.post(SET, ADMIN_TOKEN, body).await;
        assert_eq!(c.status, StatusCode::CREATED, "{}", c.body);
    }
    // One record with nothing but a name: nulls must behave as OData says.
    p.post(SET, ADMIN_TOKEN, json!({"Name":"fig"})).await;
}

fn names(v: &Value) -> Vec<String> {
    v["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Name"].as_str().unwrap_or("").to_string())
        .collect()
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[engine_test]
async fn every_filter_operator_and_function(p: Platform) {
    let cases: &[(&str, &[&str])] = &[
        ("Name eq 'APPLE'", &["apple"]),
        (
            "Name ne 'apple'",
            &["Banana", "cherry", "Date 50%_off", "elderberry", "fig"],
        ),
        ("Qty gt 3", &["Date 50%_off", "elderberry"]),
        ("Qty ge 3", &["cherry", "Date 50%_off", "elderberry"]),
        ("Qty lt 2", &["apple"]),
        ("Qty le 2", &["apple", "Banana"]),
        (
            "Qty ne 1",
            &["Banana", "cherry", "Date 50%_off", "elderberry", "fig"],
        ),
        ("Price gt 1.5 and Active eq true", &["cherry", "elderberry"]),
        ("Qty eq 1 or Qty eq 5", &["apple", "elderberry"]),
        ("not (Qty gt 1)", &["apple", "fig"]),
        ("not Active", &["Banana", "Date 50%_off", "fig"]),
        ("Active", &["apple", "cherry", "elderberry"]),
        ("(Qty eq 1 or Qty eq 2) and Active eq false", &["Banana"]),
        ("Qty eq null", &["fig"]),
        ("Qty ne null and Qty lt 3", &["apple", "Banana"]),
        ("contains(Name, 'ERR')", &["cherry", "elderberry"]),
        ("startswith(Name, 'b')", &["Banana"]),
        ("endswith(Name, 'RY')", &["cherry", "elderberry"]),
        ("contains(Name, '50%_')", &["Date 50%_off"]),
        ("contains(Name, '%')", &["Date 50%_off"]),
        ("Day lt 1753-01-01", &["apple"]),
        ("Day ge 2022-01-01", &["Date 50%_off", "elderberry"]),
        (
            "At gt 2024-01-02T00:00:00Z",
            &["Banana", "cherry", "Date 50%_off", "elderberry"],
        ),
        ("At eq 2025-06-01T06:30:00Z", &["elderberry"]),
        ("At lt 2024-01-02", &["apple"]),
        ("Ref eq 00000000-0000-0000-0000-000000000002", &["cherry"]),
        (
            "Ref eq '00000000-0000-0000-0000-000000000003'",
            &["Date 50%_off"],
        ),
        ("Site/city eq 'Paris'", &["apple", "Banana"]),
        ("startswith(Site/city, 'l')", &["cherry"]),
        (
            "Qty gt 0 and not (Site/city eq 'paris')",
            &["cherry", "Date 50%_off", "elderberry"],
        ),
        ("Price eq 0.5", &["apple"]),
        ("Qty eq 2.0", &["Banana"]),
        ("Maker ne null", &["apple", "cherry", "elderberry"]),
        ("Site eq null", &["fig"]),
        ("Site ne null and Qty lt 3", &["apple", "Banana"]),
        (
            "1 eq 1",
            &[
                "apple",
                "Banana",
                "cherry",
                "Date 50%_off",
                "elderberry",
                "fig",
            ],
        ),
    ];
    seed(&p).await;
    for (filter, expected) in cases {
        let a = p
            .get(
                &format!("{SET}?$orderby=Name&$filter={}", enc(filter)),
                ADMIN_TOKEN,
            )
            .await;
        assert_eq!(
            a.status,
            StatusCode::OK,
            "{}: {filter}: {}",
            p.engine,
            a.body
        );
        assert_eq!(names(&a.body), *expected, "{}: $filter={filter}", p.engine);
    }
}

#[engine_test]
async fn bad_query_options_are_400_with_a_position(p: Platform) {
    let cases: &[(&str, &str)] = &[
        ("$filter=Name eq", "$filter"),
        ("$filter=Nam eq 'x'", "unknown property 'Nam' at position 1"),
        ("$filter=Name eq 5", "position"),
        ("$filter=Qty eq 'x' and", "position"),
        ("$filter=Site eq 'x'", "Site/city"),
        ("$filter=substringof('a', Name)", "substringof"),
        ("$orderby=Nope desc", "unknown property 'Nope'"),
        ("$orderby=Site", "complex value"),
        ("$select=Name,Nope", "unknown property 'Nope'"),
        ("$top=-1", "$top"),
        ("$skip=x", "$skip"),
        ("$count=maybe", "$count"),
        (
            "$fitler=Name eq 'x'",
            "unknown or unsupported query option '$fitler'",
        ),
        ("$expand=Name", "not a lookup"),
        ("$skiptoken=garbage", "$skiptoken"),
        (
            "$top=9223372036854775808",
            "$top: '9223372036854775808' is larger than the largest allowed",
        ),
        (
            "$skip=18446744073709551615",
            "$skip: '18446744073709551615' is larger",
        ),
        (
            "$filter=Name eq 'a%00b'",
            "$filter: text must not contain the NUL character",
        ),
    ];
    seed(&p).await;
    for (q, expected) in cases {
        let path = format!("{SET}?{}", q.replace(' ', "%20").replace('\'', "%27"));
        let a = p.get(&path, ADMIN_TOKEN).await;
        assert_eq!(
            a.status,
            StatusCode::BAD_REQUEST,
            "{}: {q}: {}",
            p.engine,
            a.body
        );
        assert!(
            a.message().contains(expected),
            "{}: {q}: expected '{expected}' in '{}'",
            p.engine,
            a.message()
        );
    }
}

#[engine_test]
async fn select_orderby_top_skip_count_and_expand(p: Platform) {
    seed(&p).await;
    let a = p
        .get(
            &format!("{SET}?$select=Name,Qty&$orderby=Qty%20desc&$top=2&$skip=1&$count=true"),
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(a.body["@odata.count"], 6, "{}", a.body);
    assert_eq!(names(&a.body), ["Date 50%_off", "cherry"]);
    let first = a.body["value"][0].as_object().unwrap();
    let keys: Vec<&str> = first.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["@odata.etag", "id", "Name", "Qty"],
        "{}: only selected fields",
        p.engine
    );
    // Nulls sort first ascending, last descending; text ignores case.
    let asc = p
        .get(&format!("{SET}?$orderby=Qty,Name"), ADMIN_TOKEN)
        .await;
    assert_eq!(
        names(&asc.body),
        [
            "fig",
            "apple",
            "Banana",
            "cherry",
            "Date 50%_off",
            "elderberry"
        ]
    );
    let multi = p
        .get(
            &format!("{SET}?$orderby=Active%20desc,Name%20desc"),
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(
        names(&multi.body),
        [
            "elderberry",
            "cherry",
            "apple",
            "Date 50%_off",
            "Banana",
            "fig"
        ],
        "{}",
        p.engine
    );
    let by_city = p
        .get(
            &format!("{SET}?$orderby=Site/city%20desc&$filter=Qty%20ne%20null"),
            ADMIN_TOKEN,
        )
        .await;
    // Ties (apple and Banana share a city) go by id, the way the last key runs.
    assert_eq!(
        names(&by_city.body),
        ["elderberry", "Banana", "apple", "cherry", "Date 50%_off"]
    );
    let count = p
        .get(
            &format!("{SET}/$count?$filter=Active%20eq%20true"),
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(count.body, json!(3));
    let exp = p
        .get(
            &format!("{SET}?$filter=Qty%20eq%201&$expand=Maker_ref&$select=Name"),
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(
        exp.body["value"][0]["Maker_ref"]["Name"], "Fabrikam",
        "{}",
        exp.body
    );
    let top0 = p
        .get(&format!("{SET}?$top=0&$count=true"), ADMIN_TOKEN)
        .await;
    assert_eq!(top0.body["value"], json!([]));
    assert!(top0.body.get("@odata.nextLink").is_none());
}

/// Follows `@odata.nextLink` until the end; returns every name seen and the pages.
async fn follow(p: &Platform, first: &str, page: u64) -> (Vec<String>, usize) {
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut next = Some(first.to_string());
    let pref = format!("odata.maxpagesize={page}");
    while let Some(path) = next {
        let a = p
            .call(
                Method::GET,
                &path,
                Some(ADMIN_TOKEN),
                None,
                &[("prefer", &pref)],
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}: {path}: {}", p.engine, a.body);
        assert_eq!(a.headers["preference-applied"], pref.as_str());
        seen.extend(names(&a.body));
        pages += 1;
        next = a.body["@odata.nextLink"]
            .as_str()
            .map(|l| l.trim_start_matches("http://test.local").to_string());
        assert!(pages < 1000, "paging does not end");
    }
    (seen, pages)
}

#[engine_test]
async fn paging_through_next_links_reaches_the_last_row_exactly_once(p: Platform) {
    seed(&p).await;
    // Many rows sharing order keys: the keyset must still be exact.
    for i in 0..37 {
        let c = p
            .post(
                SET,
                ADMIN_TOKEN,
                json!({"Name":format!("bulk{:02}", i % 7),"Qty":i % 3}),
            )
            .await;
        assert_eq!(c.status, StatusCode::CREATED);
    }
    let all = p
        .get(
            &format!("{SET}?$orderby=Qty%20desc,Name&$top=1000"),
            ADMIN_TOKEN,
        )
        .await;
    let expected = names(&all.body);
    assert_eq!(expected.len(), 43);
    let (seen, pages) = follow(&p, &format!("{SET}?$orderby=Qty%20desc,Name"), 5).await;
    assert_eq!(seen, expected, "{}: keyset paging in order", p.engine);
    assert_eq!(pages, 9);
    // $top across pages, with a filter carried along.
    let (seen, _) = follow(
        &p,
        &format!("{SET}?$filter=startswith(Name,'bulk')&$orderby=Name&$top=12"),
        5,
    )
    .await;
    assert_eq!(seen.len(), 12);
    assert!(seen.iter().all(|n| n.starts_with("bulk")));
    // Default ordering (by id) pages through everything too.
    let (seen, _) = follow(&p, SET, 10).await;
    assert_eq!(seen.len(), 43);
}

#[engine_test]
async fn metadata_and_service_document(p: Platform) {
    seed(&p).await;
    let part =
        json!({"fields": [{"name": "Item", "type": "Lookup", "target": "Item", "required": true}]});
    let a = p
        .put("/api/environments/contoso/entities/Part", ADMIN_TOKEN, part)
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let m = p
        .get("/api/environments/contoso/data/$metadata", ADMIN_TOKEN)
        .await;
    assert_eq!(m.status, StatusCode::OK);
    assert_eq!(m.headers["odata-version"], "4.0");
    let xml = m.body.as_str().unwrap();
    for needle in [
        r#"<EntitySet Name="items" EntityType="Uplift.Item">"#,
        r#"<Property Name="id" Type="Edm.Guid" Nullable="false"/>"#,
        r#"<Property Name="Site" Type="Uplift.Values.Address"/>"#,
        r#"<Property Name="Day" Type="Edm.Date"/>"#,
        r#"<Property Name="At" Type="Edm.DateTimeOffset" Precision="3"/>"#,
        r#"<Property Name="Price" Type="Edm.Decimal" Scale="variable"/>"#,
        r#"<NavigationProperty Name="Maker_ref" Type="Uplift.Account">"#,
        r#"<NavigationProperty Name="Item_ref" Type="Uplift.Item" Nullable="false">"#,
        r#"<Property Name="value" Type="Edm.Decimal" Scale="variable"/>"#,
        r#"<Property Name="CreatedDateTime" Type="Edm.DateTimeOffset" Precision="3"><Annotation Term="Org.OData.Core.V1.Computed" Bool="true"/>"#,
        r#"<Property Name="Name" Type="Edm.String" Nullable="false" MaxLength="160"/>"#,
    ] {
        assert!(
            xml.contains(needle),
            "{}: $metadata lacks {needle}",
            p.engine
        );
    }
    let doc = p.get("/api/environments/contoso/data/", ADMIN_TOKEN).await;
    assert!(
        doc.body["value"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "items")
    );
    assert_eq!(doc.headers["odata-version"], "4.0");
}

/// A page ordered by the business key is a walk of its index, forwards for ascending
/// and backwards for descending, never a sort of every row: PostgreSQL, told not to
/// sort unless it must, plans an index scan; SQLite plans no temporary B-tree.
#[engine_test]
async fn an_ordered_page_is_an_index_walk(p: Platform) {
    use uplift_model::ColType;
    use uplift_store::Dialect;
    use uplift_store::records::{ListQuery, list_sql};
    p.create_env("acme", "classic", "open").await;
    for name in ["b", "A", "c"] {
        p.post(
            "/api/environments/acme/data/accounts",
            ADMIN_TOKEN,
            json!({"Name": name}),
        )
        .await;
    }
    let db = p.store.env_db("acme").await.unwrap();
    let account = db.catalog().entity("Account").unwrap().clone();
    let cols = uplift_model::layout::entity_columns(&account, db.catalog().version);
    for orderby in ["Name", "Name desc"] {
        let q = ListQuery {
            filter: None,
            orderby: uplift_model::filter::parse_orderby(orderby).unwrap(),
            skip: 0,
            limit: 50,
            after: None,
        };
        let (buf, _) = list_sql(
            db.dialect(),
            &db.table(&account),
            &account,
            db.catalog().version,
            &cols,
            &q,
        )
        .unwrap();
        let mut conn = db.pool().conn().await.unwrap();
        let plan: Vec<String> = match db.dialect() {
            Dialect::Postgres => {
                conn.batch("SET enable_sort = off").await.unwrap();
                let rows = conn
                    .query(
                        &format!("EXPLAIN {}", buf.sql),
                        &buf.params,
                        &[ColType::Text],
                    )
                    .await
                    .unwrap();
                conn.batch("RESET enable_sort").await.unwrap();
                rows.iter()
                    .map(|r| r[0].as_text().unwrap_or_default().to_string())
                    .collect()
            }
            Dialect::Sqlite => {
                let types = [ColType::Int, ColType::Int, ColType::Int, ColType::Text];
                let rows = conn
                    .query(
                        &format!("EXPLAIN QUERY PLAN {}", buf.sql),
                        &buf.params,
                        &types,
                    )
                    .await
                    .unwrap();
                rows.iter()
                    .map(|r| r[3].as_text().unwrap_or_default().to_string())
                    .collect()
            }
        };
        let plan = plan.join("\n");
        let sorts = plan.contains("Sort") || plan.contains("TEMP B-TREE");
        assert!(
            !sorts && plan.contains("ix_"),
            "{}: $orderby={orderby}:\n{}\n{plan}",
            p.engine,
            buf.sql
        );
    }
}

/// OData conformance found by a strict generated client: the context URL names the
/// `$select` list; a predicate may be compared with a boolean literal.
#[engine_test]
async fn context_urls_name_the_select_list_and_predicates_compare_with_booleans(p: Platform) {
    seed(&p).await;
    let a = p
        .get(&format!("{SET}?$select=Name,Site&$top=1"), ADMIN_TOKEN)
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}: {}", p.engine, a.body);
    let ctx = a.body["@odata.context"].as_str().unwrap();
    assert!(
        ctx.ends_with("/$metadata#items(Name,Site)"),
        "{}: {ctx}",
        p.engine
    );
    let id = a.body["value"][0]["id"].as_str().unwrap();
    let one = p
        .get(&format!("{SET}({id})?$select=Name"), ADMIN_TOKEN)
        .await;
    let ctx = one.body["@odata.context"].as_str().unwrap();
    assert!(
        ctx.ends_with("/$metadata#items(Name)/$entity"),
        "{}: {ctx}",
        p.engine
    );
    for (filter, expect) in [
        ("contains(Name,'an') eq true", vec!["Banana"]),
        (
            "startswith(Name,'a') eq false and Qty ne null",
            vec!["Banana", "cherry", "Date 50%_off", "elderberry"],
        ),
        ("true eq endswith(Name,'y')", vec!["cherry", "elderberry"]),
        (
            "(Qty gt 2) eq true",
            vec!["cherry", "Date 50%_off", "elderberry"],
        ),
    ] {
        let a = p
            .get(
                &format!("{SET}?$filter={}&$orderby=Name", enc(filter)),
                ADMIN_TOKEN,
            )
            .await;
        assert_eq!(
            a.status,
            StatusCode::OK,
            "{}: {filter}: {}",
            p.engine,
            a.body
        );
        assert_eq!(names(&a.body), expect, "{}: {filter}", p.engine);
    }
}

/// Every `$filter` error, whatever stage finds it (the parser, the type checker or
/// the SQL compiler), says `$filter:` and where the problem is.
#[engine_test]
async fn every_filter_error_has_the_prefix_and_a_position(p: Platform) {
    let filters = [
        "Name eq",
        "Nam eq 'x'",
        "Name eq 5",
        "Name",
        "Qty",
        "Site gt null",
        "Site eq 'x'",
        "contains(Name, 'a') eq Active",
        "(Qty eq 1) eq (Qty eq 2)",
        "contains(Qty, 'a')",
        "contains(Name)",
        "Name eq 'a' or",
        "not",
        "'x'",
        "1 eq 1 eq 1",
        "Day gt 2024-13-01",
        "At gt 2024-01-01T25:00:00Z",
        "Ref eq 1",
        "Maker eq 'x'",
        "((((Name eq 'x'",
    ];
    seed(&p).await;
    for f in filters {
        let a = p
            .get(&format!("{SET}?$filter={}", enc(f)), ADMIN_TOKEN)
            .await;
        assert_eq!(
            a.status,
            StatusCode::BAD_REQUEST,
            "{}: {f}: {}",
            p.engine,
            a.body
        );
        let m = a.message();
        assert!(
            m.starts_with("$filter: ") && m.contains("position"),
            "{}: {f}: {m}",
            p.engine
        );
    }
}

/// `$expand` takes `$select` and `$expand` inside a navigation property's
/// parentheses, and the payload has exactly what they asked for.
#[engine_test]
async fn expand_takes_nested_select_and_expand(p: Platform) {
    p.create_env("contoso", "classic", "open").await;
    let data = "/api/environments/contoso/data";
    let made = |set: &'static str, body: Value| {
        let p = &p;
        async move {
            let a = p.post(&format!("{data}/{set}"), ADMIN_TOKEN, body).await;
            assert_eq!(a.status, StatusCode::CREATED, "{}: {}", p.engine, a.body);
            a.body["id"].as_str().unwrap().to_string()
        }
    };
    let acc = made("accounts", json!({"Name": "Fabrikam", "Phone": "+1 555"})).await;
    let contact = made(
        "contacts",
        json!({"FullName": {"first_name": "Ada", "last_name": "Byron"}, "Email": "ada@fabrikam.test",
               "Account@odata.bind": format!("accounts({acc})")}),
    )
    .await;
    let order = made(
        "salesorders",
        json!({"Customer@odata.bind": format!("accounts({acc})"),
               "Contact@odata.bind": format!("contacts({contact})")}),
    )
    .await;
    let q = "$select=id&$expand=Contact_ref($select=FullName;$expand=Account_ref($select=Name)),Customer_ref";
    let a = p
        .get(
            &format!("{data}/salesorders({order})?{}", q.replace(' ', "%20")),
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}: {}", p.engine, a.body);
    let keys = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    let c = &a.body["Contact_ref"];
    assert_eq!(
        keys(c),
        ["@odata.etag", "id", "FullName", "Account_ref"],
        "{}: {c}",
        p.engine
    );
    assert_eq!(c["FullName"]["last_name"], "Byron");
    assert_eq!(keys(&c["Account_ref"]), ["@odata.etag", "id", "Name"]);
    assert_eq!(c["Account_ref"]["Name"], "Fabrikam");
    // Without options, the whole target record.
    assert_eq!(a.body["Customer_ref"]["Phone"], "+1 555", "{}", a.body);
    // The same in a collection.
    let list = p
        .get(
            &format!("{data}/salesorders?{}", q.replace(' ', "%20")),
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(
        list.body["value"][0]["Contact_ref"]["Account_ref"]["Name"], "Fabrikam",
        "{}: {}",
        p.engine, list.body
    );
}

/// What nested `$expand` options may not do is refused, naming the problem.
#[engine_test]
async fn bad_nested_expand_options_are_refused(p: Platform) {
    p.create_env("contoso", "classic", "open").await;
    let cases = [
        (
            "Contact_ref($select=Nope)",
            "$expand: Contact_ref($select): unknown property 'Nope'",
        ),
        (
            "Contact_ref($select=Na*me)",
            "$expand: Contact_ref($select): unexpected character '*' at position 23",
        ),
        (
            "Customer_ref,Contact_ref($expand=Account_ref(x))",
            "$expand: expected '$option=value' in the options of 'Account_ref', found 'x' at position 46",
        ),
        (
            "Contact_ref($top=1)",
            "option '$top' inside 'Contact_ref(...)' is not supported",
        ),
        ("Contact_ref($expand=Account)", "expand 'Account_ref'"),
        ("Contact_ref($select=FullName", "'(' is not closed"),
        (
            "Customer_ref,Contact_ref($expand=Account_ref($expand=Nope_ref))",
            "unknown navigation property 'Nope_ref'",
        ),
    ];
    let too_deep = (
        "salesorderlines",
        "SalesOrder_ref($expand=Contact_ref($expand=Account_ref($expand=Nope_ref)))",
        "nested more than 3 levels",
    );
    let cases = cases.map(|(e, m)| ("salesorders", e, m));
    for (set, expand, expected) in cases.into_iter().chain([too_deep]) {
        let a = p
            .get(
                &format!("/api/environments/contoso/data/{set}?$expand={expand}"),
                ADMIN_TOKEN,
            )
            .await;
        assert_eq!(
            a.status,
            StatusCode::BAD_REQUEST,
            "{}: {expand}: {}",
            p.engine,
            a.body
        );
        assert!(
            a.message().contains(expected),
            "{}: {expand}: expected '{expected}' in '{}'",
            p.engine,
            a.message()
        );
    }
}

/// An instant valid in its own offset but outside the years 0001-9999 in UTC, and a
/// date of year 0000 or below, are refused with a 400 wherever they come in: a
/// body's field, a `$filter` literal, a `$skiptoken`.
#[engine_test]
async fn instants_and_dates_outside_years_1_to_9999_are_refused(p: Platform) {
    seed(&p).await;
    let page = p.get(&format!("{SET}?$top=1"), ADMIN_TOKEN).await;
    let id = page.body["value"][0]["id"].as_str().unwrap().to_string();
    let refused = |a: &crate::support::Answer, what: &str, expected: &str| {
        assert_eq!(
            a.status,
            StatusCode::BAD_REQUEST,
            "{}: {what}: {}",
            p.engine,
            a.body
        );
        assert!(
            a.message().contains(expected),
            "{}: {what}: expected '{expected}' in '{}'",
            p.engine,
            a.message()
        );
    };
    for at in ["9999-12-31T23:00:00-23:00", "0001-01-01T00:00:00+01:00"] {
        let a = p
            .post(SET, ADMIN_TOKEN, json!({"Name": "x", "At": at}))
            .await;
        refused(&a, at, "field 'At'");
        let a = p
            .patch(&format!("{SET}({id})"), ADMIN_TOKEN, json!({"At": at}))
            .await;
        refused(&a, at, "field 'At'");
        let a = p
            .get(
                &format!("{SET}?$filter={}", enc(&format!("At eq {at}"))),
                ADMIN_TOKEN,
            )
            .await;
        refused(&a, at, "outside the years 0001 to 9999");
        assert!(a.message().starts_with("$filter: "), "{}", a.message());
        let token =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json!([at, id]).to_string());
        let a = p
            .get(
                &format!("{SET}?$orderby=At&$skiptoken={token}"),
                ADMIN_TOKEN,
            )
            .await;
        refused(&a, at, "$skiptoken");
    }
    for day in ["0000-01-01", "-001-01-01"] {
        let a = p
            .post(SET, ADMIN_TOKEN, json!({"Name": "x", "Day": day}))
            .await;
        refused(&a, day, "field 'Day'");
    }
    let count = p.get(&format!("{SET}/$count"), ADMIN_TOKEN).await;
    assert_eq!(count.body, json!(6), "{}: nothing was written", p.engine);
}
