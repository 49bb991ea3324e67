//! Filling in `@{…}` templates from a run's context:
//! `{"trigger": {...}, "steps": {"name": outputs}, "variables": {...}}`.

use serde_json::Value as Json;
use uplift_model::flow::templates;

/// The value at a template path (`steps.find.value[0].id`,
/// `trigger.record.FullName/last_name`), or `None` when absent.
pub fn lookup(ctx: &Json, path: &str) -> Option<Json> {
    let mut v = ctx;
    for segment in path.split('.') {
        let mut parts = segment.split('[');
        let key = parts.next().unwrap_or_default();
        for k in key.split('/').filter(|k| !k.is_empty()) {
            v = v.get(k)?;
        }
        for index in parts {
            let i: usize = index.trim_end_matches(']').trim().parse().ok()?;
            v = v.get(i)?;
        }
    }
    Some(v.clone())
}

/// The value a `$filter`-style path (`trigger/record/Name`) reads.
pub fn lookup_path(ctx: &Json, path: &[String]) -> Option<Json> {
    let mut v = ctx;
    for p in path {
        v = v.get(p)?;
    }
    Some(v.clone())
}

fn as_text(v: &Json) -> String {
    match v {
        Json::Null => String::new(),
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Fills a string. A string that is exactly one template takes the value's own JSON
/// type (a number stays a number); otherwise values are written into the text.
/// `quote` fills a `$filter`: inside a string literal a value has its quotes doubled,
/// and outside one it goes in only as a single literal (a number, `true`, `false`,
/// `null`, a GUID, a date or a time) and otherwise as a quoted string, so no record's
/// text can change what the filter asks.
pub fn render(ctx: &Json, s: &str, quote: bool) -> Result<Json, String> {
    let found = templates(s)?;
    if let [only] = found.as_slice()
        && s.trim() == format!("@{{{only}}}")
    {
        return Ok(lookup(ctx, only).unwrap_or(Json::Null));
    }
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("@{") {
        out.push_str(&rest[..i]);
        let end = rest[i..]
            .find('}')
            .ok_or_else(|| format!("'@{{' without a closing '}}' in '{s}'"))?;
        let path = rest[i + 2..i + end].trim();
        let value = lookup(ctx, path);
        let text = value.as_ref().map(as_text).unwrap_or_default();
        let inside_literal = out.matches('\'').count() % 2 == 1;
        out.push_str(&match (quote, inside_literal) {
            (false, _) => text,
            (true, true) => text.replace('\'', "''"),
            (true, false) if value.is_none_or(|v| v.is_null()) => "null".into(),
            (true, false) if is_literal(&text) => text,
            (true, false) => format!("'{}'", text.replace('\'', "''")),
        });
        rest = &rest[i + end + 1..];
    }
    out.push_str(rest);
    Ok(Json::String(out))
}

/// Whether `text` is one `$filter` literal that needs no quotes.
fn is_literal(text: &str) -> bool {
    let number = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'))
        && text.parse::<f64>().is_ok();
    number
        || matches!(text, "true" | "false" | "null")
        || (text.len() == 36 && uuid::Uuid::parse_str(text).is_ok())
        || uplift_model::value::parse_date(text).is_some()
        || uplift_model::value::parse_instant(text).is_some()
}

/// Fills every string inside a JSON value.
pub fn render_json(ctx: &Json, v: &Json) -> Result<Json, String> {
    Ok(match v {
        Json::String(s) => render(ctx, s, false)?,
        Json::Array(a) => Json::Array(
            a.iter()
                .map(|x| render_json(ctx, x))
                .collect::<Result<_, _>>()?,
        ),
        Json::Object(o) => Json::Object(
            o.iter()
                .map(|(k, x)| Ok((k.clone(), render_json(ctx, x)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn templates_fill_typed_or_as_text() {
        let ctx = json!({
            "trigger": {"record": {"FullName": {"last_name": "O'Neil"}, "Count": 3}},
            "steps": {"find": {"value": [{"id": "a1"}], "count": 1}}
        });
        assert_eq!(
            render(&ctx, "@{trigger.record.Count}", false).unwrap(),
            json!(3)
        );
        assert_eq!(
            render(&ctx, "@{steps.find.value[0].id}", false).unwrap(),
            json!("a1")
        );
        assert_eq!(
            render(
                &ctx,
                "Hi @{trigger.record.FullName/last_name} (@{steps.find.count})",
                false
            )
            .unwrap(),
            json!("Hi O'Neil (1)")
        );
        assert_eq!(
            render(&ctx, "Name eq '@{trigger.record.FullName/last_name}'", true).unwrap(),
            json!("Name eq 'O''Neil'")
        );
        assert_eq!(render(&ctx, "@{steps.nope.x}", false).unwrap(), Json::Null);
        // Outside quotes a value is one literal, never more filter.
        let ctx = json!({"r": {"n": 5, "t": "0 or Name ne null", "d": "2026-01-02",
                               "g": "0192f000-0000-7000-8000-000000000001", "q": "it's"}});
        let f = |s: &str| render(&ctx, s, true).unwrap();
        assert_eq!(f("Count gt @{r.n} "), json!("Count gt 5 "));
        assert_eq!(
            f("Count gt @{r.t} "),
            json!("Count gt '0 or Name ne null' ")
        );
        assert_eq!(f("Due lt @{r.d} "), json!("Due lt 2026-01-02 "));
        assert_eq!(
            f("Account eq @{r.g} "),
            json!("Account eq 0192f000-0000-7000-8000-000000000001 ")
        );
        assert_eq!(f("Name eq @{r.q} "), json!("Name eq 'it''s' "));
        assert_eq!(f("Name eq @{r.none} "), json!("Name eq null "));
        assert_eq!(
            f("Name eq '@{r.q}' and X eq @{r.t} "),
            json!("Name eq 'it''s' and X eq '0 or Name ne null' ")
        );
        assert!(render(&ctx, "@{x", false).is_err());
    }
}
