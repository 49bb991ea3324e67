//! Checks a catalog by the model's own rules: its entities are written back as
//! definitions and applied to an empty catalog of its version through
//! `uplift_model::input::apply`, the same validation every `uplift env apply` and API
//! call goes through. Reusing it (rather than restating the rules here) means a target
//! catalog that passes is one the platform itself would have accepted, and the result
//! must equal the catalog field for field, so nothing the definitions cannot express
//! slips through.

use std::collections::BTreeMap;

use uplift_model::input::{EntityDef, FieldDef, OptionDef};
use uplift_model::{Catalog, Entity, Field, FieldType};

/// Whether `catalog` is one its version's rules accept; the message names the entity and
/// field that break one.
pub fn validate(catalog: &Catalog) -> Result<(), String> {
    let mut defs: BTreeMap<String, EntityDef> = BTreeMap::new();
    for e in &catalog.entities {
        if defs.insert(e.name.clone(), definition(e)).is_some() {
            return Err(format!("entity '{}' is defined twice", e.name));
        }
    }
    let (rebuilt, _) = uplift_model::input::apply(&Catalog::empty(catalog.version), &defs)
        .map_err(|e| e.to_string())?;
    for e in &catalog.entities {
        let r = rebuilt
            .entity(&e.name)
            .ok_or_else(|| format!("entity '{}' was not rebuilt", e.name))?;
        let same = r.set_name == e.set_name
            && r.business_key == e.business_key
            && r.display_name == e.display_name
            && r.fields.len() == e.fields.len();
        if !same {
            return Err(format!(
                "entity '{}' does not survive validation unchanged",
                e.name
            ));
        }
        for (a, b) in e.fields.iter().zip(&r.fields) {
            let same = a.name == b.name
                && a.ty == b.ty
                && a.required == b.required
                && a.display_name == b.display_name;
            if !same {
                return Err(format!(
                    "entity '{}', field '{}' does not survive validation unchanged ({:?} became {:?})",
                    e.name, a.name, a.ty, b.ty
                ));
            }
        }
    }
    Ok(())
}

/// An entity as the definition a user would write for it.
pub fn definition(e: &Entity) -> EntityDef {
    EntityDef {
        display_name: e.display_name.clone(),
        business_key: e.business_key.clone(),
        set_name: Some(e.set_name.clone()),
        fields: e.fields.iter().map(field_definition).collect(),
    }
}

fn field_definition(f: &Field) -> FieldDef {
    use FieldType as T;
    let max_length = match &f.ty {
        T::Text { max_length }
        | T::Email { max_length }
        | T::Phone { max_length }
        | T::WebsiteUrl { max_length }
        | T::MultilineText { max_length }
        | T::SingleLineText { max_length, .. }
        | T::MultipleLinesOfText { max_length } => Some(*max_length),
        _ => None,
    };
    let options = match &f.ty {
        T::Picklist { options } => Some(options.iter().cloned().map(OptionDef::Label).collect()),
        T::OptionSet { options } => Some(
            options
                .iter()
                .map(|o| OptionDef::Value {
                    value: o.value,
                    label: o.label.clone(),
                })
                .collect(),
        ),
        _ => None,
    };
    FieldDef {
        name: f.name.clone(),
        ty: f.ty.type_name().to_string(),
        required: f.required,
        max_length,
        options,
        target: f.ty.lookup_target().map(str::to_string),
        format: match &f.ty {
            T::SingleLineText { format, .. } => Some(format.as_str().to_string()),
            _ => None,
        },
        date_only: match &f.ty {
            T::ModernDateTime { date_only } => Some(*date_only),
            _ => None,
        },
        display_name: f.display_name.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_classic_standard_catalog_is_valid() {
        assert_eq!(validate(&uplift_model::standard::classic_catalog()), Ok(()));
    }

    #[test]
    fn a_broken_catalog_is_refused_with_the_entity_named() {
        let mut c = uplift_model::standard::classic_catalog();
        if let Some(e) = c.entities.first_mut() {
            e.business_key = Some("Employees".into());
        }
        let err = validate(&c).unwrap_err();
        assert!(err.contains("entity 'Account', field 'Employees'"), "{err}");
    }
}
