//! The "load" of load -> decide -> write: everything a page's decisions read, fetched
//! from the store in a few batched rounds before any record is decided, into the
//! [`Known`] that the pure [`crate::reconcile::decide`] takes. What to read comes from
//! [`crate::reconcile::needs`], the same rules the decision follows.

use std::collections::BTreeSet;

use crate::describe::Description;
use crate::error::DomainError;
use crate::external::ExternalRecord;
use crate::ids::{RecordKind, Stage, TenantId};
use crate::mapping::Connection;
use crate::reconcile::{Known, LinkKey, LookupKey, Needs, RecordKey, list_id, needs, possible_lists};
use crate::table::RecordStore;

/// Loads what `records` (one page of `stage`) need in three sequential rounds:
/// 1. the ledger entries of the records and of those they refer to (one batch read);
/// 2. concurrently, the CRM records linked to the page's own records and the companies
///    contacts refer to (one batch read) and the look-ups of the records not linked yet
///    (one query per value, all at once; a re-import whose records are all linked makes none);
/// 3. the candidates the look-ups found and, for contacts, the lists they may land in
///    (one batch read).
pub(crate) async fn load(
    store: &RecordStore,
    tenant: &TenantId,
    conn: &Connection,
    described: &Description,
    stage: Stage,
    records: &[ExternalRecord],
) -> Result<Known, DomainError> {
    let system = conn.system;
    let wanted: Vec<Needs> = records.iter().map(|r| needs(stage, r)).collect();
    let links: Vec<LinkKey> =
        wanted.iter().flat_map(|w| w.own.iter().chain(&w.refs).cloned()).collect::<BTreeSet<_>>().into_iter().collect();
    let mut known = Known { ledgers: store.ledgers(tenant, system, &links).await?, ..Known::default() };

    let linked = |key: &LinkKey| known.ledgers.get(key).map(|l| (key.0, l.crm_id.clone()));
    let records_wanted: Vec<RecordKey> = wanted
        .iter()
        .flat_map(|w| w.own.iter().chain(&w.ref_records))
        .filter_map(linked)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let lookups: Vec<LookupKey> = wanted
        .iter()
        .filter(|w| w.own.as_ref().is_none_or(|own| !known.ledgers.contains_key(own)))
        .flat_map(|w| w.lookups.iter().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let (found_lookups, found_records) = futures::join!(
        futures::future::join_all(lookups.iter().map(|(k, f, v)| store.lookup_ids(tenant, *k, *f, v))),
        store.records_by_id(tenant, &records_wanted),
    );
    known.records = found_records?;
    for (key, ids) in lookups.into_iter().zip(found_lookups) {
        known.lookups.insert(key, ids?);
    }

    let mut round3: BTreeSet<RecordKey> = known
        .lookups
        .iter()
        .flat_map(|((kind, _, _), ids)| ids.iter().map(|id| (*kind, id.clone())))
        .filter(|key| !known.records.contains_key(key))
        .collect();
    if stage == Stage::Contacts {
        round3.extend(
            possible_lists(described, known.records.values()).iter().map(|name| (RecordKind::List, list_id(name))),
        );
    }
    let round3: Vec<RecordKey> = round3.into_iter().collect();
    for (key, record) in store.records_by_id(tenant, &round3).await? {
        if key.0 == RecordKind::List {
            if let crate::records::Record::List(l) = &record {
                known.lists.insert(l.name.clone());
            }
        } else {
            known.records.insert(key, record);
        }
    }
    Ok(known)
}
