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
use crate::table::RecordStore;

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

/// The links and look-ups one external record of `stage` needs.
fn wants(stage: Stage, record: &ExternalRecord, links: &mut BTreeSet<LinkKey>, lookups: &mut BTreeSet<LookupKey>) {
    if let Some(id) = record.id() {
        links.insert((stage.kind(), id.to_string()));
    }
    let mut link = |kind: RecordKind, id: &Option<String>| {
        if let Some(id) = id {
            links.insert((kind, id.clone()));
        }
    };
    let mut lookup = |kind: RecordKind, field: LookupField, key: Option<String>| {
        if let Some(key) = key {
            lookups.insert((kind, field, key));
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
}

impl PageView {
    /// Loads what `records` (one page of `stage`) need: their links and look-up entries
    /// in one round of concurrent reads, then every record those name in one batch read.
    pub(crate) async fn load(
        store: &RecordStore,
        tenant: &TenantId,
        system: System,
        stage: Stage,
        records: &[ExternalRecord],
    ) -> Result<Self, DomainError> {
        let (mut links, mut lookups) = (BTreeSet::new(), BTreeSet::new());
        for r in records {
            wants(stage, r, &mut links, &mut lookups);
        }
        let links: Vec<LinkKey> = links.into_iter().collect();
        let lookups: Vec<LookupKey> = lookups.into_iter().collect();
        let (found_links, found_lookups) = futures::join!(
            store.link_ids(tenant, system, &links),
            futures::future::join_all(lookups.iter().map(|(k, f, v)| store.lookup_ids(tenant, *k, *f, v))),
        );
        let found_links = found_links?;
        let mut view = Self {
            store: store.clone(),
            tenant: tenant.clone(),
            system,
            links: links.into_iter().map(|k| (k.clone(), found_links.get(&k).cloned())).collect(),
            records: HashMap::new(),
            lookups: HashMap::new(),
        };
        for (key, ids) in lookups.into_iter().zip(found_lookups) {
            view.lookups.insert(key, ids?);
        }
        // Every record named: the linked ones (own and referenced) and the candidates.
        let mut wanted: BTreeSet<RecordKey> = BTreeSet::new();
        for ((kind, _), id) in &view.links {
            if let Some(id) = id {
                wanted.insert((*kind, id.clone()));
            }
        }
        for ((kind, _, _), ids) in &view.lookups {
            wanted.extend(ids.iter().map(|id| (*kind, id.clone())));
        }
        let wanted: Vec<RecordKey> = wanted.into_iter().collect();
        let found = store.records_by_id(tenant, &wanted).await?;
        for key in wanted {
            let record = found.get(&key).cloned();
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
        out.sort_by(|a, b| a.meta().created_at.cmp(&b.meta().created_at).then_with(|| a.id().cmp(b.id())));
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
