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
/// `quote` escapes them for a `$filter` string literal.
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
        let text = lookup(ctx, path).map(|v| as_text(&v)).unwrap_or_default();
        out.push_str(&if quote {
            text.replace('\'', "''")
        } else {
            text
        });
        rest = &rest[i + end + 1..];
    }
    out.push_str(rest);
    Ok(Json::String(out))
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
        assert!(render(&ctx, "@{x", false).is_err());
    }
}
