//! The import rules of PRODUCT.md section 4 that need no I/O: which records pass the
//! mappings (and why not), which list a contact lands in, and link-candidate choice.

use crate::describe::Description;
use crate::external::{ExtActivity, ExtCompany, ExtContact, ExtSolution, ExtUser, NO_TYPE, OptionList};
use crate::ids::Stage;
use crate::log::SkipReason;
use crate::mapping::Connection;
use crate::normalise::email_key;
use crate::vocab::{ActivityKind, CompanyType, ContactStatus, Role};

fn first_type(types: &[String]) -> &str {
    types.first().map_or(NO_TYPE, String::as_str)
}

/// A member becomes a user with the returned CRM role, or is skipped.
/// Checks, in order: inactive, no email, role not mapped.
pub fn user_role(conn: &Connection, u: &ExtUser) -> Result<Role, SkipReason> {
    if u.inactive {
        return Err(SkipReason::Inactive);
    }
    if u.email.as_deref().and_then(email_key).is_none() {
        return Err(SkipReason::NoEmail);
    }
    let role = u.role.as_deref().unwrap_or(NO_TYPE);
    // A saved mapping holds only CRM roles (checked when saved); anything else is unmapped.
    conn.mapped(Stage::Users, OptionList::Roles, role)
        .and_then(|r| Role::parse(r).ok())
        .ok_or(SkipReason::RoleNotMapped)
}

/// A company comes in with the returned CRM type, or is skipped.
/// Checks, in order: deleted, inactive, first type not mapped (Syncro has no types:
/// every company passes as `no_type` unless mapped otherwise).
pub fn company_type(conn: &Connection, system: &Description, c: &ExtCompany) -> Result<CompanyType, SkipReason> {
    if c.deleted {
        return Err(SkipReason::Deleted);
    }
    if c.inactive {
        return Err(SkipReason::Inactive);
    }
    if !system.typed_records && c.types.is_empty() {
        let mapped = conn.mapped(Stage::Companies, OptionList::CompanyTypes, NO_TYPE);
        return Ok(mapped.and_then(|t| CompanyType::parse(t).ok()).unwrap_or_else(CompanyType::none));
    }
    conn.mapped(Stage::Companies, OptionList::CompanyTypes, first_type(&c.types))
        .and_then(|t| CompanyType::parse(t).ok())
        .ok_or(SkipReason::TypeNotMapped)
}

/// A contact comes in with the returned CRM status, or is skipped.
/// Checks, in order: inactive, first type/status not mapped (Syncro: all pass).
/// Whether its company was imported is checked by the caller, which needs the store.
pub fn contact_status(conn: &Connection, system: &Description, c: &ExtContact) -> Result<ContactStatus, SkipReason> {
    if c.inactive {
        return Err(SkipReason::Inactive);
    }
    if !system.typed_records && c.types.is_empty() {
        let mapped = conn.mapped(Stage::Contacts, OptionList::ContactTypes, NO_TYPE);
        return Ok(mapped.and_then(|t| ContactStatus::parse(t).ok()).unwrap_or_else(ContactStatus::none));
    }
    conn.mapped(Stage::Contacts, OptionList::ContactTypes, first_type(&c.types))
        .and_then(|t| ContactStatus::parse(t).ok())
        .ok_or(SkipReason::TypeNotMapped)
}

/// The CRM (type, category, billing) of a catalog item, or why it is skipped.
/// Checks, in order: inactive, type, category, billing.
pub fn solution_classes(conn: &Connection, s: &ExtSolution) -> Result<(String, String, String), SkipReason> {
    if s.inactive {
        return Err(SkipReason::Inactive);
    }
    let get = |list, id: Option<&str>, why| {
        conn.mapped(Stage::Solutions, list, id.unwrap_or(NO_TYPE)).map(str::to_string).ok_or(why)
    };
    Ok((
        get(OptionList::CatalogTypes, s.type_id.as_deref(), SkipReason::TypeNotMapped)?,
        get(OptionList::CatalogCategories, s.category_id.as_deref(), SkipReason::CategoryNotMapped)?,
        get(OptionList::BillingOptions, s.billing.as_deref(), SkipReason::BillingNotMapped)?,
    ))
}

/// The CRM kind (`call`, `email`, `note`, `meeting`) of an activity, or `TypeNotMapped`.
pub fn activity_kind(conn: &Connection, a: &ExtActivity) -> Result<ActivityKind, SkipReason> {
    conn.mapped(Stage::Activities, OptionList::ActivityTypes, a.type_id.as_deref().unwrap_or(NO_TYPE))
        .and_then(|k| ActivityKind::parse(k).ok())
        .ok_or(SkipReason::TypeNotMapped)
}

/// The list an imported contact lands in: the plural of its company's CRM type
/// (`client` -> "Clients", `no_type` -> "No Type"); Syncro contacts go to
/// "Syncro General"; contacts without a company to "No Company".
pub fn contact_list(system: &Description, company_type: Option<&CompanyType>) -> String {
    if let Some(one) = system.contact_list {
        return one.into();
    }
    match company_type.map(CompanyType::as_str) {
        None => "No Company".into(),
        Some("no_type") => "No Type".into(),
        Some(t) => {
            let words: Vec<String> = t
                .split('_')
                .filter(|w| !w.is_empty())
                .map(|w| {
                    let mut cs = w.chars();
                    cs.next().map(|c| c.to_uppercase().chain(cs).collect()).unwrap_or_default()
                })
                .collect();
            let mut name = words.join(" ");
            if name.ends_with('y') && !name.ends_with("ey") {
                name.pop();
                name.push_str("ies");
            } else if !name.ends_with('s') {
                name.push('s');
            }
            name
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::describe::fixtures::like;
    use crate::ids::System;

    fn conn(system: System) -> Connection {
        crate::describe::fixtures::connection(system)
    }

    fn user(role: &str) -> ExtUser {
        ExtUser {
            id: "jdoe".into(),
            email: Some("j@x.com".into()),
            first_name: "J".into(),
            last_name: "Doe".into(),
            role: Some(role.into()),
            inactive: false,
            updated_at: None,
        }
    }

    fn company(types: &[&str]) -> ExtCompany {
        ExtCompany {
            id: "1".into(),
            name: "Acme".into(),
            phone: None,
            website: None,
            address: None,
            types: types.iter().map(|s| s.to_string()).collect(),
            inactive: false,
            deleted: false,
            updated_at: None,
        }
    }

    fn contact(types: &[&str]) -> ExtContact {
        ExtContact {
            id: "1".into(),
            first_name: "A".into(),
            last_name: "B".into(),
            email: None,
            phone: None,
            title: None,
            company_id: None,
            types: types.iter().map(|s| s.to_string()).collect(),
            inactive: false,
            updated_at: None,
        }
    }

    #[test]
    fn members_with_a_mapped_role_become_users_with_that_role() {
        assert_eq!(user_role(&conn(System::ConnectWise), &user("sales")), Ok(Role::Salesperson));
    }

    #[test]
    fn members_with_an_unmapped_role_are_skipped() {
        assert_eq!(user_role(&conn(System::ConnectWise), &user("tech")), Err(SkipReason::RoleNotMapped));
    }

    #[test]
    fn inactive_members_are_skipped_before_anything_else() {
        let mut u = user("tech");
        u.inactive = true;
        u.email = None;
        assert_eq!(user_role(&conn(System::ConnectWise), &u), Err(SkipReason::Inactive));
    }

    #[test]
    fn members_without_a_usable_email_are_skipped() {
        let mut u = user("sales");
        u.email = Some("not-an-email".into());
        assert_eq!(user_role(&conn(System::ConnectWise), &u), Err(SkipReason::NoEmail));
    }

    #[test]
    fn only_companies_whose_type_is_mapped_come_in() {
        let c = conn(System::ConnectWise);
        assert_eq!(company_type(&c, like(c.system), &company(&["client"])), Ok(CompanyType::parse("client").unwrap()));
        assert_eq!(company_type(&c, like(c.system), &company(&["vendor"])), Err(SkipReason::TypeNotMapped));
    }

    #[test]
    fn with_several_company_types_the_first_decides() {
        let c = conn(System::ConnectWise);
        assert_eq!(
            company_type(&c, like(c.system), &company(&["prospect", "client"])),
            Ok(CompanyType::parse("prospect").unwrap())
        );
        assert_eq!(company_type(&c, like(c.system), &company(&["vendor", "client"])), Err(SkipReason::TypeNotMapped));
    }

    #[test]
    fn companies_without_a_type_need_the_no_type_choice_mapped() {
        assert_eq!(
            company_type(&conn(System::ConnectWise), like(System::ConnectWise), &company(&[])),
            Err(SkipReason::TypeNotMapped)
        );
    }

    #[test]
    fn syncro_companies_have_no_types_and_all_come_in() {
        assert_eq!(
            company_type(&conn(System::Syncro), like(System::Syncro), &company(&[])),
            Ok(CompanyType::parse("no_type").unwrap())
        );
    }

    #[test]
    fn deleted_then_inactive_companies_are_skipped_whatever_their_type() {
        let c = conn(System::ConnectWise);
        let mut x = company(&["client"]);
        x.inactive = true;
        assert_eq!(company_type(&c, like(c.system), &x), Err(SkipReason::Inactive));
        x.deleted = true;
        assert_eq!(company_type(&c, like(c.system), &x), Err(SkipReason::Deleted));
    }

    #[test]
    fn contacts_come_in_by_their_mapped_first_type_including_no_type() {
        let c = conn(System::ConnectWise);
        assert_eq!(contact_status(&c, like(c.system), &contact(&["dm"])), Ok(ContactStatus::parse("talking").unwrap()));
        assert_eq!(contact_status(&c, like(c.system), &contact(&[])), Ok(ContactStatus::parse("no_status").unwrap()));
        assert_eq!(contact_status(&c, like(c.system), &contact(&["vendor_rep", "dm"])), Err(SkipReason::TypeNotMapped));
    }

    #[test]
    fn inactive_contacts_are_skipped() {
        let mut x = contact(&["dm"]);
        x.inactive = true;
        assert_eq!(
            contact_status(&conn(System::ConnectWise), like(System::ConnectWise), &x),
            Err(SkipReason::Inactive)
        );
    }

    #[test]
    fn catalog_items_need_type_category_and_billing_mapped_in_that_order() {
        let c = conn(System::ConnectWise);
        let mut s = ExtSolution {
            id: "1".into(),
            name: "Firewall".into(),
            type_id: Some("hw".into()),
            category_id: Some("ms".into()),
            billing: Some("Billable".into()),
            price: Some(10.0),
            inactive: false,
            updated_at: None,
        };
        assert_eq!(solution_classes(&c, &s), Ok(("hardware".into(), "managed".into(), "billable".into())));
        s.billing = Some("DoNotBill".into());
        assert_eq!(solution_classes(&c, &s), Err(SkipReason::BillingNotMapped));
        s.category_id = Some("misc".into());
        assert_eq!(solution_classes(&c, &s), Err(SkipReason::CategoryNotMapped));
        s.type_id = Some("internal".into());
        assert_eq!(solution_classes(&c, &s), Err(SkipReason::TypeNotMapped));
        s.inactive = true;
        assert_eq!(solution_classes(&c, &s), Err(SkipReason::Inactive));
    }

    #[test]
    fn activities_map_only_onto_mapped_types() {
        let c = conn(System::ConnectWise);
        let mut a = ExtActivity {
            id: "1".into(),
            subject: "s".into(),
            body: None,
            type_id: Some("call".into()),
            contact_id: None,
            company_id: None,
            created_by: None,
            date: None,
            done: false,
            updated_at: None,
        };
        assert_eq!(activity_kind(&c, &a), Ok(ActivityKind::Call));
        a.type_id = Some("quote".into());
        assert_eq!(activity_kind(&c, &a), Err(SkipReason::TypeNotMapped));
    }

    #[test]
    fn contacts_land_in_the_list_of_their_company_type() {
        assert_eq!(
            contact_list(like(System::ConnectWise), Some(&CompanyType::parse("prospect").unwrap())),
            "Prospects"
        );
        assert_eq!(contact_list(like(System::ConnectWise), Some(&CompanyType::parse("client").unwrap())), "Clients");
        assert_eq!(contact_list(like(System::ConnectWise), Some(&CompanyType::parse("no_type").unwrap())), "No Type");
        assert_eq!(
            contact_list(like(System::ConnectWise), Some(&CompanyType::parse("managed_services").unwrap())),
            "Managed Services"
        );
        assert_eq!(contact_list(like(System::ConnectWise), Some(&CompanyType::parse("agency").unwrap())), "Agencies");
        assert_eq!(contact_list(like(System::ConnectWise), None), "No Company");
        assert_eq!(contact_list(like(System::Syncro), Some(&CompanyType::parse("client").unwrap())), "Syncro General");
    }
}
