//! The classic version's standard entities, installed in every new classic environment.

use crate::Labels;
use crate::catalog::Catalog;
use crate::entity::{Entity, Field, Origin};
use crate::types::{FieldType, SchemaVersion};

fn labels(en: &str) -> Labels {
    Labels::from([("en".to_string(), en.to_string())])
}

fn f(name: &str, en: &str, ty: FieldType) -> Field {
    Field {
        name: name.into(),
        display_name: labels(en),
        ty,
        required: false,
        origin: Origin::Standard,
    }
}

fn req(mut field: Field) -> Field {
    field.required = true;
    field
}

fn text(n: u32) -> FieldType {
    FieldType::Text { max_length: n }
}

fn lookup(target: &str) -> FieldType {
    FieldType::Lookup {
        target: target.into(),
    }
}

fn pick(options: &[&str]) -> FieldType {
    FieldType::Picklist {
        options: options.iter().map(|s| s.to_string()).collect(),
    }
}

fn entity(name: &str, en: &str, key: Option<&str>, fields: Vec<Field>) -> Entity {
    Entity {
        name: name.into(),
        display_name: labels(en),
        set_name: Entity::default_set_name(name),
        business_key: key.map(str::to_string),
        origin: Origin::Standard,
        fields,
    }
}

/// The standard entities of a new classic environment. Together they use every classic
/// field type, and include the ones the upgrade renames (PositionWorkerAssignment) and
/// deprecates (SalesOrderTax), so a fresh environment already exercises the upgrade.
pub fn classic_entities() -> Vec<Entity> {
    use FieldType as T;
    vec![
        entity(
            "Account",
            "Account",
            Some("Name"),
            vec![
                req(f("Name", "Account name", text(160))),
                f("AccountNumber", "Account number", text(20)),
                f("Email", "E-mail", T::Email { max_length: 100 }),
                f("Phone", "Main phone", T::Phone { max_length: 50 }),
                f("Website", "Website", T::WebsiteUrl { max_length: 200 }),
                f("Address", "Address", T::Address),
                f(
                    "Industry",
                    "Industry",
                    pick(&[
                        "Manufacturing",
                        "Retail",
                        "Services",
                        "Technology",
                        "Finance",
                    ]),
                ),
                f("Revenue", "Annual revenue", T::Currency),
                f("Employees", "Number of employees", T::Number),
                f(
                    "Description",
                    "Description",
                    T::MultilineText { max_length: 2000 },
                ),
                f("Logo", "Logo", T::Image),
                f("Owner", "Owner", T::UserOrGroup),
                f("ExternalId", "External id", T::Guid),
            ],
        ),
        entity(
            "Contact",
            "Contact",
            None,
            vec![
                req(f("FullName", "Full name", T::PersonName)),
                f("Email", "E-mail", T::Email { max_length: 100 }),
                f("Phone", "Mobile phone", T::Phone { max_length: 50 }),
                f("Address", "Address", T::Address),
                f("Birthday", "Birthday", T::Date),
                f("Account", "Company", lookup("Account")),
                f("JobTitle", "Job title", text(100)),
                f("Notes", "Notes", T::LargeText),
                f("DoNotEmail", "Do not e-mail", T::Boolean),
            ],
        ),
        entity(
            "Product",
            "Product",
            Some("ProductNumber"),
            vec![
                req(f("ProductNumber", "Product number", text(40))),
                req(f("Name", "Name", text(100))),
                f("Price", "List price", T::Currency),
                f("QuantityOnHand", "Quantity on hand", T::Quantity),
                f(
                    "Description",
                    "Description",
                    T::MultilineText { max_length: 2000 },
                ),
                f("Picture", "Picture", T::Image),
                f("Active", "Active", T::Boolean),
            ],
        ),
        entity(
            "SalesOrder",
            "Sales order",
            None,
            vec![
                f("OrderNumber", "Order number", T::AutoNumber),
                req(f("Customer", "Customer", lookup("Account"))),
                f("Contact", "Contact", lookup("Contact")),
                f("OrderDate", "Order date", T::Date),
                f("RequestedDelivery", "Requested delivery", T::DateTime),
                f(
                    "Status",
                    "Status",
                    pick(&["Draft", "Submitted", "Fulfilled", "Cancelled"]),
                ),
                f("Total", "Total amount", T::Currency),
                f("Notes", "Notes", T::MultilineText { max_length: 2000 }),
            ],
        ),
        entity(
            "SalesOrderLine",
            "Sales order line",
            None,
            vec![
                req(f("SalesOrder", "Sales order", lookup("SalesOrder"))),
                f("LineNumber", "Line number", T::Integer),
                f("Product", "Product", lookup("Product")),
                f("Quantity", "Quantity", T::Quantity),
                f("UnitPrice", "Unit price", T::Currency),
            ],
        ),
        entity(
            "SalesOrderTax",
            "Sales order tax",
            None,
            vec![
                req(f("SalesOrder", "Sales order", lookup("SalesOrder"))),
                f("TaxCode", "Tax code", text(20)),
                f("Amount", "Amount", T::Currency),
            ],
        ),
        entity(
            "Worker",
            "Worker",
            Some("PersonnelNumber"),
            vec![
                req(f("PersonnelNumber", "Personnel number", text(20))),
                req(f("Name", "Name", T::PersonName)),
                f("Email", "E-mail", T::Email { max_length: 100 }),
                f("Phone", "Phone", T::Phone { max_length: 50 }),
                f("HireDate", "Hire date", T::Date),
            ],
        ),
        entity(
            "Position",
            "Position",
            Some("PositionId"),
            vec![
                req(f("PositionId", "Position id", text(20))),
                f("Title", "Title", text(100)),
                f("Department", "Department", text(100)),
                f("FullTimeEquivalent", "Full-time equivalent", T::Quantity),
            ],
        ),
        entity(
            "PositionWorkerAssignment",
            "Position worker assignment",
            None,
            vec![
                req(f("Position", "Position", lookup("Position"))),
                req(f("Worker", "Worker", lookup("Worker"))),
                f("ValidFrom", "Valid from", T::DateTime),
                f("ValidTo", "Valid to", T::DateTime),
                f("IsPrimary", "Primary position", T::Boolean),
            ],
        ),
    ]
}

/// The catalog a new environment of `version` starts with.
pub fn initial_catalog(version: SchemaVersion) -> Catalog {
    match version {
        SchemaVersion::Classic => classic_catalog(),
        SchemaVersion::Modern => Catalog::empty(SchemaVersion::Modern),
    }
}

pub fn classic_catalog() -> Catalog {
    Catalog {
        version: SchemaVersion::Classic,
        entities: classic_entities(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn standard_entities_use_every_classic_type() {
        let used: HashSet<&str> = classic_entities()
            .iter()
            .flat_map(|e| e.fields.iter().map(|f| f.ty.type_name()))
            .collect();
        for t in SchemaVersion::Classic.type_names() {
            assert!(used.contains(t), "no standard field of type {t}");
        }
    }
}
