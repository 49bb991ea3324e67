//! `$metadata`: the catalog as a CSDL 4.0 document, so OData clients can discover
//! entity sets, keys, types, nullability, navigation and computed properties.

use std::fmt::Write as _;

use uplift_model::layout::scalar_type;
use uplift_model::{Catalog, Entity, Field, FieldType, SchemaVersion};

/// Namespace of entity types.
pub const NAMESPACE: &str = "Uplift";
/// Namespace of the complex value types, kept apart so a user entity named, say,
/// `Address` cannot collide with the Address value type.
pub const VALUES_NAMESPACE: &str = "Uplift.Values";

/// The suffix that names a lookup's navigation property (the lookup's own name holds
/// the target id, as the data API's JSON shape promises).
pub use uplift_service::data::NAV_SUFFIX;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The Edm type of a simple field or of a complex value type.
pub fn edm_type(ty: &FieldType) -> String {
    if let Some(name) = complex_name(ty) {
        return format!("{VALUES_NAMESPACE}.{name}");
    }
    edm_scalar(ty, None).to_string()
}

fn edm_scalar(ty: &FieldType, part: Option<&str>) -> &'static str {
    use uplift_model::filter::ScalarType as S;
    match (ty, scalar_type(ty, part)) {
        (FieldType::Integer, _) | (FieldType::OptionSet { .. }, _) => "Edm.Int32",
        (_, S::String) => "Edm.String",
        (_, S::Int) => "Edm.Int64",
        (_, S::Decimal) => "Edm.Decimal",
        (_, S::Bool) => "Edm.Boolean",
        (_, S::Date) => "Edm.Date",
        (_, S::DateTimeOffset) => "Edm.DateTimeOffset",
        (_, S::Guid) => "Edm.Guid",
        (_, S::Binary) => "Edm.Binary",
    }
}

fn complex_name(ty: &FieldType) -> Option<&'static str> {
    match ty {
        FieldType::Address => Some("Address"),
        FieldType::PersonName => Some("PersonName"),
        FieldType::Currency => Some("Currency"),
        FieldType::Money => Some("Money"),
        _ => None,
    }
}

/// The facets a client needs to read values exactly: instants are served with
/// milliseconds, decimals with as many digits as they have.
fn facets(scalar: uplift_model::filter::ScalarType) -> &'static str {
    use uplift_model::filter::ScalarType as S;
    match scalar {
        S::DateTimeOffset => r#" Precision="3""#,
        S::Decimal => r#" Scale="variable""#,
        _ => "",
    }
}

fn property(out: &mut String, f: &Field) {
    let _ = write!(
        out,
        r#"<Property Name="{}" Type="{}""#,
        esc(&f.name),
        edm_type(&f.ty)
    );
    if f.required {
        out.push_str(r#" Nullable="false""#);
    }
    if let Some(n) = f.ty.max_chars() {
        let _ = write!(out, r#" MaxLength="{n}""#);
    }
    if f.ty.parts().is_none() {
        out.push_str(facets(scalar_type(&f.ty, None)));
    }
    if f.is_computed() {
        out.push_str(r#"><Annotation Term="Org.OData.Core.V1.Computed" Bool="true"/></Property>"#);
    } else {
        out.push_str("/>");
    }
}

fn entity_type(out: &mut String, e: &Entity, version: SchemaVersion) {
    let _ = write!(
        out,
        r#"<EntityType Name="{}"><Key><PropertyRef Name="id"/></Key>"#,
        esc(&e.name)
    );
    out.push_str(r#"<Property Name="id" Type="Edm.Guid" Nullable="false"/>"#);
    for f in e.all_fields(version) {
        property(out, f);
    }
    for f in &e.fields {
        if let FieldType::Lookup { target } = &f.ty {
            let nullable = if f.required {
                r#" Nullable="false""#
            } else {
                ""
            };
            let _ = write!(
                out,
                r#"<NavigationProperty Name="{}{NAV_SUFFIX}" Type="{NAMESPACE}.{}"{nullable}><ReferentialConstraint Property="{}" ReferencedProperty="id"/></NavigationProperty>"#,
                esc(&f.name),
                esc(target),
                esc(&f.name)
            );
        }
    }
    out.push_str("</EntityType>");
}

/// The CSDL document for a catalog.
pub fn csdl(catalog: &Catalog) -> String {
    let mut out = String::with_capacity(16 * 1024);
    out.push_str(r#"<?xml version="1.0" encoding="utf-8"?><edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">"#);
    out.push_str(r#"<edmx:Reference Uri="https://oasis-tcs.github.io/odata-vocabularies/vocabularies/Org.OData.Core.V1.xml"><edmx:Include Namespace="Org.OData.Core.V1" Alias="Core"/></edmx:Reference>"#);
    out.push_str("<edmx:DataServices>");
    let _ = write!(
        out,
        r#"<Schema Namespace="{VALUES_NAMESPACE}" xmlns="http://docs.oasis-open.org/odata/ns/edm">"#
    );
    for ty in [
        FieldType::Address,
        FieldType::PersonName,
        FieldType::Currency,
        FieldType::Money,
    ] {
        let _ = write!(
            out,
            r#"<ComplexType Name="{}">"#,
            complex_name(&ty).unwrap_or_default()
        );
        for p in ty.parts().unwrap_or_default() {
            let _ = write!(
                out,
                r#"<Property Name="{p}" Type="{}"{}/>"#,
                edm_scalar(&ty, Some(p)),
                facets(scalar_type(&ty, Some(p)))
            );
        }
        out.push_str("</ComplexType>");
    }
    out.push_str("</Schema>");
    let _ = write!(
        out,
        r#"<Schema Namespace="{NAMESPACE}" xmlns="http://docs.oasis-open.org/odata/ns/edm">"#
    );
    for e in &catalog.entities {
        entity_type(&mut out, e, catalog.version);
    }
    out.push_str(r#"<EntityContainer Name="Container">"#);
    for e in &catalog.entities {
        let _ = write!(
            out,
            r#"<EntitySet Name="{}" EntityType="{NAMESPACE}.{}">"#,
            esc(&e.set_name),
            esc(&e.name)
        );
        for f in &e.fields {
            if let FieldType::Lookup { target } = &f.ty
                && let Some(t) = catalog.entity(target)
            {
                let _ = write!(
                    out,
                    r#"<NavigationPropertyBinding Path="{}{NAV_SUFFIX}" Target="{}"/>"#,
                    esc(&f.name),
                    esc(&t.set_name)
                );
            }
        }
        out.push_str("</EntitySet>");
    }
    out.push_str("</EntityContainer></Schema></edmx:DataServices></edmx:Edmx>");
    out
}
