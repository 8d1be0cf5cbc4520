//! ConnectWise wire types -> the domain's external records, and the tolerant page parse:
//! one record that does not fit becomes [`ExternalRecord::Unreadable`], never a failed page.

use std::collections::HashSet;

use serde::de::DeserializeOwned;
use serde_json::Value;
use tandem_domain::external::{
    Choice, ExtActivity, ExtCompany, ExtContact, ExtLineItem, ExtOpportunity, ExtSolution, ExtUser, ExternalRecord,
    Unreadable,
};
use tandem_domain::ledger::ExtVersion;
use tandem_domain::ports::{ConnectorError, ErrorKind};
use tandem_domain::{Stage, System, Timestamp};

use super::models::{
    Activity, CatalogItem, CommunicationItem, Company, Contact, Forecast, Info, Member, Opportunity, SetupEntry,
    non_empty,
};

/// Facts from setup lists that some mappings need (loaded once per connector).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lookups {
    /// Ids of company statuses whose `inactiveFlag` is true (`/company/companies/statuses`).
    pub inactive_company_statuses: HashSet<i64>,
    /// Ids of activity statuses whose `closedFlag` is true (`/sales/activities/statuses`).
    pub closed_activity_statuses: HashSet<i64>,
}

/// Parses one list page of `stage` into records, without setup-list facts (companies all
/// active, activities all open) and without forecasts. See [`parse_page_with`].
pub fn parse_page(stage: Stage, body: &[u8]) -> Result<Vec<ExternalRecord>, ConnectorError> {
    parse_page_with(stage, body, &Lookups::default())
}

/// Parses one list page of `stage` into records. Fast path: the whole array as wire
/// structs. If any element does not fit, each element is parsed on its own and the misfits
/// become [`Unreadable`] with the serde error text. A body that is not a JSON array is an
/// [`ErrorKind::Invalid`] error naming the endpoint.
pub fn parse_page_with(stage: Stage, body: &[u8], lookups: &Lookups) -> Result<Vec<ExternalRecord>, ConnectorError> {
    let endpoint = super::stage_path(stage);
    match stage {
        Stage::Users => parse_each(body, endpoint, |m: Member| user(m).map_or_else(unreadable, ExternalRecord::User)),
        Stage::Companies => parse_each(body, endpoint, |c: Company| ExternalRecord::Company(company(c, lookups))),
        Stage::Contacts => parse_each(body, endpoint, |c: Contact| ExternalRecord::Contact(contact(c))),
        Stage::Solutions => parse_each(body, endpoint, |c: CatalogItem| ExternalRecord::Solution(solution(c))),
        Stage::Activities => parse_each(body, endpoint, |a: Activity| {
            activity(a, lookups).map_or_else(unreadable, ExternalRecord::Activity)
        }),
        Stage::Opportunities => {
            parse_each(body, endpoint, |o: Opportunity| ExternalRecord::Opportunity(opportunity(o)))
        }
    }
}

fn unreadable(u: Unreadable) -> ExternalRecord {
    ExternalRecord::Unreadable(u)
}

/// The fast parse, then the per-element fallback.
fn parse_each<W: DeserializeOwned>(
    body: &[u8],
    endpoint: &str,
    map: impl Fn(W) -> ExternalRecord,
) -> Result<Vec<ExternalRecord>, ConnectorError> {
    if let Ok(items) = serde_json::from_slice::<Vec<W>>(body) {
        return Ok(items.into_iter().map(map).collect());
    }
    let values: Vec<Value> = serde_json::from_slice(body).map_err(|e| {
        ConnectorError::new(
            System::ConnectWise,
            ErrorKind::Invalid,
            format!("ConnectWise answered {endpoint} with something that is not a JSON array: {e}"),
        )
    })?;
    Ok(values
        .into_iter()
        .map(|value| {
            let id = readable_id(&value);
            match serde_json::from_value::<W>(value) {
                Ok(wire) => map(wire),
                Err(e) => ExternalRecord::Unreadable(Unreadable { id, reason: e.to_string() }),
            }
        })
        .collect())
}

/// An element's `id` as text, if it has a number or string there.
fn readable_id(value: &Value) -> Option<String> {
    match value.get("id")? {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        _ => None,
    }
}

/// `_info.lastUpdated`, parsed once (RFC 3339, whole seconds: psa-apis.md 1.8).
fn updated_at(info: &Option<Info>) -> Option<ExtVersion> {
    info.as_ref().and_then(|i| non_empty(i.last_updated.as_deref())).map(ExtVersion::from)
}

fn text(s: Option<String>) -> String {
    s.map(|s| s.trim().to_string()).unwrap_or_default()
}

/// A member. Its id is the `identifier` (login name), because activities (`_info`'s
/// creator) and opportunities (`primarySalesRep.identifier`) refer to members by it; a
/// member without one cannot be linked and is unreadable.
pub fn user(m: Member) -> Result<ExtUser, Unreadable> {
    let Some(id) = non_empty(m.identifier.as_deref()) else {
        return Err(Unreadable { id: Some(m.id.to_string()), reason: format!("member {} has no identifier", m.id) });
    };
    Ok(ExtUser {
        id,
        email: non_empty(m.primary_email.as_deref()),
        first_name: text(m.first_name),
        last_name: text(m.last_name),
        role: m.security_role.as_ref().and_then(|r| r.id_string()),
        inactive: m.inactive_flag,
        updated_at: updated_at(&m.info),
    })
}

/// A company. Inactive when its status is one of `lookups.inactive_company_statuses`
/// (psa-apis.md 1.6: no inactive flag on the company itself).
pub fn company(c: Company, lookups: &Lookups) -> ExtCompany {
    let inactive =
        c.status.as_ref().and_then(|s| s.id).is_some_and(|id| lookups.inactive_company_statuses.contains(&id));
    ExtCompany {
        id: c.id.to_string(),
        address: address(&c),
        name: text(c.name),
        phone: non_empty(c.phone_number.as_deref()),
        website: non_empty(c.website.as_deref()),
        types: c.types.iter().filter_map(|t| t.id_string()).collect(),
        inactive,
        deleted: c.deleted_flag,
        updated_at: updated_at(&c.info),
    }
}

/// `addressLine1, addressLine2, city, state zip`, leaving out blank parts.
fn address(c: &Company) -> Option<String> {
    let state_zip =
        [c.state.as_deref(), c.zip.as_deref()].into_iter().filter_map(non_empty_ref).collect::<Vec<_>>().join(" ");
    let parts: Vec<&str> = [c.address_line1.as_deref(), c.address_line2.as_deref(), c.city.as_deref()]
        .into_iter()
        .filter_map(non_empty_ref)
        .chain(Some(state_zip.as_str()).filter(|s| !s.is_empty()))
        .collect();
    if parts.is_empty() { None } else { Some(parts.join(", ")) }
}

fn non_empty_ref(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

/// The default item of one communication type, else the first of that type (psa-apis.md
/// 1.6, Contact: "Default email = item with communicationType=Email and defaultFlag=true").
fn communication(items: &[CommunicationItem], kind: &str) -> Option<String> {
    let of_kind = || {
        items.iter().filter(move |i| {
            i.communication_type.as_deref().is_some_and(|t| t.eq_ignore_ascii_case(kind))
                && non_empty_ref(i.value.as_deref()).is_some()
        })
    };
    of_kind().find(|i| i.default_flag).or_else(|| of_kind().next()).and_then(|i| non_empty(i.value.as_deref()))
}

/// A contact. Email and phone live in `communicationItems` (psa-apis.md 1.6); the phone
/// prefers `defaultPhoneNbr`.
pub fn contact(c: Contact) -> ExtContact {
    ExtContact {
        id: c.id.to_string(),
        email: communication(&c.communication_items, "Email"),
        phone: non_empty(c.default_phone_nbr.as_deref()).or_else(|| communication(&c.communication_items, "Phone")),
        first_name: text(c.first_name),
        last_name: text(c.last_name),
        title: non_empty(c.title.as_deref()),
        company_id: c.company.as_ref().and_then(|r| r.id_string()),
        types: c.types.iter().filter_map(|t| t.id_string()).collect(),
        inactive: c.inactive_flag,
        updated_at: updated_at(&c.info),
    }
}

/// A catalog item; its name is the `description` (the `identifier` is the SKU, used only
/// when the description is blank).
pub fn solution(c: CatalogItem) -> ExtSolution {
    ExtSolution {
        id: c.id.to_string(),
        name: non_empty(c.description.as_deref()).or_else(|| non_empty(c.identifier.as_deref())).unwrap_or_default(),
        type_id: c.kind.as_ref().and_then(|r| r.id_string()),
        category_id: c.category.as_ref().and_then(|r| r.id_string()),
        billing: non_empty(c.billable_option.as_deref()),
        price: c.price,
        inactive: c.inactive_flag,
        updated_at: updated_at(&c.info),
    }
}

/// An activity. Done when its status is one of `lookups.closed_activity_statuses`; the
/// creator is `_info`'s creator key (UNCONFIRMED, see [`Info::created_by`]). A `dateStart`
/// that is not a timestamp makes the record unreadable rather than silently undated.
pub fn activity(a: Activity, lookups: &Lookups) -> Result<ExtActivity, Unreadable> {
    let date = match non_empty(a.date_start.as_deref()) {
        None => None,
        Some(raw) => Some(
            Timestamp::parse(&raw)
                .map_err(|e| Unreadable { id: Some(a.id.to_string()), reason: format!("dateStart: {e}") })?,
        ),
    };
    let done = a.status.as_ref().and_then(|s| s.id).is_some_and(|id| lookups.closed_activity_statuses.contains(&id));
    Ok(ExtActivity {
        id: a.id.to_string(),
        subject: text(a.name),
        body: non_empty(a.notes.as_deref()),
        type_id: a.kind.as_ref().and_then(|r| r.id_string()),
        contact_id: a.contact.as_ref().and_then(|r| r.id_string()),
        company_id: a.company.as_ref().and_then(|r| r.id_string()),
        created_by: a.info.as_ref().and_then(|i| non_empty(i.created_by())),
        date,
        done,
        updated_at: updated_at(&a.info),
    })
}

/// An opportunity without its value: that comes from the forecast ([`apply_forecast`]).
pub fn opportunity(o: Opportunity) -> ExtOpportunity {
    ExtOpportunity {
        id: o.id.to_string(),
        name: text(o.name),
        status_id: o.status.as_ref().and_then(|r| r.id_string()),
        stage: o.stage.as_ref().and_then(|r| non_empty(r.name.as_deref())),
        opportunity_type: o.kind.as_ref().and_then(|r| r.label()),
        close_date: non_empty(o.expected_close_date.as_deref()),
        value: None,
        line_items: Vec::new(),
        salesperson_id: o.primary_sales_rep.as_ref().and_then(|r| non_empty(r.identifier.as_deref())),
        company_id: o.company.as_ref().and_then(|r| r.id_string()),
        contact_id: o.contact.as_ref().and_then(|r| r.id_string()),
        notes: non_empty(o.notes.as_deref()),
        updated_at: updated_at(&o.info),
    }
}

/// Sets an opportunity's value (the sum of every forecast item's `revenue`, psa-apis.md
/// 1.6) and its line items (description = `productDescription`, else `forecastDescription`).
pub fn apply_forecast(o: &mut ExtOpportunity, forecast: &Forecast) {
    o.line_items = forecast
        .forecast_items
        .iter()
        .map(|item| ExtLineItem {
            description: non_empty(item.product_description.as_deref())
                .or_else(|| non_empty(item.forecast_description.as_deref()))
                .unwrap_or_default(),
            quantity: item.quantity,
            revenue: item.revenue,
        })
        .collect();
    o.value = Some(forecast.forecast_items.iter().map(|i| i.revenue).sum());
}

/// Which field of a setup-list entry names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameField {
    /// `name` (most lists), falling back to `description`.
    Name,
    /// `description` (contact types), falling back to `name`.
    Description,
}

/// A setup-list entry as a mapping choice (`id` as text).
pub fn choice(entry: &SetupEntry, field: NameField) -> Choice {
    let (first, second) = match field {
        NameField::Name => (&entry.name, &entry.description),
        NameField::Description => (&entry.description, &entry.name),
    };
    let name =
        non_empty(first.as_deref()).or_else(|| non_empty(second.as_deref())).unwrap_or_else(|| entry.id.to_string());
    Choice { id: entry.id.to_string(), name }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn records(stage: Stage, body: Value) -> Vec<ExternalRecord> {
        parse_page(stage, body.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn the_recorded_contact_list_maps_into_contacts() {
        let out = parse_page(Stage::Contacts, include_bytes!("../../tests/fixtures/read_contacts.json")).unwrap();
        assert_eq!(
            out,
            [ExternalRecord::Contact(ExtContact {
                id: "31045".into(),
                first_name: "Alex".into(),
                last_name: "Morgan".into(),
                email: None,
                phone: Some("5558675309".into()),
                title: Some("Operations Manager".into()),
                company_id: Some("20481".into()),
                types: vec![],
                inactive: false,
                updated_at: None,
            })]
        );
    }

    #[test]
    fn the_recorded_single_contact_maps_with_its_company_and_phone() {
        let out = parse_page(Stage::Contacts, include_bytes!("../../tests/fixtures/read_one-contact.json")).unwrap();
        let [ExternalRecord::Contact(c)] = out.as_slice() else { panic!("{out:?}") };
        assert_eq!((c.id.as_str(), c.first_name.as_str(), c.last_name.as_str()), ("58024", "Jorge", "Smith"));
        assert_eq!(c.company_id.as_deref(), Some("250"));
        assert_eq!(c.phone.as_deref(), Some("4842618200"));
        assert_eq!((c.title.as_deref(), c.email.as_deref()), (None, None));
        assert!(!c.inactive && c.types.is_empty());
    }

    #[test]
    fn a_member_is_identified_by_its_login_name() {
        let body = json!([{"id": 7, "identifier": "jdoe", "firstName": "Jane", "lastName": "Doe",
            "primaryEmail": "", "securityRole": {"id": 3, "name": "Admin"}, "inactiveFlag": true,
            "_info": {"lastUpdated": "2024-01-02T03:04:05Z"}}]);
        let out = records(Stage::Users, body);
        let [ExternalRecord::User(u)] = out.as_slice() else { panic!("{out:?}") };
        assert_eq!(u.id, "jdoe");
        assert_eq!(u.email, None);
        assert_eq!(u.role.as_deref(), Some("3"));
        assert!(u.inactive);
        assert_eq!(u.updated_at.as_ref().map(ExtVersion::as_str), Some("2024-01-02T03:04:05Z"));
    }

    #[test]
    fn a_member_without_identifier_is_unreadable() {
        let out = records(Stage::Users, json!([{"id": 9}]));
        assert!(matches!(&out[0], ExternalRecord::Unreadable(u) if u.id.as_deref() == Some("9")), "{out:?}");
    }

    #[test]
    fn a_company_is_inactive_when_its_status_is_inactive() {
        let lookups = Lookups { inactive_company_statuses: HashSet::from([2]), ..Lookups::default() };
        let wire = |status: i64| -> Company {
            serde_json::from_value(json!({"id": 5, "name": " Acme ", "status": {"id": status},
                "types": [{"id": 4}, {"id": 1}], "addressLine1": "1 Main St", "city": "Springfield",
                "state": "IL", "zip": "62701", "deletedFlag": true}))
            .unwrap()
        };
        let active = company(wire(1), &lookups);
        assert!(!active.inactive);
        assert!(company(wire(2), &lookups).inactive);
        assert_eq!(active.name, "Acme");
        assert_eq!(active.types, ["4", "1"]);
        assert_eq!(active.address.as_deref(), Some("1 Main St, Springfield, IL 62701"));
        assert!(active.deleted);
    }

    #[test]
    fn a_contact_takes_the_default_email_else_the_first() {
        let wire = |items: Value| -> Contact {
            serde_json::from_value(json!({"id": 1, "communicationItems": items})).unwrap()
        };
        let c = contact(wire(json!([
            {"communicationType": "Email", "value": "first@x.com", "defaultFlag": false},
            {"communicationType": "Phone", "value": "555", "defaultFlag": true},
            {"communicationType": "Email", "value": "default@x.com", "defaultFlag": true}
        ])));
        assert_eq!(c.email.as_deref(), Some("default@x.com"));
        assert_eq!(c.phone.as_deref(), Some("555"));
        let c = contact(wire(json!([{"communicationType": "Email", "value": "only@x.com"}])));
        assert_eq!(c.email.as_deref(), Some("only@x.com"));
        assert_eq!(c.phone, None);
    }

    #[test]
    fn an_activity_is_done_when_its_status_is_closed() {
        let lookups = Lookups { closed_activity_statuses: HashSet::from([3]), ..Lookups::default() };
        let a: Activity = serde_json::from_value(json!({"id": 4, "name": "Call", "status": {"id": 3},
            "dateStart": "2024-05-01T10:00:00Z", "type": {"id": 2}, "contact": {"id": 8}, "company": {"id": 9},
            "_info": {"enteredBy": "jdoe"}}))
        .unwrap();
        let a = activity(a, &lookups).unwrap();
        assert!(a.done);
        assert_eq!(a.created_by.as_deref(), Some("jdoe"));
        assert_eq!(a.date.unwrap().to_rfc3339(), "2024-05-01T10:00:00Z");
        assert_eq!(
            (a.type_id.as_deref(), a.contact_id.as_deref(), a.company_id.as_deref()),
            (Some("2"), Some("8"), Some("9"))
        );
    }

    #[test]
    fn an_activity_with_an_unreadable_start_date_is_unreadable() {
        let out = records(Stage::Activities, json!([{"id": 4, "dateStart": "yesterday"}]));
        assert!(matches!(&out[0], ExternalRecord::Unreadable(u) if u.reason.contains("dateStart")), "{out:?}");
    }

    #[test]
    fn an_opportunity_is_worth_the_sum_of_its_forecast() {
        let o: Opportunity = serde_json::from_value(json!({"id": 1, "name": "Deal", "status": {"id": 2},
            "stage": {"id": 1, "name": "Qualify"}, "type": {"id": 3, "description": "New"},
            "primarySalesRep": {"id": 5, "identifier": "jdoe"}, "expectedCloseDate": "2024-06-01T00:00:00Z"}))
        .unwrap();
        let f: Forecast = serde_json::from_value(json!({"forecastItems": [
            {"productDescription": "Laptop", "quantity": 2.0, "revenue": 2000.0},
            {"forecastDescription": "Setup", "quantity": 1.0, "revenue": 150.5}
        ]}))
        .unwrap();
        let mut o = opportunity(o);
        assert_eq!(o.value, None);
        apply_forecast(&mut o, &f);
        assert_eq!(o.value, Some(2150.5));
        assert_eq!(o.line_items[1].description, "Setup");
        assert_eq!(o.salesperson_id.as_deref(), Some("jdoe"));
        assert_eq!(o.opportunity_type.as_deref(), Some("New"));
        assert_eq!(o.stage.as_deref(), Some("Qualify"));
    }

    #[test]
    fn an_element_with_a_wrong_field_type_is_unreadable_while_the_others_map() {
        let out = records(
            Stage::Companies,
            json!([{"id": 1, "name": "Good"}, {"id": 2, "name": ["not", "a", "name"]}, {"id": 3, "name": "Also good"}]),
        );
        assert_eq!(out.len(), 3);
        assert!(matches!(&out[0], ExternalRecord::Company(c) if c.name == "Good"));
        let ExternalRecord::Unreadable(bad) = &out[1] else { panic!("{out:?}") };
        assert_eq!(bad.id.as_deref(), Some("2"));
        assert!(bad.reason.contains("invalid type"), "{}", bad.reason);
        assert!(matches!(&out[2], ExternalRecord::Company(c) if c.id == "3"));
    }

    #[test]
    fn an_element_without_a_readable_id_is_unreadable_without_id() {
        let out = records(Stage::Contacts, json!([{"firstName": "No id"}]));
        assert!(matches!(&out[0], ExternalRecord::Unreadable(u) if u.id.is_none()), "{out:?}");
    }

    #[test]
    fn a_body_that_is_not_an_array_is_invalid_and_names_the_endpoint() {
        let err = parse_page(Stage::Companies, br#"{"code":"x"}"#).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Invalid);
        assert!(err.message.contains("/company/companies"), "{}", err.message);
    }

    #[test]
    fn a_setup_entry_becomes_a_choice_named_by_the_right_field() {
        let e: SetupEntry = serde_json::from_value(json!({"id": 4, "description": "Decision Maker"})).unwrap();
        assert_eq!(choice(&e, NameField::Description), Choice { id: "4".into(), name: "Decision Maker".into() });
        assert_eq!(choice(&e, NameField::Name).name, "Decision Maker");
    }
}
