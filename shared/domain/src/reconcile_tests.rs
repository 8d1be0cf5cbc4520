//! Table-driven tests of `decide`: every import rule of PRODUCT.md section 4, per system,
//! plus the sync variants (echo, three-way merge) and the way out (`decide_push`), with no store: each case states what
//! is known, the incoming record and the plan expected.

use super::*;
use crate::describe::fixtures::like;
use crate::external::ExtLineItem;
use crate::records::ExternalLink;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_unix(secs).unwrap()
}

const NOW: i64 = 1_000_000;

fn conn(system: System) -> Connection {
    crate::describe::fixtures::connection(system)
}

// ---- incoming records

fn ext_company(id: &str, name: &str, phone: Option<&str>, website: Option<&str>, types: &[&str]) -> ExternalRecord {
    ExternalRecord::Company(ExtCompany {
        id: id.into(),
        name: name.into(),
        phone: phone.map(Into::into),
        website: website.map(Into::into),
        address: None,
        types: types.iter().map(|s| s.to_string()).collect(),
        inactive: false,
        deleted: false,
        updated_at: Some("2024-01-01T00:00:00Z".into()),
    })
}

fn company_with(f: impl FnOnce(&mut ExtCompany)) -> ExternalRecord {
    let mut r = ext_company("c1", "Acme", Some("+1 555 0100"), Some("acme.example"), &["client"]);
    if let ExternalRecord::Company(c) = &mut r {
        f(c);
    }
    r
}

fn ext_contact(f: impl FnOnce(&mut ExtContact)) -> ExternalRecord {
    let mut c = ExtContact {
        id: "p1".into(),
        first_name: "Ann".into(),
        last_name: "Lee".into(),
        email: Some("Ann@Acme.example".into()),
        phone: None,
        title: None,
        company_id: Some("c1".into()),
        types: vec!["dm".into()],
        inactive: false,
        updated_at: Some("2024-01-01T00:00:00Z".into()),
    };
    f(&mut c);
    ExternalRecord::Contact(c)
}

fn ext_user(f: impl FnOnce(&mut ExtUser)) -> ExternalRecord {
    let mut u = ExtUser {
        id: "m1".into(),
        email: Some("jo@msp.example".into()),
        first_name: "Jo".into(),
        last_name: "Doe".into(),
        role: Some("sales".into()),
        inactive: false,
        updated_at: None,
    };
    f(&mut u);
    ExternalRecord::User(u)
}

fn ext_solution(f: impl FnOnce(&mut ExtSolution)) -> ExternalRecord {
    let mut s = ExtSolution {
        id: "s1".into(),
        name: "Firewall".into(),
        type_id: Some("hw".into()),
        category_id: Some("ms".into()),
        billing: Some("Billable".into()),
        price: Some(10.0),
        inactive: false,
        updated_at: None,
    };
    f(&mut s);
    ExternalRecord::Solution(s)
}

fn ext_activity(f: impl FnOnce(&mut ExtActivity)) -> ExternalRecord {
    let mut a = ExtActivity {
        id: "a1".into(),
        subject: "Call".into(),
        body: None,
        type_id: Some("call".into()),
        contact_id: Some("p1".into()),
        company_id: Some("c1".into()),
        created_by: Some("m1".into()),
        date: None,
        done: true,
        updated_at: None,
    };
    f(&mut a);
    ExternalRecord::Activity(a)
}

fn ext_opportunity(f: impl FnOnce(&mut ExtOpportunity)) -> ExternalRecord {
    let mut o = ExtOpportunity {
        id: "o1".into(),
        name: "Renewal".into(),
        status_id: Some("open".into()),
        stage: Some("Qualify".into()),
        opportunity_type: Some("New".into()),
        close_date: Some("2024-06-01".into()),
        value: Some(100.0),
        line_items: vec![ExtLineItem { description: "Seat".into(), quantity: 1.0, revenue: 100.0 }],
        salesperson_id: Some("m1".into()),
        company_id: Some("c1".into()),
        contact_id: None,
        notes: Some("first".into()),
        updated_at: Some("2024-01-01T00:00:00Z".into()),
    };
    f(&mut o);
    ExternalRecord::Opportunity(o)
}

// ---- what the store holds

fn crm_company(id: &str, name: &str, phone: Option<&str>, website: Option<&str>, created: i64) -> Record {
    let mut meta = Meta::new(at(created));
    meta.id = RecordId::from_raw(id);
    meta.version = 1;
    Record::Company(CompanyRecord {
        meta,
        fields: CompanyFields {
            name: name.into(),
            phone: phone.map(Into::into),
            website: website.map(Into::into),
            address: None,
            company_type: crate::vocab::CompanyType::parse("no_type").unwrap(),
            custom_fields: BTreeMap::new(),
        },
    })
}

fn crm_contact(id: &str, email: &str) -> Record {
    let mut meta = Meta::new(at(1));
    meta.id = RecordId::from_raw(id);
    meta.version = 1;
    Record::Contact(ContactRecord {
        meta,
        fields: ContactFields {
            first_name: "Ann".into(),
            last_name: "Lee".into(),
            email: Some(email.into()),
            status: crate::vocab::ContactStatus::parse("talking").unwrap(),
            ..ContactFields::default()
        },
    })
}

fn crm_user(id: &str, email: &str) -> Record {
    let mut meta = Meta::new(at(1));
    meta.id = RecordId::from_raw(id);
    meta.version = 1;
    Record::User(User {
        meta,
        email: email.into(),
        name: "Jo Doe".into(),
        role: crate::vocab::Role::parse("admin").unwrap(),
        state: crate::vocab::UserState::parse("active").unwrap(),
    })
}

/// A builder of [`Known`].
#[derive(Default, Clone)]
struct Store {
    known: Known,
}

impl Store {
    /// A CRM record, findable by its look-up keys.
    fn has(mut self, r: Record) -> Self {
        for (field, value) in r.lookup_keys() {
            self.known.lookups.entry((r.kind(), field, value)).or_default().push(r.id().clone());
        }
        self.known.records.insert((r.kind(), r.id().clone()), r);
        self
    }

    /// A CRM record linked to `ext_id` of `system`, last seen at `seen`, pulled as it is now.
    fn linked(self, system: System, mut r: Record, ext_id: &str, seen: Option<&str>) -> Self {
        r.meta_mut().links.insert(system, ExternalLink { id: ext_id.into() });
        let mut ledger = Ledger::pulled(system, &r, ext_id, seen.map(ExtVersion::parse), at(1));
        ledger.version = 1;
        let mut s = self.has(r);
        s.known.ledgers.insert((ledger.kind, ext_id.to_string()), ledger);
        s
    }

    /// Changes the ledger entry of `ext_id`.
    fn ledger(mut self, kind: RecordKind, ext_id: &str, f: impl FnOnce(&mut Ledger)) -> Self {
        if let Some(l) = self.known.ledgers.get_mut(&(kind, ext_id.to_string())) {
            f(l);
        }
        self
    }

    fn list(mut self, name: &str) -> Self {
        self.known.lists.insert(name.into());
        self
    }
}

/// What a case expects.
#[derive(Debug)]
enum Expect {
    Create,
    Link(&'static str, &'static str),
    Update(&'static [&'static str]),
    Refresh,
    Skip(SkipReason),
    Fail(&'static str),
    Echo,
}

struct Case {
    name: &'static str,
    system: System,
    stage: Stage,
    store: Store,
    incoming: ExternalRecord,
    expect: Expect,
}

fn check(cases: Vec<Case>) {
    for case in cases {
        let conn = conn(case.system);
        let d =
            decide(&Policy::import(&conn, like(conn.system)), &case.store.known, case.stage, &case.incoming, at(NOW));
        let ok = match (&case.expect, &d.plan) {
            (Expect::Create, Plan::Create { .. })
            | (Expect::Refresh, Plan::Refresh { .. })
            | (Expect::Echo, Plan::Echo { .. }) => true,
            (Expect::Link(id, reason), Plan::Link { record, reason: r, .. }) => {
                record.id().as_str() == *id && r.to_string() == *reason
            }
            (Expect::Update(fields), Plan::Update { fields: f, .. }) => f == fields,
            (Expect::Skip(a), Plan::Skip(b)) => a == b,
            (Expect::Fail(text), Plan::Fail(why)) => why.contains(text),
            _ => false,
        };
        assert!(ok, "{}: expected {:?}, decided {:#?}", case.name, case.expect, d.plan);
    }
}

fn cw() -> System {
    System::ConnectWise
}

#[test]
fn companies_follow_the_type_rules_of_every_system() {
    use Expect::*;
    let case = |name, system, incoming, expect| Case {
        name,
        system,
        stage: Stage::Companies,
        store: Store::default(),
        incoming,
        expect,
    };
    check(vec![
        case("a mapped type comes in", cw(), company_with(|_| {}), Create),
        case(
            "an unmapped type is skipped",
            cw(),
            company_with(|c| c.types = vec!["vendor".into()]),
            Skip(SkipReason::TypeNotMapped),
        ),
        case(
            "the first of several types decides (mapped)",
            System::Halo,
            company_with(|c| c.types = vec!["prospect".into(), "vendor".into()]),
            Create,
        ),
        case(
            "the first of several types decides (unmapped)",
            System::Halo,
            company_with(|c| c.types = vec!["vendor".into(), "client".into()]),
            Skip(SkipReason::TypeNotMapped),
        ),
        case(
            "no type needs the no-type choice mapped",
            System::Salesforce,
            company_with(|c| c.types.clear()),
            Skip(SkipReason::TypeNotMapped),
        ),
        case("Syncro has no types: every company comes in", System::Syncro, company_with(|c| c.types.clear()), Create),
        case("inactive companies are skipped", cw(), company_with(|c| c.inactive = true), Skip(SkipReason::Inactive)),
        case(
            "deleted companies are skipped as deleted",
            cw(),
            company_with(|c| {
                c.inactive = true;
                c.deleted = true
            }),
            Skip(SkipReason::Deleted),
        ),
    ]);
}

#[test]
fn an_unlinked_company_links_by_phone_then_website_then_name() {
    use Expect::*;
    let by_phone = crm_company("crm-phone", "Other Name", Some("+1 (555) 0100"), None, 1);
    let by_site = crm_company("crm-site", "Other Name", None, Some("https://www.acme.example/"), 1);
    let by_name = crm_company("crm-name", "ACME", None, None, 1);
    let case =
        |name, store, incoming, expect| Case { name, system: cw(), stage: Stage::Companies, store, incoming, expect };
    let linked_elsewhere = Store::default().linked(System::Halo, by_phone.clone(), "h9", None);
    check(vec![
        case(
            "phone first",
            Store::default().has(by_name.clone()).has(by_site.clone()).has(by_phone.clone()),
            company_with(|_| {}),
            Link("crm-phone", "phone 15550100"),
        ),
        case(
            "then website",
            Store::default().has(by_name.clone()).has(by_site.clone()),
            company_with(|_| {}),
            Link("crm-site", "website acme.example"),
        ),
        case("then name", Store::default().has(by_name.clone()), company_with(|_| {}), Link("crm-name", "name acme")),
        case(
            "nothing matches: created",
            Store::default().has(crm_company("x", "Globex", Some("999"), None, 1)),
            company_with(|_| {}),
            Create,
        ),
        case(
            "a candidate already linked to this system is not taken",
            Store::default().linked(cw(), by_phone.clone(), "c0", None),
            company_with(|_| {}),
            Create,
        ),
        case(
            "a candidate linked to another system is",
            linked_elsewhere,
            company_with(|_| {}),
            Link("crm-phone", "phone 15550100"),
        ),
    ]);
}

#[test]
fn among_several_candidates_the_oldest_is_linked() {
    let older = crm_company("b-older", "Acme", None, None, 1);
    let newer = crm_company("a-newer", "Acme", None, None, 2);
    let store = Store::default().has(newer).has(older);
    check(vec![Case {
        name: "oldest first",
        system: cw(),
        stage: Stage::Companies,
        store,
        incoming: company_with(|c| {
            c.phone = None;
            c.website = None
        }),
        expect: Expect::Link("b-older", "name acme"),
    }]);
}

#[test]
fn a_linked_company_seen_again_is_unchanged_refreshed_or_updated() {
    use Expect::*;
    let mine = crm_company("crm-1", "Acme", Some("+1 555 0100"), Some("acme.example"), 1);
    let as_imported = {
        let mut r = mine.clone();
        if let Record::Company(c) = &mut r {
            c.fields.company_type = crate::vocab::CompanyType::parse("client").unwrap();
        }
        r
    };
    let store = || Store::default().linked(cw(), as_imported.clone(), "c1", Some("2024-01-01T00:00:00Z"));
    let case =
        |name, incoming, expect| Case { name, system: cw(), stage: Stage::Companies, store: store(), incoming, expect };
    check(vec![
        case("same version: unchanged", company_with(|_| {}), Skip(SkipReason::Unchanged)),
        case(
            "same instant written another way: unchanged",
            company_with(|c| c.updated_at = Some("2024-01-01T02:00:00+02:00".into())),
            Skip(SkipReason::Unchanged),
        ),
        case(
            "new version, same fields: ledger only",
            company_with(|c| c.updated_at = Some("2024-02-01T00:00:00Z".into())),
            Refresh,
        ),
        case("no version at all: compared by fields", company_with(|c| c.updated_at = None), Refresh),
        case(
            "new version, renamed: the name changes",
            company_with(|c| {
                c.name = "Acme Ltd".into();
                c.updated_at = Some("2024-02-01T00:00:00Z".into())
            }),
            Update(&["name"]),
        ),
    ]);
}

#[test]
fn contacts_follow_the_contact_rules() {
    use Expect::*;
    let company = crm_company("crm-c1", "Acme", None, None, 1);
    let with_company = || Store::default().linked(cw(), company.clone(), "c1", None);
    let case =
        |name, system, store, incoming, expect| Case { name, system, stage: Stage::Contacts, store, incoming, expect };
    check(vec![
        case("a mapped type comes in", cw(), with_company(), ext_contact(|_| {}), Create),
        case(
            "an unmapped type is skipped",
            cw(),
            with_company(),
            ext_contact(|c| c.types = vec!["vendor_rep".into()]),
            Skip(SkipReason::TypeNotMapped),
        ),
        case("no type maps through the no-type choice", cw(), with_company(), ext_contact(|c| c.types.clear()), Create),
        case(
            "inactive contacts are skipped",
            cw(),
            with_company(),
            ext_contact(|c| c.inactive = true),
            Skip(SkipReason::Inactive),
        ),
        case(
            "a company that was not imported",
            cw(),
            Store::default(),
            ext_contact(|_| {}),
            Skip(SkipReason::CompanyNotImported),
        ),
        case(
            "contacts without a company come in",
            cw(),
            Store::default(),
            ext_contact(|c| c.company_id = None),
            Create,
        ),
        case(
            "Syncro: every contact comes in",
            System::Syncro,
            Store::default(),
            ext_contact(|c| {
                c.company_id = None;
                c.types.clear()
            }),
            Create,
        ),
        case(
            "the same email, in any case, links",
            cw(),
            with_company().has(crm_contact("crm-p", "ann@acme.example")),
            ext_contact(|_| {}),
            Link("crm-p", "email ann@acme.example"),
        ),
    ]);
}

#[test]
fn a_contact_lands_in_the_list_of_its_company_type_created_once() {
    let conn = conn(cw());
    let mut company = crm_company("crm-c1", "Acme", None, None, 1);
    if let Record::Company(c) = &mut company {
        c.fields.company_type = crate::vocab::CompanyType::parse("prospect").unwrap();
    }
    let store = Store::default().linked(cw(), company, "c1", None);
    let second = ext_contact(|c| {
        c.id = "p2".into();
        c.email = None;
    });
    let mut known = store.known.clone();
    let page = [ext_contact(|_| {}), second];
    let ds = decide_page(&Policy::import(&conn, like(conn.system)), &mut known, Stage::Contacts, &page, at(NOW));
    let lists: Vec<Vec<String>> = ds
        .iter()
        .map(|d| {
            d.new_lists
                .iter()
                .filter_map(|l| if let Record::List(x) = l { Some(x.name.clone()) } else { None })
                .collect()
        })
        .collect();
    assert_eq!(lists, vec![vec!["Prospects".to_string()], vec![]]);
    let Some(Record::Contact(c)) = ds[0].plan.record() else { panic!("{:?}", ds[0].plan) };
    assert_eq!(c.fields.lists, vec!["Prospects".to_string()]);
    let known_list =
        Store::default().linked(cw(), crm_company("crm-c1", "Acme", None, None, 1), "c1", None).list("No Type");
    let d = decide(
        &Policy::import(&conn, like(conn.system)),
        &known_list.known,
        Stage::Contacts,
        &ext_contact(|_| {}),
        at(NOW),
    );
    assert!(d.new_lists.is_empty(), "an existing list is not created again");
    let syncro = self::conn(System::Syncro);
    let d = decide(
        &Policy::import(&syncro, like(System::Syncro)),
        &Known::default(),
        Stage::Contacts,
        &ext_contact(|c| c.company_id = None),
        at(NOW),
    );
    assert!(matches!(&d.new_lists[..], [Record::List(l)] if l.name == "Syncro General"));
}

#[test]
fn members_follow_the_user_rules() {
    use Expect::*;
    let case = |name, store, incoming, expect| Case {
        name,
        system: System::Halo,
        stage: Stage::Users,
        store,
        incoming,
        expect,
    };
    check(vec![
        case("a mapped role comes in", Store::default(), ext_user(|_| {}), Create),
        case(
            "an unmapped role is skipped",
            Store::default(),
            ext_user(|u| u.role = Some("tech".into())),
            Skip(SkipReason::RoleNotMapped),
        ),
        case(
            "no email is skipped",
            Store::default(),
            ext_user(|u| u.email = Some("nope".into())),
            Skip(SkipReason::NoEmail),
        ),
        case(
            "inactive comes first",
            Store::default(),
            ext_user(|u| {
                u.inactive = true;
                u.email = None
            }),
            Skip(SkipReason::Inactive),
        ),
        case(
            "an existing user with that email links",
            Store::default().has(crm_user("crm-u", "JO@msp.example")),
            ext_user(|_| {}),
            Link("crm-u", "email jo@msp.example"),
        ),
        case(
            "a user already linked to another member fails, naming it",
            Store::default().linked(System::Halo, crm_user("crm-u", "jo@msp.example"), "m0", None),
            ext_user(|_| {}),
            Fail("already linked to member m0"),
        ),
    ]);
}

#[test]
fn catalog_items_and_activities_follow_their_rules() {
    use Expect::*;
    let people = || {
        Store::default().linked(cw(), crm_contact("crm-p", "ann@acme.example"), "p1", None).linked(
            cw(),
            crm_user("crm-u", "jo@msp.example"),
            "m1",
            None,
        )
    };
    check(vec![
        Case {
            name: "a mapped catalog item comes in",
            system: cw(),
            stage: Stage::Solutions,
            store: Store::default(),
            incoming: ext_solution(|_| {}),
            expect: Create,
        },
        Case {
            name: "an unmapped category is skipped",
            system: cw(),
            stage: Stage::Solutions,
            store: Store::default(),
            incoming: ext_solution(|s| s.category_id = Some("x".into())),
            expect: Skip(SkipReason::CategoryNotMapped),
        },
        Case {
            name: "an activity with its contact and creator comes in",
            system: cw(),
            stage: Stage::Activities,
            store: people(),
            incoming: ext_activity(|_| {}),
            expect: Create,
        },
        Case {
            name: "an unmapped activity type is skipped",
            system: cw(),
            stage: Stage::Activities,
            store: people(),
            incoming: ext_activity(|a| a.type_id = Some("quote".into())),
            expect: Skip(SkipReason::TypeNotMapped),
        },
        Case {
            name: "the contact must be in the CRM",
            system: cw(),
            stage: Stage::Activities,
            store: people(),
            incoming: ext_activity(|a| a.contact_id = Some("p9".into())),
            expect: Skip(SkipReason::ContactNotInCrm),
        },
        Case {
            name: "the creator must be linked",
            system: cw(),
            stage: Stage::Activities,
            store: people(),
            incoming: ext_activity(|a| a.created_by = Some("m9".into())),
            expect: Skip(SkipReason::CreatorNotLinked),
        },
    ]);
}

#[test]
fn opportunities_all_come_in_and_link_what_exists() {
    let conn = conn(System::Salesforce);
    let store = Store::default().linked(System::Salesforce, crm_company("crm-c1", "Acme", None, None, 1), "c1", None);
    let d = decide(
        &Policy::import(&conn, like(conn.system)),
        &store.known,
        Stage::Opportunities,
        &ext_opportunity(|_| {}),
        at(NOW),
    );
    let Plan::Create { record: Record::Opportunity(o), .. } = &d.plan else { panic!("{:?}", d.plan) };
    assert_eq!(o.company, Some(RecordId::from_raw("crm-c1")));
    assert_eq!(o.salesperson, None, "an unlinked salesperson is left empty");
    assert_eq!(o.status.as_deref(), Some("open"));
}

#[test]
fn a_re_imported_opportunity_changes_only_the_fields_its_system_updates() {
    let renamed = || {
        ext_opportunity(|o| {
            o.name = "Renewal 2".into();
            o.status_id = Some("won".into());
            o.close_date = Some("2024-07-01".into());
            o.value = Some(250.0);
            o.notes = Some("changed".into());
            o.stage = Some("Closed".into());
            o.updated_at = Some("2024-03-01T00:00:00Z".into());
        })
    };
    for (system, fields) in [
        (
            System::ConnectWise,
            vec!["close_date", "lifetime_value", "line_items", "name", "notes", "stage", "status", "value"],
        ),
        (System::Salesforce, vec!["close_date", "lifetime_value", "name", "status"]),
        (System::Halo, vec!["name", "status"]),
        (System::Syncro, vec!["name", "status"]),
    ] {
        let conn = conn(system);
        let mut known = Known::default();
        let first = decide(
            &Policy::import(&conn, like(conn.system)),
            &known,
            Stage::Opportunities,
            &ext_opportunity(|_| {}),
            at(NOW),
        );
        known.apply(&first);
        let again =
            decide(&Policy::import(&conn, like(conn.system)), &known, Stage::Opportunities, &renamed(), at(NOW + 1));
        let Plan::Update { fields: changed, .. } = &again.plan else { panic!("{system}: {:?}", again.plan) };
        let mut expected: Vec<String> = fields.iter().map(|s| s.to_string()).collect();
        if system == System::ConnectWise {
            expected.retain(|f| f != "line_items");
        }
        assert_eq!(changed, &expected, "{system}");
    }
}

#[test]
fn within_a_page_a_candidate_is_linked_once_and_later_records_see_earlier_ones() {
    let conn = conn(cw());
    let mut known = Store::default().has(crm_company("crm-1", "Acme", Some("555 0100"), None, 1)).known;
    let page = [
        ext_company("c1", "Acme", Some("5550100"), None, &["client"]),
        ext_company("c2", "Acme", Some("5550100"), None, &["client"]),
        ext_company("c1", "Acme", Some("5550100"), None, &["client"]),
    ];
    let ds = decide_page(&Policy::import(&conn, like(conn.system)), &mut known, Stage::Companies, &page, at(NOW));
    assert!(matches!(&ds[0].plan, Plan::Link { record, .. } if record.id().as_str() == "crm-1"));
    assert!(matches!(&ds[1].plan, Plan::Create { .. }), "the candidate is taken: {:?}", ds[1].plan);
    assert!(matches!(&ds[2].plan, Plan::Skip(SkipReason::Unchanged)), "{:?}", ds[2].plan);
}

#[test]
fn deciding_the_same_page_twice_gives_the_same_plans() {
    let conn = conn(cw());
    let page =
        [ext_company("c1", "Acme", None, None, &["client"]), ext_company("c2", "Globex", None, None, &["prospect"])];
    let a =
        decide_page(&Policy::import(&conn, like(conn.system)), &mut Known::default(), Stage::Companies, &page, at(NOW));
    let b =
        decide_page(&Policy::import(&conn, like(conn.system)), &mut Known::default(), Stage::Companies, &page, at(NOW));
    assert_eq!(a, b);
}

#[test]
fn what_the_load_must_read_matches_what_the_decision_reads() {
    let n = needs(Stage::Contacts, &ext_contact(|_| {}));
    assert_eq!(n.own, Some((RecordKind::Contact, "p1".into())));
    assert_eq!(n.refs, vec![(RecordKind::Company, "c1".to_string())]);
    assert_eq!(n.ref_records, n.refs);
    assert_eq!(n.lookups, vec![(RecordKind::Contact, LookupField::Email, "ann@acme.example".to_string())]);
    let n = needs(Stage::Companies, &company_with(|_| {}));
    let fields: Vec<LookupField> = n.lookups.iter().map(|l| l.1).collect();
    assert_eq!(fields, vec![LookupField::Phone, LookupField::Website, LookupField::Name]);
    let n = needs(Stage::Activities, &ext_activity(|_| {}));
    assert_eq!(n.refs.len(), 3);
    assert!(n.lookups.is_empty() && n.ref_records.is_empty());
}

#[test]
fn an_incoming_change_equal_to_what_was_pushed_is_an_echo() {
    let mine = crm_company("crm-1", "Acme", Some("+1 555 0100"), Some("acme.example"), 1);
    let mut pushed_state = mine.clone();
    if let Record::Company(c) = &mut pushed_state {
        c.fields.name = "Acme Ltd".into();
        c.fields.company_type = crate::vocab::CompanyType::parse("client").unwrap();
    }
    let pushed = field_hashes(&pushed_state);
    let store = Store::default().linked(cw(), mine, "c1", Some("2024-01-01T00:00:00Z")).ledger(
        RecordKind::Company,
        "c1",
        |l| {
            l.pushed = pushed;
            l.pushed_at = l.pulled_at.map(|at| at.plus_seconds(60));
        },
    );
    let incoming = company_with(|c| {
        c.name = "Acme Ltd".into();
        c.updated_at = Some("2024-02-01T00:00:00Z".into());
    });
    let other_field = company_with(|c| {
        c.name = "Acme Ltd".into();
        c.website = Some("acme-ltd.example".into());
        c.updated_at = Some("2024-02-01T00:00:00Z".into());
    });
    check(vec![
        Case {
            name: "echo",
            system: cw(),
            stage: Stage::Companies,
            store: store.clone(),
            incoming,
            expect: Expect::Echo,
        },
        Case {
            name: "a change of another field beside the pushed values is a change",
            system: cw(),
            stage: Stage::Companies,
            store,
            incoming: other_field,
            expect: Expect::Update(&["company_type", "name", "website"]),
        },
    ]);
}

#[test]
fn values_equal_to_an_older_push_after_a_later_pull_are_not_an_echo() {
    let mine = crm_company("crm-1", "Acme", Some("+1 555 0100"), Some("acme.example"), 1);
    let store = Store::default().linked(cw(), mine.clone(), "c1", Some("2024-01-01T00:00:00Z")).ledger(
        RecordKind::Company,
        "c1",
        |l| {
            l.pushed = field_hashes(&mine);
            l.pushed_at = l.pulled_at.map(|at| at.plus_seconds(-60));
        },
    );
    let incoming = company_with(|c| {
        c.name = "Acme".into();
        c.updated_at = Some("2024-02-01T00:00:00Z".into());
    });
    let conn = conn(cw());
    let d = decide(&Policy::import(&conn, like(cw())), &store.known, Stage::Companies, &incoming, at(NOW));
    assert!(!matches!(d.plan, Plan::Echo { .. }), "{:?}", d.plan);
}

/// A company linked at `base`, then changed in the CRM (`crm`) at `crm_at`, and the
/// external record as it now comes in.
fn three_way(crm: impl FnOnce(&mut CompanyFields), crm_at: i64, ext: impl FnOnce(&mut ExtCompany)) -> Plan {
    let connection = conn(cw());
    let mut base = crm_company("crm-1", "Acme", Some("+1 555 0100"), Some("acme.example"), 1);
    if let Record::Company(c) = &mut base {
        c.fields.company_type = crate::vocab::CompanyType::parse("client").unwrap();
    }
    let mut store = Store::default().linked(cw(), base, "c1", Some("2024-01-01T00:00:00Z"));
    if let Some(Record::Company(c)) = store.known.records.get_mut(&(RecordKind::Company, RecordId::from_raw("crm-1"))) {
        crm(&mut c.fields);
        c.meta.updated_at = at(crm_at);
    }
    let policy = Policy { conn: &connection, described: like(System::ConnectWise), merge: Merge::ThreeWay };
    decide(&policy, &store.known, Stage::Companies, &company_with(ext), at(NOW)).plan
}

#[test]
fn a_three_way_merge_takes_each_side_s_own_changes() {
    let plan = three_way(
        |c| c.phone = Some("+1 555 0199".into()),
        10,
        |c| {
            c.name = "Acme Ltd".into();
            c.updated_at = Some("2024-02-01T00:00:00Z".into());
        },
    );
    let Plan::Update { record: Record::Company(c), fields, .. } = &plan else { panic!("{plan:?}") };
    assert_eq!(c.fields.name, "Acme Ltd", "the external change comes in");
    assert_eq!(c.fields.phone.as_deref(), Some("+1 555 0199"), "the CRM change stays");
    assert_eq!(fields, &vec!["name".to_string()]);
}

#[test]
fn a_field_cleared_on_one_side_is_cleared_on_the_other_and_a_clear_against_a_change_is_a_conflict() {
    // The system clears the website; the CRM left it alone: it is cleared in the CRM.
    let plan = three_way(
        |_| {},
        10,
        |c| {
            c.website = None;
            c.updated_at = Some("2024-02-01T00:00:00Z".into());
        },
    );
    let Plan::Update { record: Record::Company(c), fields, .. } = &plan else { panic!("{plan:?}") };
    assert_eq!((c.fields.website.as_deref(), fields.as_slice()), (None, &["website".to_string()][..]));

    // The CRM cleared the phone; the system did not touch it: the CRM's clear stays.
    let plan = three_way(|c| c.phone = None, 10, |c| c.updated_at = Some("2024-02-01T00:00:00Z".into()));
    assert!(matches!(&plan, Plan::Refresh { .. }), "nothing for the CRM to take: {plan:?}");

    // The CRM cleared the phone, the system changed it later: the change wins, the clear
    // is the logged loser.
    let plan = three_way(
        |c| c.phone = None,
        10,
        |c| {
            c.phone = Some("+1 555 0142".into());
            c.updated_at = Some("2024-02-01T00:00:00Z".into());
        },
    );
    let Plan::Conflict { record: Record::Company(c), conflicts, .. } = &plan else { panic!("{plan:?}") };
    assert_eq!(c.fields.phone.as_deref(), Some("+1 555 0142"));
    assert_eq!((conflicts[0].field.as_str(), &conflicts[0].loser), ("phone", &serde_json::Value::Null));
}

#[test]
fn a_field_changed_on_both_sides_goes_to_the_newer_side_and_the_crm_on_a_tie() {
    let ext_at = Timestamp::parse("2024-02-01T00:00:00Z").unwrap().unix();
    let ext = |c: &mut ExtCompany| {
        c.name = "Acme External".into();
        c.updated_at = Some("2024-02-01T00:00:00Z".into());
    };
    for (crm_at, external_wins) in [(ext_at - 60, true), (ext_at + 60, false), (ext_at, false)] {
        let plan = three_way(|c| c.name = "Acme CRM".into(), crm_at, ext);
        let Plan::Conflict { record: Record::Company(c), conflicts, .. } = &plan else { panic!("{plan:?}") };
        let (winner, loser) = if external_wins { ("Acme External", "Acme CRM") } else { ("Acme CRM", "Acme External") };
        assert_eq!(c.fields.name, winner, "crm at {crm_at}");
        assert_eq!(
            conflicts,
            &vec![FieldConflict {
                field: "name".into(),
                external_won: external_wins,
                loser: loser.into(),
                crm_at: Timestamp::from_unix(crm_at).unwrap(),
                external_at: Some(Timestamp::from_unix(ext_at).unwrap()),
            }]
        );
    }
}

// ---- the way out: decide_push

/// A system that writes a company's name, phone and website (and nothing else).
const WRITES_COMPANIES: Description = Description {
    writable: &[(RecordKind::Company, &["name", "phone", "website"])],
    created_only: &[],
    ..crate::describe::fixtures::TYPED
};

/// A ledger of `record` linked to "c1", pulled at `pulled_at`.
fn pulled_ledger(record: &Record, pulled_at: i64) -> Ledger {
    Ledger::pulled(cw(), record, "c1", Some("2024-01-01T00:00:00Z".into()), at(pulled_at))
}

fn with_phone(record: &Record, phone: &str) -> Record {
    let mut r = record.clone();
    if let Record::Company(c) = &mut r {
        c.fields.phone = Some(phone.into());
    }
    r
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn the_way_out_creates_updates_or_leaves_a_record_by_its_ledger() {
    let base = crm_company("crm-1", "Acme", Some("+1 555 0100"), Some("acme.example"), 1);
    let pulled = pulled_ledger(&base, 10);
    let edited = with_phone(&base, "+1 555 0199");
    let pushed = pulled.repushed(&edited, &strings(&["phone"]), None, at(20));
    let back_again = with_phone(&base, "+1 555 0100");
    let mut only_unwritable = base.clone();
    if let Record::Company(c) = &mut only_unwritable {
        c.fields.company_type = crate::vocab::CompanyType::parse("client").unwrap();
    }
    let user = crm_user("u-1", "jo@msp.example");
    let cases: Vec<(&str, &Record, Option<&Ledger>, bool, Push)> = vec![
        ("a kind the system is not written is skipped", &user, None, true, Push::Skip(SkipReason::NotWritten)),
        (
            "an unlinked record is created with its writable fields that hold a value",
            &base,
            None,
            true,
            Push::Create { fields: strings(&["name", "phone", "website"]) },
        ),
        (
            "an unlinked record is skipped where creating is not allowed",
            &base,
            None,
            false,
            Push::Skip(SkipReason::NotLinked),
        ),
        (
            "a CRM edit since the pull sends the edited field only",
            &edited,
            Some(&pulled),
            false,
            Push::Update { external_id: "c1".into(), fields: strings(&["phone"]) },
        ),
        ("a record equal to what the pull wrote is our own echo", &base, Some(&pulled), false, Push::Echo),
        (
            "a record equal to what was pushed is unchanged",
            &edited,
            Some(&pushed),
            false,
            Push::Skip(SkipReason::Unchanged),
        ),
        (
            "a field edited back to its pulled value after a push is sent again",
            &back_again,
            Some(&pushed),
            false,
            Push::Update { external_id: "c1".into(), fields: strings(&["phone"]) },
        ),
        (
            "a change to a field the system does not write sends nothing",
            &only_unwritable,
            Some(&pulled),
            false,
            Push::Echo,
        ),
    ];
    for (name, record, ledger, may_create, expected) in cases {
        assert_eq!(decide_push(&WRITES_COMPANIES, record, ledger, may_create), expected, "{name}");
    }
}

#[test]
fn an_update_never_sends_a_field_the_system_takes_only_on_create_but_a_create_does() {
    const PHONE_ON_CREATE: Description =
        Description { created_only: &[(RecordKind::Company, &["phone"])], ..WRITES_COMPANIES };
    let base = crm_company("crm-1", "Acme", Some("+1 555 0100"), Some("acme.example"), 1);
    let pulled = pulled_ledger(&base, 10);
    let phone_only = with_phone(&base, "+1 555 0199");
    let mut phone_and_name = phone_only.clone();
    if let Record::Company(c) = &mut phone_and_name {
        c.fields.name = "Acme Two".into();
    }
    assert_eq!(decide_push(&PHONE_ON_CREATE, &phone_only, Some(&pulled), false), Push::Skip(SkipReason::Unchanged));
    assert_eq!(
        decide_push(&PHONE_ON_CREATE, &phone_and_name, Some(&pulled), false),
        Push::Update { external_id: "c1".into(), fields: strings(&["name"]) }
    );
    assert_eq!(
        decide_push(&PHONE_ON_CREATE, &phone_only, None, true),
        Push::Create { fields: strings(&["name", "phone", "website"]) }
    );
}

#[test]
fn a_push_after_the_pull_becomes_the_base_of_the_three_way_merge() {
    let base = crm_company("crm-1", "Acme", Some("+1 555 0100"), None, 1);
    let edited = with_phone(&base, "+1 555 0199");
    let ledger = pulled_ledger(&base, 10).repushed(&edited, &strings(&["phone"]), None, at(20));
    assert_eq!(ledger.base().get("phone"), field_hashes(&edited).get("phone"), "the pushed value is the base");
    assert_eq!(ledger.base().get("name"), ledger.pulled.get("name"), "fields not pushed keep the pulled base");
    let older_push = Ledger { pushed_at: Some(at(5)), ..ledger.clone() };
    assert_eq!(older_push.base(), older_push.pulled, "a push before the last pull is superseded by it");
}
