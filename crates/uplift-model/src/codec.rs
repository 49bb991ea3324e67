//! Record values between their JSON shape (the data API's) and stored column values.
//! Validation of a single value against its field lives here, so every writer (the
//! API, flows, the upgrade) refuses the same things with the same words.

use base64::Engine as _;
use serde_json::{Map, Value as Json};

use crate::decimal::{self, Decimal};
use crate::entity::Field;
use crate::types::{FieldType, TextFormat};
use crate::value::{Value, format_date, format_instant, parse_date, parse_instant};

/// Longest text of one part of an Address or PersonName.
pub const PART_MAX_CHARS: usize = 250;

/// Converts a field's JSON value into its column values (one per part for complex
/// types), or says what is wrong with it, in words that start with the field's name.
pub fn decode(field: &Field, json: &Json) -> Result<Vec<Value>, String> {
    let name = &field.name;
    if json.is_null() {
        let n = field.ty.parts().map_or(1, |p| p.len());
        return Ok(vec![Value::Null; n]);
    }
    let ty_name = field.ty.type_name();
    let wrong =
        |expected: &str| format!("field '{name}' ({ty_name}) expects {expected}, got {json}");
    match &field.ty {
        FieldType::Address | FieldType::PersonName => {
            let parts = field.ty.parts().unwrap_or_default();
            let obj = json
                .as_object()
                .ok_or_else(|| wrong(&format!("an object with {}", parts.join(", "))))?;
            check_keys(name, obj, parts)?;
            parts
                .iter()
                .map(|p| match obj.get(*p) {
                    None | Some(Json::Null) => Ok(Value::Null),
                    Some(Json::String(s)) if s.chars().count() <= PART_MAX_CHARS => {
                        Ok(Value::Text(s.clone()))
                    }
                    Some(Json::String(_)) => Err(format!(
                        "field '{name}/{p}' is longer than {PART_MAX_CHARS} characters"
                    )),
                    Some(other) => Err(format!("field '{name}/{p}' expects a string, got {other}")),
                })
                .collect()
        }
        FieldType::Currency => {
            let obj = json
                .as_object()
                .ok_or_else(|| wrong("an object like {\"code\":\"EUR\",\"value\":12.5}"))?;
            check_keys(name, obj, &["code", "value"])?;
            let code = currency_code(name, "code", obj.get("code"))?;
            let value = number(name, "value", obj.get("value"))?
                .ok_or_else(|| format!("field '{name}/value' is required"))?;
            Ok(vec![Value::Text(code), Value::Decimal(value)])
        }
        FieldType::Money => {
            let obj = json.as_object().ok_or_else(|| {
                wrong("an object like {\"value\":12.5,\"currency\":\"EUR\",\"exchange_rate\":1.08}")
            })?;
            check_keys(name, obj, crate::types::MONEY_PARTS)?;
            let value = number(name, "value", obj.get("value"))?
                .ok_or_else(|| format!("field '{name}/value' is required"))?;
            let currency = currency_code(name, "currency", obj.get("currency"))?;
            let rate =
                number(name, "exchange_rate", obj.get("exchange_rate"))?.unwrap_or(Decimal::ONE);
            if rate <= Decimal::ZERO {
                return Err(format!("field '{name}/exchange_rate' must be positive"));
            }
            let base = match number(name, "base_value", obj.get("base_value"))? {
                Some(base) => base,
                None => value.checked_mul(rate).ok_or_else(|| {
                    format!("field '{name}': value × exchange_rate is too large for a decimal")
                })?,
            };
            Ok(vec![
                Value::Decimal(value),
                Value::Text(currency),
                Value::Decimal(base),
                Value::Decimal(rate),
            ])
        }
        FieldType::Text { .. }
        | FieldType::MultilineText { .. }
        | FieldType::LargeText
        | FieldType::MultipleLinesOfText { .. }
        | FieldType::UserOrGroup => Ok(vec![Value::Text(text(field, json)?)]),
        FieldType::Email { .. } => Ok(vec![Value::Text(formatted(
            field,
            json,
            TextFormat::Email,
        )?)]),
        FieldType::Phone { .. } => Ok(vec![Value::Text(formatted(
            field,
            json,
            TextFormat::Phone,
        )?)]),
        FieldType::WebsiteUrl { .. } => {
            Ok(vec![Value::Text(formatted(field, json, TextFormat::Url)?)])
        }
        FieldType::SingleLineText { format, .. } => {
            Ok(vec![Value::Text(formatted(field, json, *format)?)])
        }
        FieldType::Guid | FieldType::UniqueIdentifier | FieldType::Lookup { .. } => {
            let s = json.as_str().ok_or_else(|| wrong("a GUID string"))?;
            let id = parse_guid(s).ok_or_else(|| format!("field '{name}': '{s}' is not a GUID"))?;
            Ok(vec![Value::Text(id)])
        }
        FieldType::AutoNumber | FieldType::Number | FieldType::WholeNumber => Ok(vec![Value::Int(
            json.as_i64().ok_or_else(|| wrong("a whole number"))?,
        )]),
        FieldType::Integer => {
            let i = json.as_i64().ok_or_else(|| wrong("a whole number"))?;
            i32::try_from(i)
                .map_err(|_| format!("field '{name}': {i} is outside the 32-bit integer range"))?;
            Ok(vec![Value::Int(i)])
        }
        FieldType::Quantity | FieldType::DecimalNumber => {
            let d = match json {
                Json::Number(n) => decimal::from_json(n).ok_or_else(|| too_many_digits(name, n)),
                _ => Err(wrong("a number")),
            }?;
            Ok(vec![Value::Decimal(d)])
        }
        FieldType::Boolean | FieldType::TwoOptions => Ok(vec![Value::Bool(
            json.as_bool().ok_or_else(|| wrong("true or false"))?,
        )]),
        FieldType::Date | FieldType::ModernDateTime { date_only: true } => {
            let s = json
                .as_str()
                .ok_or_else(|| wrong("a date like \"2024-05-31\""))?;
            let d = parse_date(s).ok_or_else(|| {
                format!("field '{name}': '{s}' is not a date (YYYY-MM-DD, years 0001 to 9999)")
            })?;
            Ok(vec![Value::Date(d)])
        }
        FieldType::DateTime | FieldType::ModernDateTime { date_only: false } => {
            let s = json
                .as_str()
                .ok_or_else(|| wrong("an RFC 3339 date-time string"))?;
            let t = parse_instant(s)
                .ok_or_else(|| format!("field '{name}': '{s}' is not an RFC 3339 date-time of the years 0001 to 9999 in UTC"))?;
            Ok(vec![Value::DateTime(t)])
        }
        FieldType::Picklist { options } => {
            let s = json
                .as_str()
                .ok_or_else(|| wrong("one of its option labels"))?;
            let label = options
                .iter()
                .find(|o| o.eq_ignore_ascii_case(s))
                .ok_or_else(|| {
                    format!(
                        "field '{name}': '{s}' is not one of its options ({})",
                        options.join(", ")
                    )
                })?;
            Ok(vec![Value::Text(label.clone())])
        }
        FieldType::OptionSet { options } => {
            let found = match json {
                Json::Number(n) => n
                    .as_i64()
                    .and_then(|v| options.iter().find(|o| i64::from(o.value) == v)),
                Json::String(s) => options.iter().find(|o| o.label.eq_ignore_ascii_case(s)),
                _ => None,
            };
            let o = found.ok_or_else(|| {
                let list: Vec<String> = options
                    .iter()
                    .map(|o| format!("{} ({})", o.value, o.label))
                    .collect();
                format!(
                    "field '{name}': {json} is not one of its options: {}",
                    list.join(", ")
                )
            })?;
            Ok(vec![Value::Int(i64::from(o.value))])
        }
        FieldType::Image => {
            let s = json.as_str().ok_or_else(|| wrong("base64 text"))?;
            let bytes =
                decode_binary(s).map_err(|e| format!("field '{name}': not valid base64 ({e})"))?;
            Ok(vec![Value::Bytes(bytes)])
        }
    }
}

/// Builds a field's JSON value from its column values (as produced by [`decode`]).
pub fn encode(field: &Field, values: &[Value]) -> Json {
    match field.ty.parts() {
        Some(parts) => {
            if values.iter().all(Value::is_null) {
                return Json::Null;
            }
            let mut obj = Map::with_capacity(parts.len());
            for (p, v) in parts.iter().zip(values) {
                obj.insert(p.to_string(), scalar(v));
            }
            Json::Object(obj)
        }
        None => values.first().map_or(Json::Null, scalar),
    }
}

/// The JSON form of one stored value.
pub fn scalar(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Text(s) => Json::String(s.clone()),
        Value::Int(i) => Json::from(*i),
        Value::Decimal(d) => decimal::to_json(*d),
        Value::Bool(b) => Json::Bool(*b),
        Value::Date(d) => Json::String(format_date(*d)),
        Value::DateTime(t) => Json::String(format_instant(*t)),
        Value::Bytes(b) => Json::String(encode_binary(b)),
    }
}

/// Normalises a GUID to the lower-case hyphenated form used for storage and keys.
pub fn parse_guid(s: &str) -> Option<String> {
    uuid::Uuid::parse_str(s)
        .ok()
        .map(|u| u.hyphenated().to_string())
}

fn check_keys(name: &str, obj: &Map<String, Json>, parts: &[&str]) -> Result<(), String> {
    match obj.keys().find(|k| !parts.contains(&k.as_str())) {
        Some(k) => Err(format!(
            "field '{name}' has no part '{k}' (its parts are {})",
            parts.join(", ")
        )),
        None => Ok(()),
    }
}

/// The words for a number a decimal cannot hold exactly.
fn too_many_digits(name: &str, n: &serde_json::Number) -> String {
    format!(
        "field '{name}': {n} does not fit an exact decimal (at most 28 significant digits, magnitude below 7.9e28)"
    )
}

fn number(name: &str, part: &str, v: Option<&Json>) -> Result<Option<Decimal>, String> {
    match v {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Number(n)) => decimal::from_json(n)
            .map(Some)
            .ok_or_else(|| too_many_digits(&format!("{name}/{part}"), n)),
        Some(other) => Err(format!(
            "field '{name}/{part}' expects a number, got {other}"
        )),
    }
}

fn currency_code(name: &str, part: &str, v: Option<&Json>) -> Result<String, String> {
    match v {
        Some(Json::String(s)) if s.len() == 3 && s.chars().all(|c| c.is_ascii_uppercase()) => {
            Ok(s.clone())
        }
        Some(other) => Err(format!(
            "field '{name}/{part}' expects an ISO 4217 code such as \"EUR\", got {other}"
        )),
        None => Err(format!("field '{name}/{part}' is required")),
    }
}

fn text(field: &Field, json: &Json) -> Result<String, String> {
    let name = &field.name;
    let s = json.as_str().ok_or_else(|| {
        format!(
            "field '{name}' ({}) expects a string, got {json}",
            field.ty.type_name()
        )
    })?;
    if let Some(max) = field.ty.max_chars() {
        let n = s.chars().count();
        if n > max as usize {
            return Err(format!(
                "field '{name}' is {n} characters long; its maximum is {max}"
            ));
        }
    }
    Ok(s.to_string())
}

fn formatted(field: &Field, json: &Json, format: TextFormat) -> Result<String, String> {
    let s = text(field, json)?;
    let ok = match format {
        TextFormat::Text => true,
        TextFormat::Email => is_email(&s),
        TextFormat::Phone => is_phone(&s),
        TextFormat::Url => is_url(&s),
    };
    if ok {
        Ok(s)
    } else {
        let what = match format {
            TextFormat::Email => "an e-mail address",
            TextFormat::Phone => "a phone number",
            TextFormat::Url => "an http(s) URL",
            TextFormat::Text => "text",
        };
        Err(format!("field '{}': '{s}' is not {what}", field.name))
    }
}

/// A deliberately plain check: one `@`, something before it, a dotted domain after it,
/// no spaces. Full RFC 5322 parsing would accept addresses no mail server delivers to.
pub fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(char::is_whitespace)
}

/// Digits with the usual punctuation, and enough digits to dial.
pub fn is_phone(s: &str) -> bool {
    let digits = s.chars().filter(char::is_ascii_digit).count();
    (3..=20).contains(&digits)
        && s.chars()
            .all(|c| c.is_ascii_digit() || " +-().x".contains(c))
}

/// An absolute http(s) URL with a host.
pub fn is_url(s: &str) -> bool {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"));
    match rest {
        Some(r) => {
            let host = r.split(['/', '?', '#']).next().unwrap_or("");
            !host.is_empty() && !s.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

/// A full stored row (one value per column of [`crate::layout::entity_columns`]) as the
/// JSON object the data API answers, without annotations: what flows see as a record.
pub fn record_json(
    entity: &crate::Entity,
    version: crate::SchemaVersion,
    row: &[Value],
) -> serde_json::Map<String, Json> {
    let mut m = serde_json::Map::new();
    if let Some(Value::Text(id)) = row.first() {
        m.insert(crate::entity::KEY.into(), Json::String(id.clone()));
    }
    let mut i = 1;
    for f in entity.all_fields(version) {
        let n = crate::layout::field_columns(f).len();
        if i + n > row.len() {
            break;
        }
        m.insert(f.name.clone(), encode(f, &row[i..i + n]));
        i += n;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::Origin;
    use serde_json::json;

    fn field(ty: FieldType) -> Field {
        Field {
            name: "F".into(),
            display_name: Default::default(),
            ty,
            required: false,
            origin: Origin::Custom,
        }
    }

    #[test]
    fn complex_values_round_trip() {
        let cases = [
            (
                FieldType::Address,
                json!({"line1":"1 Rue","line2":null,"city":"Paris","state_or_province":"IDF","postal_code":"75001","country":"FR"}),
            ),
            (
                FieldType::PersonName,
                json!({"first_name":"Ada","middle_name":null,"last_name":"Lovelace"}),
            ),
            (FieldType::Currency, json!({"code":"EUR","value":12.5})),
            (
                FieldType::Money,
                json!({"value":10.0,"currency":"EUR","base_value":10.8,"exchange_rate":1.08}),
            ),
        ];
        for (ty, v) in cases {
            let f = field(ty);
            let cols = decode(&f, &v).unwrap();
            assert_eq!(encode(&f, &cols), v);
        }
    }

    #[test]
    fn bad_values_name_the_field() {
        let cases = [
            (FieldType::Email { max_length: 100 }, json!("not-an-email")),
            (FieldType::Phone { max_length: 50 }, json!("call me")),
            (FieldType::WebsiteUrl { max_length: 200 }, json!("ftp://x")),
            (FieldType::Text { max_length: 3 }, json!("abcd")),
            (FieldType::Integer, json!(1u64 << 40)),
            (
                FieldType::Picklist {
                    options: vec!["A".into()],
                },
                json!("B"),
            ),
            (FieldType::Date, json!("2024-02-30")),
            (FieldType::Currency, json!({"code":"eur","value":1})),
            (FieldType::Address, json!({"town":"x"})),
            (FieldType::Boolean, json!("yes")),
            (FieldType::Guid, json!("123")),
        ];
        for (ty, v) in cases {
            let err = decode(&field(ty.clone()), &v).unwrap_err();
            assert!(err.contains("'F"), "{ty:?} {v}: {err}");
        }
    }

    #[test]
    fn money_base_value_follows_the_rate() {
        let f = field(FieldType::Money);
        let cols = decode(
            &f,
            &json!({"value": 100.0, "currency": "GBP", "exchange_rate": 1.27}),
        )
        .unwrap();
        assert_eq!(cols[2], Value::Decimal(Decimal::new(12700, 2)));
    }
}

/// `Edm.Binary` as OData's JSON format carries it: base64url (RFC 4648 §5), padded.
pub fn encode_binary(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE.encode(bytes)
}

/// Binary from base64url, as OData clients send it, or standard base64, as curl users
/// write it; padded or not.
pub fn decode_binary(s: &str) -> Result<Vec<u8>, base64::DecodeError> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    let config =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let alphabet = if s.contains(['-', '_']) {
        &base64::alphabet::URL_SAFE
    } else {
        &base64::alphabet::STANDARD
    };
    GeneralPurpose::new(alphabet, config).decode(s)
}

#[cfg(test)]
mod binary_tests {
    use super::{decode_binary, encode_binary};

    #[test]
    fn binary_is_served_as_base64url_and_read_in_either_alphabet() {
        let bytes = [0xfb, 0xff, 0x00];
        assert_eq!(encode_binary(&bytes), "-_8A");
        assert_eq!(encode_binary(&[0xfb, 0xff]), "-_8=");
        let check = |input: &str, expect: Option<&[u8]>| {
            assert_eq!(decode_binary(input).ok().as_deref(), expect, "{input}");
        };
        check("-_8A", Some(&bytes));
        check("+/8A", Some(&bytes));
        check("-_8=", Some(&[0xfb, 0xff]));
        check("-_8", Some(&[0xfb, 0xff]));
        check("+/8=", Some(&[0xfb, 0xff]));
        check("+_8=", None);
        check("***", None);
    }
}
