//! The store as one import page sees it: the links, records and look-up entries the page's
//! records need, loaded in a few batched round trips before any record is decided (the
//! "load" of load -> decide -> write), then kept current as the page writes, so a record
//! sees what the records before it in the page did. A read the load did not foresee falls
//! back to the store and is remembered; after a conflicting write the view is dropped and
//! rebuilt from the store as needed.

use std::collections::{BTreeSet, HashMap};

use crate::error::DomainError;
use crate::external::ExternalRecord;
use crate::ids::{RecordId, RecordKind, Stage, System, TenantId};
use crate::normalise::{email_key, name_key, phone_key, website_key};
use crate::records::{LookupField, Record};
use crate::table::{RecordStore, oldest_first};

type LinkKey = (RecordKind, String);
type RecordKey = (RecordKind, RecordId);
type LookupKey = (RecordKind, LookupField, String);

/// What one page reads from the store (see the module docs).
pub(crate) struct PageView {
    store: RecordStore,
    tenant: TenantId,
    system: System,
    /// External id -> CRM id (`None`: known not to be linked).
    links: HashMap<LinkKey, Option<RecordId>>,
    /// CRM records by id (`None`: known not to exist).
    records: HashMap<RecordKey, Option<Record>>,
    /// Normalised look-up value -> ids of the records holding it.
    lookups: HashMap<LookupKey, Vec<RecordId>>,
}

/// What one external record of `stage` needs: its own link, the links it refers to, and
/// the look-ups that find a CRM record to link it to (needed only while it is unlinked).
struct Wants {
    own: Option<LinkKey>,
    refs: Vec<LinkKey>,
    lookups: Vec<LookupKey>,
}

fn wants(stage: Stage, record: &ExternalRecord) -> Wants {
    let own = record.id().map(|id| (stage.kind(), id.to_string()));
    let mut refs = Vec::new();
    let mut link = |kind: RecordKind, id: &Option<String>| {
        if let Some(id) = id {
            refs.push((kind, id.clone()));
        }
    };
    let mut lookups = Vec::new();
    let mut lookup = |kind: RecordKind, field: LookupField, key: Option<String>| {
        if let Some(key) = key {
            lookups.push((kind, field, key));
        }
    };
    match record {
        ExternalRecord::User(u) => {
            lookup(RecordKind::User, LookupField::Email, u.email.as_deref().and_then(email_key));
        }
        ExternalRecord::Company(c) => {
            lookup(RecordKind::Company, LookupField::Phone, c.phone.as_deref().and_then(phone_key));
            lookup(RecordKind::Company, LookupField::Website, c.website.as_deref().and_then(website_key));
            lookup(RecordKind::Company, LookupField::Name, name_key(&c.name));
        }
        ExternalRecord::Contact(c) => {
            link(RecordKind::Company, &c.company_id);
            lookup(RecordKind::Contact, LookupField::Email, c.email.as_deref().and_then(email_key));
        }
        ExternalRecord::Activity(a) => {
            link(RecordKind::Contact, &a.contact_id);
            link(RecordKind::User, &a.created_by);
            link(RecordKind::Company, &a.company_id);
        }
        ExternalRecord::Opportunity(o) => {
            link(RecordKind::User, &o.salesperson_id);
            link(RecordKind::Company, &o.company_id);
            link(RecordKind::Contact, &o.contact_id);
        }
        ExternalRecord::Solution(_) | ExternalRecord::Unreadable(_) => {}
    }
    Wants { own, refs, lookups }
}

impl PageView {
    /// Loads what `records` (one page of `stage`) need in at most three rounds: their links
    /// (one batch read); then, concurrently, the linked records (one batch read) and the
    /// look-ups of the records not linked yet (one query per value; a re-import whose
    /// records are all linked makes none); then the candidates those found (one batch read).
    pub(crate) async fn load(
        store: &RecordStore,
        tenant: &TenantId,
        system: System,
        stage: Stage,
        records: &[ExternalRecord],
    ) -> Result<Self, DomainError> {
        let wanted: Vec<Wants> = records.iter().map(|r| wants(stage, r)).collect();
        let links: Vec<LinkKey> = wanted
            .iter()
            .flat_map(|w| w.own.iter().chain(&w.refs).cloned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let found_links = store.link_ids(tenant, system, &links).await?;
        let mut view = Self {
            store: store.clone(),
            tenant: tenant.clone(),
            system,
            links: links.into_iter().map(|k| (k.clone(), found_links.get(&k).cloned())).collect(),
            records: HashMap::new(),
            lookups: HashMap::new(),
        };
        let unlinked = |w: &&Wants| w.own.as_ref().is_none_or(|own| view.links.get(own).is_none_or(Option::is_none));
        let lookups: Vec<LookupKey> = wanted
            .iter()
            .filter(unlinked)
            .flat_map(|w| w.lookups.iter().cloned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let linked: Vec<RecordKey> =
            view.links.iter().filter_map(|((kind, _), id)| id.clone().map(|id| (*kind, id))).collect();
        let (found_lookups, found_linked) = futures::join!(
            futures::future::join_all(lookups.iter().map(|(k, f, v)| store.lookup_ids(tenant, *k, *f, v))),
            store.records_by_id(tenant, &linked),
        );
        let mut found = found_linked?;
        for key in linked {
            let record = found.remove(&key);
            view.records.insert(key, record);
        }
        for (key, ids) in lookups.into_iter().zip(found_lookups) {
            view.lookups.insert(key, ids?);
        }
        let candidates: Vec<RecordKey> = view
            .lookups
            .iter()
            .flat_map(|((kind, _, _), ids)| ids.iter().map(|id| (*kind, id.clone())))
            .filter(|key| !view.records.contains_key(key))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut found = store.records_by_id(tenant, &candidates).await?;
        for key in candidates {
            let record = found.remove(&key);
            view.records.insert(key, record);
        }
        Ok(view)
    }

    /// The CRM id linked to an external record.
    pub(crate) async fn linked_id(&mut self, kind: RecordKind, ext_id: &str) -> Result<Option<RecordId>, DomainError> {
        let key = (kind, ext_id.to_string());
        if let Some(id) = self.links.get(&key) {
            return Ok(id.clone());
        }
        let id = self.store.linked_id(&self.tenant, self.system, kind, ext_id).await?;
        self.links.insert(key, id.clone());
        Ok(id)
    }

    /// A CRM record by id.
    pub(crate) async fn record(&mut self, kind: RecordKind, id: &RecordId) -> Result<Option<Record>, DomainError> {
        let key = (kind, id.clone());
        if let Some(r) = self.records.get(&key) {
            return Ok(r.clone());
        }
        let r = self.store.record(&self.tenant, kind, id).await?;
        self.records.insert(key, r.clone());
        Ok(r)
    }

    /// The CRM record linked to an external record.
    pub(crate) async fn linked(&mut self, kind: RecordKind, ext_id: &str) -> Result<Option<Record>, DomainError> {
        match self.linked_id(kind, ext_id).await? {
            Some(id) => self.record(kind, &id).await,
            None => Ok(None),
        }
    }

    /// Records of `kind` whose normalised `field` is `value`, oldest first (as
    /// [`RecordStore::find`] orders them).
    pub(crate) async fn find(
        &mut self,
        kind: RecordKind,
        field: LookupField,
        value: &str,
    ) -> Result<Vec<Record>, DomainError> {
        let key = (kind, field, value.to_string());
        let ids = match self.lookups.get(&key) {
            Some(ids) => ids.clone(),
            None => {
                let ids = self.store.lookup_ids(&self.tenant, kind, field, value).await?;
                self.lookups.insert(key, ids.clone());
                ids
            }
        };
        let mut out = Vec::with_capacity(ids.len());
        for id in &ids {
            if let Some(r) = self.record(kind, id).await? {
                out.push(r);
            }
        }
        oldest_first(&mut out);
        Ok(out)
    }

    /// Takes in a write the page made: `saved` (replacing `previous`, if any) and its new link.
    pub(crate) fn wrote(&mut self, previous: Option<&Record>, saved: &Record, new_link: Option<&(System, String)>) {
        let (kind, id) = (saved.kind(), saved.id().clone());
        if let Some((_, ext_id)) = new_link {
            self.links.insert((kind, ext_id.clone()), Some(id.clone()));
        }
        let old: BTreeSet<(LookupField, String)> =
            previous.map(|p| p.lookup_keys().into_iter().collect()).unwrap_or_default();
        let new: BTreeSet<(LookupField, String)> = saved.lookup_keys().into_iter().collect();
        for (field, value) in old.difference(&new) {
            if let Some(ids) = self.lookups.get_mut(&(kind, *field, value.clone())) {
                ids.retain(|i| i != &id);
            }
        }
        for (field, value) in new.difference(&old) {
            if let Some(ids) = self.lookups.get_mut(&(kind, *field, value.clone()))
                && !ids.contains(&id)
            {
                ids.push(id.clone());
            }
        }
        self.records.insert((kind, id), Some(saved.clone()));
    }

    /// Forgets everything (after a conflicting write: someone else changed the store).
    pub(crate) fn forget(&mut self) {
        self.links.clear();
        self.records.clear();
        self.lookups.clear();
    }
}
