//! Demo and test set-up: seed the CRM the way a tenant looks before its first import,
//! connect to a simulator, and save the mappings an MSP typically chooses, from the
//! options the system offers live.

use serde_json::{Map, Value};

use tandem_domain::external::OptionList;
use tandem_domain::mapping::{EXPORT_KEY, section_lists};
use tandem_domain::records::{CompanyFields, CompanyRecord, ContactFields, ContactRecord, Meta, Record, User};
use tandem_domain::table::RecordWrite;
use tandem_domain::usecases::{Services, connections, mappings};
use tandem_domain::vocab::{CompanyType, ContactStatus, Role, UserState};
use tandem_domain::{Stage, System, TenantId};
use tandem_sim::CrmSeed;

use crate::sims::Typical;

/// Writes the CRM records a tenant had before its first import.
pub async fn seed_crm(svc: &Services, tenant: &TenantId, seed: &CrmSeed) -> anyhow::Result<usize> {
    let now = svc.clock.now();
    let mut records = Vec::new();
    for u in &seed.users {
        records.push(Record::User(User {
            meta: Meta::new(now),
            email: u.email.clone(),
            name: u.name.clone(),
            role: Role::parse(&u.role)?,
            state: UserState::Active,
        }));
    }
    for c in &seed.companies {
        records.push(Record::Company(CompanyRecord {
            meta: Meta::new(now),
            fields: CompanyFields {
                name: c.name.clone(),
                phone: c.phone.clone(),
                website: c.website.clone(),
                company_type: CompanyType::parse("prospect")?,
                ..CompanyFields::default()
            },
        }));
    }
    for c in &seed.contacts {
        records.push(Record::Contact(ContactRecord {
            meta: Meta::new(now),
            fields: ContactFields {
                first_name: c.first_name.clone(),
                last_name: c.last_name.clone(),
                email: c.email.clone(),
                phone: c.phone.clone(),
                status: ContactStatus::none(),
                ..ContactFields::default()
            },
        }));
    }
    let n = records.len();
    for record in records {
        svc.store.write(tenant, RecordWrite { record, previous: None, ledger: None, log: None }).await?;
    }
    Ok(n)
}

/// Saves every mapping section in the system's order, choosing for each live option
/// what an MSP typically would (some left unmapped, so skipping is exercised).
pub async fn map_typically(svc: &Services, tenant: &TenantId, system: System, typical: &Typical) -> anyhow::Result<()> {
    for stage in system.stages() {
        let mut body = Map::new();
        let mut exports = Map::new();
        for list in section_lists(*stage) {
            let choices = connections::options(svc, tenant, system, *list).await?;
            let mut entries = Map::new();
            let mut export = Map::new();
            for choice in choices {
                let value = typical
                    .get(list)
                    .and_then(|t| t.iter().find(|(name, _)| *name == choice.name))
                    .and_then(|(_, v)| v.clone());
                // Where several options map to one CRM value, export writes the first
                // (what a user answers when the mapping screen asks).
                if let Some(v) = &value
                    && choice.id != tandem_domain::external::NO_TYPE
                {
                    export.entry(v.clone()).or_insert_with(|| Value::String(choice.id.clone()));
                }
                entries.insert(choice.id, value.map_or(Value::Null, Value::String));
            }
            body.insert(list.as_str().to_string(), Value::Object(entries));
            exports.insert(list.as_str().to_string(), Value::Object(export));
        }
        body.insert(EXPORT_KEY.to_string(), Value::Object(exports));
        mappings::save_mapping(svc, tenant, system, *stage, &Value::Object(body)).await?;
    }
    Ok(())
}

/// The simulator's credentials as the API body that saves them.
pub fn credentials_body(c: &tandem_sim::connectwise::Credentials) -> Value {
    serde_json::json!({
        "site": c.site,
        "company_id": c.company_id,
        "public_key": c.public_key,
        "private_key": c.private_key,
        "client_id": c.client_id,
    })
}

/// A CRM value of `list` that goes out as exactly one option of the system, under the
/// connection's `stage` mapping (what a record the demos create can carry there).
pub async fn exportable(
    svc: &Services,
    tenant: &TenantId,
    system: System,
    stage: Stage,
    list: OptionList,
) -> Option<String> {
    let conn = connections::connection(svc, tenant, system).await.ok()?;
    let values: Vec<String> = conn.mappings.get(&stage)?.get(&list)?.values().cloned().collect();
    values.into_iter().find(|v| matches!(conn.export_option(stage, list, v), Ok(Some(_))))
}
