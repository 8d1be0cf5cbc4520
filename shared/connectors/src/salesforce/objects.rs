//! Field-level access for Salesforce's field-level mode (salesforce-api.md 2, 3.1, 7): rows
//! of any object read by SOQL with the fields a field map names (`Id` and
//! `LastModifiedDate` always), and creates and partial updates of any object with a body of
//! Salesforce field names. Field names come from a map checked against the org's describe;
//! they are checked again here to be names, so no value of a map can change a query.

use serde_json::Value;
use tandem_domain::System;
use tandem_domain::ports::{ConnectorError, ErrorKind, ObjectQuery, ObjectRow, Written};

use super::models::CreateResult;
use super::pagination::{UPDATED_FIELD, soql_datetime, soql_string};
use super::{SalesforceConnector, is_salesforce_id};

/// The most rows one query returns when the caller names no limit (SOQL's `LIMIT`).
pub const MAX_ROWS: usize = 2_000;

fn invalid(message: String) -> ConnectorError {
    ConnectorError::new(System::Salesforce, ErrorKind::Invalid, message)
}

/// A Salesforce API name: a letter, then letters, digits and underscores (`Visit_Result__c`).
fn name(s: &str) -> Result<&str, ConnectorError> {
    let ok = s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    ok.then_some(s).ok_or_else(|| invalid(format!("{s:?} is not a Salesforce object or field name")))
}

/// The SOQL of `q`: `SELECT Id, LastModifiedDate, fields FROM object [WHERE ...] ORDER BY
/// Id LIMIT n`, every value a quoted literal.
pub fn soql(q: &ObjectQuery) -> Result<String, ConnectorError> {
    let object = name(&q.object)?;
    let mut fields = vec!["Id", UPDATED_FIELD];
    for f in &q.fields {
        let f = name(f)?;
        if !fields.iter().any(|g| g.eq_ignore_ascii_case(f)) {
            fields.push(f);
        }
    }
    let mut conditions = Vec::new();
    for (field, value) in &q.equal {
        conditions.push(format!("{} = {}", name(field)?, soql_string(value)));
    }
    if !q.ids.is_empty() {
        let ids: Vec<String> = q.ids.iter().map(|id| soql_string(id)).collect();
        conditions.push(format!("Id IN ({})", ids.join(", ")));
    }
    if let Some(since) = q.changed_since {
        conditions.push(format!("{UPDATED_FIELD} >= {}", soql_datetime(since)));
    }
    if let Some(after) = &q.after {
        conditions.push(format!("Id > {}", soql_string(after)));
    }
    let filter = if conditions.is_empty() { String::new() } else { format!(" WHERE {}", conditions.join(" AND ")) };
    let limit = if q.limit == 0 { MAX_ROWS } else { q.limit.min(MAX_ROWS) };
    Ok(format!("SELECT {} FROM {object}{filter} ORDER BY Id LIMIT {limit}", fields.join(", ")))
}

/// The rows `q` selects, without their `attributes`.
pub async fn query(c: &SalesforceConnector, q: &ObjectQuery) -> Result<Vec<ObjectRow>, ConnectorError> {
    let rows = c.query_all(&soql(q)?).await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| match row {
            Value::Object(mut m) => {
                m.remove("attributes");
                Some(m)
            }
            _ => None,
        })
        .collect())
}

/// `POST /sobjects/{object}` with `fields`; its new id. Sent once: an answer that names no
/// id is an unknown outcome, not repeated.
pub async fn create(c: &SalesforceConnector, object: &str, fields: &ObjectRow) -> Result<Written, ConnectorError> {
    let path = SalesforceConnector::data_path(&format!("sobjects/{}", name(object)?));
    let answer = c.client().post(&path, &Value::Object(fields.clone()), &c.settings.retry).await?;
    let result: CreateResult = serde_json::from_slice(&answer).unwrap_or_default();
    match result.id.filter(|id| is_salesforce_id(id)) {
        Some(id) => Ok(Written { id, version: None }),
        None => {
            Err(super::write::unknown_outcome(&format!("accepted the create of a {object} but its answer names no id")))
        }
    }
}

/// `PATCH /sobjects/{object}/{id}` with `fields` (a partial body).
pub async fn update(
    c: &SalesforceConnector,
    object: &str,
    id: &str,
    fields: &ObjectRow,
) -> Result<Written, ConnectorError> {
    if !is_salesforce_id(id) {
        return Err(invalid(format!("{id:?} cannot be a Salesforce {object} id")));
    }
    let path = SalesforceConnector::data_path(&format!("sobjects/{}/{id}", name(object)?));
    c.client().patch(&path, &Value::Object(fields.clone()), &c.settings.retry).await?;
    Ok(Written { id: id.to_string(), version: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_quotes_every_value_and_names_only_fields() {
        let q = ObjectQuery {
            object: "Lead".into(),
            fields: vec!["Email".into(), "Visit_Result__c".into(), "Id".into()],
            equal: vec![("Email".into(), "o'brien@example.com".into())],
            ids: vec!["00Q000000000002AAA".into(), "00Q000000000003AAA".into()],
            after: Some("00Q000000000001AAA".into()),
            limit: 10,
            ..ObjectQuery::default()
        };
        assert_eq!(
            soql(&q).unwrap(),
            "SELECT Id, LastModifiedDate, Email, Visit_Result__c FROM Lead WHERE Email = 'o\\'brien@example.com' \
             AND Id IN ('00Q000000000002AAA', '00Q000000000003AAA') AND Id > '00Q000000000001AAA' ORDER BY Id LIMIT 10"
        );
    }

    #[test]
    fn a_field_that_is_not_a_name_is_refused_before_any_request() {
        let q =
            ObjectQuery { object: "Lead".into(), fields: vec!["Email FROM Account --".into()], ..Default::default() };
        assert!(soql(&q).unwrap_err().message.contains("not a Salesforce object or field name"));
        let q = ObjectQuery { object: "Lead;".into(), ..Default::default() };
        assert!(soql(&q).is_err());
    }
}
