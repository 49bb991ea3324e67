//! The demo's apps and flows: owned by the demo makers (with editors), covering every
//! trigger kind and most step kinds, and referring on purpose to what
//! `classic-to-modern` renames (PositionWorkerAssignment), flattens (FullName,
//! Address), retypes (Quantity, QuantityOnHand), drops (Owner, ModifiedDateTime) and
//! deprecates (SalesOrderTax), so that an upgrade's step 2 has real findings.

use anyhow::{Result, anyhow};
use serde_json::{Value, json};
use uplift_model::Catalog;
use uplift_model::app::AppDef;
use uplift_model::flow::FlowDef;
use uplift_store::Store;

const ALICE: &str = "alice.maker@contoso.com";
const BOB: &str = "bob.maker@contoso.com";
const CAROL: &str = "carol.maker@contoso.com";

fn flows() -> Vec<(&'static str, Value)> {
    vec![
        (
            "welcome",
            json!({
                "name": "Welcome new contacts", "owner": BOB, "editors": [ALICE],
                "trigger": {"kind": "record_created", "entity": "Contact", "filter": "Email ne null and DoNotEmail eq false"},
                "steps": [
                    {"kind": "list_records", "name": "company", "entity": "Account",
                     "filter": "Name eq '@{trigger.record.FullName/last_name}'", "top": 1},
                    {"kind": "condition", "name": "known_company", "expression": "steps/company/count gt 0",
                     "then": [{"kind": "update_record", "name": "link", "entity": "Contact", "id": "@{trigger.record.id}",
                               "values": {"Account": "@{steps.company.value[0].id}"}}]},
                    {"kind": "send_email", "name": "greet", "to": ["@{trigger.record.Email}"],
                     "subject": "Welcome, @{trigger.record.FullName/first_name}",
                     "body": "Hello @{trigger.record.FullName/first_name} @{trigger.record.FullName/last_name}, welcome to Contoso."}
                ]
            }),
        ),
        (
            "big_order",
            json!({
                "name": "Approve large orders", "owner": BOB, "editors": [CAROL],
                "trigger": {"kind": "record_updated", "entity": "SalesOrder", "filter": "Notes eq 'submit'"},
                "steps": [
                    {"kind": "start_approval", "name": "ask", "title": "Approve order @{trigger.record.OrderNumber}?",
                     "approvers": [CAROL], "details": "Last changed @{trigger.record.ModifiedDateTime}"},
                    {"kind": "condition", "name": "approved", "expression": "steps/ask/outcome eq 'approved'",
                     "then": [{"kind": "update_record", "name": "mark", "entity": "SalesOrder", "id": "@{trigger.record.id}",
                               "values": {"Notes": "approved by @{steps.ask.responder}"}}],
                     "else": [{"kind": "send_email", "name": "tell", "to": [BOB],
                               "subject": "Order @{trigger.record.OrderNumber} was rejected", "body": "@{steps.ask.comment}"}]}
                ]
            }),
        ),
        (
            "archive",
            json!({
                "name": "Archive deleted accounts", "owner": ALICE, "editors": [CAROL],
                "trigger": {"kind": "record_deleted", "entity": "Account"},
                "steps": [
                    {"kind": "set_variable", "name": "ref", "variable": "reference", "value": "ACC-@{trigger.record.AccountNumber}"},
                    {"kind": "create_record", "name": "keep", "entity": "ArchiveItem",
                     "values": {"Reference": "@{variables.reference}",
                                "Description": "@{trigger.record.Name}, @{trigger.record.Address/city}, owned by @{trigger.record.Owner}"}}
                ]
            }),
        ),
        (
            "stock",
            json!({
                "name": "Nightly low-stock report", "owner": BOB, "editors": [ALICE],
                "trigger": {"kind": "schedule", "cron": "0 2 * * *"},
                "steps": [
                    {"kind": "list_records", "name": "low", "entity": "Product", "filter": "QuantityOnHand lt 10", "top": 50},
                    {"kind": "send_email", "name": "report", "to": [BOB],
                     "subject": "@{steps.low.count} products are low on stock",
                     "body": "First: @{steps.low.value[0].Name} (@{steps.low.value[0].QuantityOnHand} left)"}
                ]
            }),
        ),
        (
            "partner",
            json!({
                "name": "Push orders to the partner", "owner": ALICE, "editors": [CAROL],
                "state": "off",
                "trigger": {"kind": "manual"},
                "steps": [
                    {"kind": "list_records", "name": "lines", "entity": "SalesOrderLine", "filter": "Quantity gt 100", "top": 10},
                    {"kind": "http_request", "name": "push", "method": "POST", "url": "https://partner.example.com/orders",
                     "headers": {"X-Sent-By": "@{trigger.user}"}, "body": {"lines": "@{steps.lines.value}"}}
                ]
            }),
        ),
        (
            "confirm",
            json!({
                "name": "Confirm an order", "owner": ALICE, "editors": [BOB],
                "trigger": {"kind": "app_command", "entity": "SalesOrder"},
                "steps": [
                    {"kind": "list_records", "name": "lines", "entity": "SalesOrderLine",
                     "filter": "SalesOrder eq '@{trigger.record.id}'"},
                    {"kind": "send_email", "name": "confirm", "to": [ALICE],
                     "subject": "Order @{trigger.record.OrderNumber} confirmed",
                     "body": "@{steps.lines.count} lines, confirmed by @{trigger.user} on @{trigger.record.RequestedDelivery}"}
                ]
            }),
        ),
        (
            "review",
            json!({
                "name": "Request a position review", "owner": CAROL, "editors": [BOB],
                "trigger": {"kind": "app_command", "entity": "PositionWorkerAssignment"},
                "steps": [
                    {"kind": "get_record", "name": "worker", "entity": "Worker", "id": "@{trigger.record.Worker}"},
                    {"kind": "start_approval", "name": "review", "title": "Review @{steps.worker.record.Name}'s position?",
                     "approvers": [CAROL]},
                    {"kind": "delete_record", "name": "end", "entity": "PositionWorkerAssignment", "id": "@{trigger.record.id}"}
                ]
            }),
        ),
    ]
}

fn apps(flow_id: &dyn Fn(&str) -> String) -> Vec<Value> {
    vec![
        json!({
            "name": "Sales Hub", "description": "Accounts, contacts and orders", "owner": ALICE, "editors": [BOB],
            "views": [
                {"name": "Accounts by city", "entity": "Account", "columns": ["Name", "Address/city", "Owner", "Revenue"],
                 "filter": "Address/city ne null", "orderby": "Name"},
                {"name": "Recent orders", "entity": "SalesOrder", "columns": ["OrderNumber", "Customer", "Total", "ModifiedDateTime"],
                 "orderby": "OrderDate desc"},
                {"name": "Contacts", "entity": "Contact", "columns": ["FullName/last_name", "FullName/first_name", "Email"],
                 "orderby": "Email"}
            ],
            "forms": [{"name": "Contact", "entity": "Contact", "fields": ["FullName", "Email", "Account", "Address"]}],
            "commands": [{"label": "Confirm", "entity": "SalesOrder", "flow": flow_id("confirm")}]
        }),
        json!({
            "name": "Warehouse", "owner": BOB, "editors": [CAROL],
            "views": [
                {"name": "Low stock", "entity": "Product", "columns": ["Name", "QuantityOnHand"], "filter": "QuantityOnHand lt 10"},
                {"name": "Big order lines", "entity": "SalesOrderLine", "columns": ["SalesOrder", "Product", "Quantity"],
                 "filter": "Quantity gt 100", "orderby": "Quantity desc"}
            ],
            "forms": [{"name": "Order tax", "entity": "SalesOrderTax", "fields": ["SalesOrder", "TaxCode", "Amount"]}]
        }),
        json!({
            "name": "People", "owner": CAROL, "editors": [ALICE],
            "views": [
                {"name": "Assignments", "entity": "PositionWorkerAssignment", "columns": ["Position", "Worker", "ValidFrom", "IsPrimary"],
                 "filter": "IsPrimary eq true"}
            ],
            "forms": [{"name": "Worker", "entity": "Worker", "fields": ["Name", "Email", "HireDate"]}],
            "commands": [{"label": "Request review", "entity": "PositionWorkerAssignment", "flow": flow_id("review")}]
        }),
    ]
}

/// Stores the demo's flows and publishes its apps (version 1, and a draft of the first
/// one), each checked against the catalog first.
pub async fn create(store: &Store, env: &str, catalog: &Catalog, database: &str) -> Result<()> {
    let control = store.control();
    let mut ids = std::collections::BTreeMap::new();
    let mut triggers = std::collections::BTreeMap::new();
    for (key, def) in flows() {
        let def: FlowDef = serde_json::from_value(def)?;
        uplift_model::flow::validate(&def, catalog).map_err(|e| anyhow!("demo flow: {e:?}"))?;
        let id = uuid::Uuid::now_v7().to_string();
        control.save_flow(env, &id, &def, database).await?;
        triggers.insert(id.clone(), def.trigger);
        ids.insert(key, id);
    }
    let flow_id = |k: &str| ids.get(k).cloned().unwrap_or_default();
    for (i, def) in apps(&flow_id).into_iter().enumerate() {
        let def: AppDef = serde_json::from_value(def)?;
        uplift_model::app::validate(&def, catalog, &|f| triggers.get(f).cloned())
            .map_err(|e| anyhow!("demo app: {e:?}"))?;
        control.save_app_draft(env, &def, database).await?;
        control.publish_app(env, &def.name, &def.owner).await?;
        if i == 0 {
            // A draft in progress on top of version 1.
            let mut next = def.clone();
            next.description = "Accounts, contacts and orders (with the sales pipeline)".into();
            control.save_app_draft(env, &next, database).await?;
        }
    }
    Ok(())
}
