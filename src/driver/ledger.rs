//! The write ledger: every write the workload was told succeeded, with the
//! content it wrote, so a cutover rehearsal can prove afterwards that no
//! acknowledged write was lost or changed on the side that is authoritative.
//!
//! An entry id is only ever written by the worker that created it (adjusts
//! and voids act on the worker's own entries), so the ledger's state of an id
//! is the state of its last acknowledged write. A change whose outcome is
//! unknown (an adjust or void that failed or timed out: it may have
//! committed before the error) makes the id's state unknown: checks made
//! while the workload runs count such ids, and the final check resolves each
//! by reading its row (the old content, or what the change would have made
//! of it, is fine; anything else is not). A definite "not found" for an
//! entry whose last acknowledged write put it there is a lost write: it
//! counts as missing whatever the row holds later.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;
use tokio_postgres::GenericClient;

use crate::error::{DbContext, Result};
use crate::repo::finance::{EntryKind, NewEntry};
use crate::schema::Mode;

/// What an entry must hold: the repository's own record of an entry.
type Content = NewEntry;

/// FNV-1a of an entry's canonical text: the content checksum the report shows.
pub fn checksum(e: &NewEntry) -> u64 {
    describe(e).bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// An entry's content, as the ledger's examples print it.
pub fn describe(e: &NewEntry) -> String {
    format!(
        "{} property {} {} {} {} cents vendor {:?} description {:?}",
        e.kind.name(),
        e.property_id,
        e.business_date,
        e.category,
        e.amount_cents,
        e.vendor,
        e.description
    )
}

/// A change sent for an entry, not yet acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingWrite {
    /// A new amount.
    Amount(i64),
    Void,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Present(Content),
    Deleted,
    /// A change of it is in flight, failed, or was abandoned (a timeout drops
    /// the request): it may or may not have committed. Keeps the content
    /// last acknowledged and the change.
    Unknown(Option<Content>, Option<PendingWrite>),
    /// The repository answered "not found" for an entry acknowledged as present.
    Lost(Content),
}

impl State {
    fn last_acknowledged(self) -> Option<Content> {
        match self {
            State::Present(c) | State::Lost(c) => Some(c),
            State::Unknown(c, _) => c,
            State::Deleted => None,
        }
    }
}

#[derive(Debug, Clone)]
struct Expected {
    org: i64,
    state: State,
    /// Ledger sequence number of the write that set this state.
    seq: u64,
}

/// Every acknowledged write of a run.
#[derive(Debug, Default)]
pub struct Ledger {
    entries: Mutex<HashMap<(EntryKind, i64), Expected>>,
    seq: AtomicU64,
    acknowledged: AtomicU64,
}

impl Ledger {
    /// Move one entry to the state `next` makes of its last one, under a new
    /// sequence number.
    fn update(&self, kind: EntryKind, id: i64, org: i64, next: impl FnOnce(State) -> State) {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let mut m = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let slot = m.entry((kind, id)).or_insert(Expected {
            org,
            state: State::Unknown(None, None),
            seq,
        });
        slot.seq = seq;
        slot.state = next(std::mem::replace(
            &mut slot.state,
            State::Unknown(None, None),
        ));
    }

    /// An entry was recorded (alone or in a batch).
    pub fn recorded(&self, id: i64, org: i64, e: &NewEntry) {
        self.acknowledged.fetch_add(1, Ordering::Relaxed);
        self.update(e.kind, id, org, |_| State::Present(e.clone()));
    }

    /// A change of an entry is about to be sent: until it is acknowledged
    /// the entry's state is unknown, and stays so if the change fails or is
    /// abandoned.
    pub fn pending(&self, kind: EntryKind, id: i64, org: i64, change: PendingWrite) {
        self.update(kind, id, org, |last| match last {
            // A lost entry stays lost: nothing later undoes that evidence.
            State::Lost(c) => State::Lost(c),
            last => State::Unknown(last.last_acknowledged(), Some(change)),
        });
    }

    /// The repository answered "not found" for a change of this entry: if its
    /// last acknowledged write put it there, that write was lost.
    pub fn not_found(&self, kind: EntryKind, id: i64, org: i64) {
        self.update(kind, id, org, |last| match last.last_acknowledged() {
            Some(c) => State::Lost(c),
            None => State::Deleted,
        });
    }

    /// An adjust of the amount was acknowledged.
    pub fn adjusted(&self, kind: EntryKind, id: i64, org: i64, amount_cents: i64) {
        self.acknowledged.fetch_add(1, Ordering::Relaxed);
        self.update(kind, id, org, |last| match last {
            State::Present(mut c) | State::Unknown(Some(mut c), _) => {
                c.amount_cents = amount_cents;
                State::Present(c)
            }
            // The content was never acknowledged: nothing to hold it to.
            other => other,
        });
    }

    /// A void was acknowledged.
    pub fn voided(&self, kind: EntryKind, id: i64, org: i64) {
        self.acknowledged.fetch_add(1, Ordering::Relaxed);
        self.update(kind, id, org, |last| match last {
            State::Lost(c) => State::Lost(c),
            _ => State::Deleted,
        });
    }

    /// Acknowledged writes so far (one per entry written, adjusted or voided).
    pub fn acknowledged(&self) -> u64 {
        self.acknowledged.load(Ordering::Relaxed)
    }

    /// Check every acknowledged write against `mode`'s tables. Writes still
    /// running may change rows while the check reads them: a row that
    /// disagrees is looked at again after `settle`, and skipped when the
    /// ledger moved on for it meanwhile. `Check::Final` (the workload has
    /// stopped) also resolves every entry of unknown outcome from its row.
    pub async fn check(
        &self,
        client: &impl GenericClient,
        mode: Mode,
        when: Check,
    ) -> Result<LedgerCheck> {
        let (settle, resolve) = match when {
            Check::Live { settle } => (settle, false),
            Check::Final => (Duration::ZERO, true),
        };
        let (snapshot, seq_at) = {
            let m = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            (m.clone(), self.seq.load(Ordering::Relaxed))
        };
        let mut out = LedgerCheck {
            side: mode,
            acknowledged: self.acknowledged(),
            unknown_outcome: snapshot
                .values()
                .filter(|e| matches!(e.state, State::Unknown(Some(_), _)))
                .count() as u64,
            unknown_resolved: resolve,
            ..Default::default()
        };
        let judged = |st: &State| match st {
            State::Unknown(None, _) => false,
            State::Unknown(Some(_), _) => resolve,
            _ => true,
        };
        let mut suspects = Vec::new();
        for kind in [EntryKind::Revenue, EntryKind::Expense] {
            let keys: Vec<(i64, i64)> = snapshot
                .iter()
                .filter(|((k, _), e)| *k == kind && judged(&e.state))
                .map(|((_, id), e)| (e.org, *id))
                .collect();
            for chunk in keys.chunks(5_000) {
                let found = fetch(client, mode, kind, chunk).await?;
                for &(org, id) in chunk {
                    let e = &snapshot[&(kind, id)];
                    out.entries_checked += 1;
                    if let Some(problem) = judge(&e.state, found.get(&id)) {
                        suspects.push((kind, org, id, problem));
                    }
                }
            }
        }
        if !suspects.is_empty() && !settle.is_zero() {
            tokio::time::sleep(settle).await;
        }
        for (kind, org, id, first) in suspects {
            let now = {
                let m = self.entries.lock().unwrap_or_else(|e| e.into_inner());
                m.get(&(kind, id)).cloned()
            };
            let Some(now) = now else { continue };
            if now.seq > seq_at || !judged(&now.state) {
                out.changed_during_check += 1;
                continue;
            }
            // Read the row again: a write acknowledged after the first read
            // is now in the ledger, and one in flight has had `settle` to end.
            let found = fetch(client, mode, kind, &[(org, id)]).await?;
            let Some(problem) = (if settle.is_zero() {
                Some(first)
            } else {
                judge(&now.state, found.get(&id))
            }) else {
                out.changed_during_check += 1;
                continue;
            };
            match problem {
                Problem::Missing => out.missing += 1,
                Problem::Differing => out.differing += 1,
                Problem::Resurrected => out.resurrected += 1,
            }
            if out.examples.len() < 20 {
                let content =
                    |c: &Content| format!("{} (checksum {:016x})", describe(c), checksum(c));
                let expected = match &now.state {
                    State::Present(c) => content(c),
                    State::Lost(c) => format!(
                        "{}, and a later change was answered \"not found\"",
                        content(c)
                    ),
                    State::Unknown(Some(c), change) => format!(
                        "{} with a change of unknown outcome ({change:?})",
                        content(c)
                    ),
                    _ => "deleted".to_string(),
                };
                let actual = found
                    .get(&id)
                    .map(|c| format!("{} (checksum {:016x})", describe(c), checksum(c)))
                    .unwrap_or_else(|| "absent".into());
                out.examples.push(format!(
                    "{} {id} of organization {org}: {problem:?}; acknowledged {expected}; {mode} holds {actual}",
                    kind.name()
                ));
            }
        }
        Ok(out)
    }
}

#[derive(Debug, Clone, Copy)]
enum Problem {
    Missing,
    Differing,
    Resurrected,
}

/// When a check is made.
#[derive(Debug, Clone, Copy)]
pub enum Check {
    /// While the workload runs: a disagreeing row is read again after
    /// `settle`; entries of unknown outcome are counted, not judged.
    Live { settle: Duration },
    /// With the workload stopped: exact, and every entry of unknown outcome
    /// is judged from its row.
    Final,
}

fn judge(expected: &State, found: Option<&Content>) -> Option<Problem> {
    match (expected, found) {
        (State::Present(_), None) => Some(Problem::Missing),
        (State::Present(c), Some(f)) if c != f => Some(Problem::Differing),
        (State::Deleted, Some(_)) => Some(Problem::Resurrected),
        (State::Lost(_), _) => Some(Problem::Missing),
        // The change either committed or it did not: the old content, or
        // what the change makes of it, is fine.
        (State::Unknown(Some(_), Some(PendingWrite::Void)), None) => None,
        (State::Unknown(Some(_), _), None) => Some(Problem::Missing),
        (State::Unknown(Some(c), change), Some(f)) => {
            let changed = match change {
                Some(PendingWrite::Amount(a)) => Some(Content {
                    amount_cents: *a,
                    ..c.clone()
                }),
                _ => None,
            };
            (f != c && changed.as_ref() != Some(f)).then_some(Problem::Differing)
        }
        _ => None,
    }
}

/// The rows of `kind` with these (organization, id) keys in `mode`'s table.
async fn fetch(
    client: &impl GenericClient,
    mode: Mode,
    kind: EntryKind,
    keys: &[(i64, i64)],
) -> Result<HashMap<i64, Content>> {
    let t = mode.tables();
    let (table, vendor) = match kind {
        EntryKind::Revenue => (t.revenue, "NULL::text"),
        EntryKind::Expense => (t.expense, "e.vendor"),
    };
    let sql = format!(
        "SELECT e.id, e.property_id, e.business_date, e.category::text, e.amount_cents, {vendor}, e.description \
           FROM unnest($1::int8[], $2::int8[]) AS k(org, id) \
           JOIN {table} e ON e.organization_id = k.org AND e.id = k.id"
    );
    let orgs: Vec<i64> = keys.iter().map(|k| k.0).collect();
    let ids: Vec<i64> = keys.iter().map(|k| k.1).collect();
    let rows = client
        .query(&sql, &[&orgs, &ids])
        .await
        .db(|| format!("reading acknowledged {} entries from {table}", kind.name()))?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                r.get(0),
                NewEntry {
                    kind,
                    property_id: r.get(1),
                    business_date: r.get(2),
                    category: r.get(3),
                    amount_cents: r.get(4),
                    vendor: r.get(5),
                    description: r.get(6),
                },
            )
        })
        .collect())
}

/// What one check of the ledger found.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerCheck {
    /// The side checked: the authoritative one at the time.
    pub side: Mode,
    /// Acknowledged writes so far (entries written, adjusted or voided).
    pub acknowledged: u64,
    /// Entries whose last acknowledged state was compared.
    pub entries_checked: u64,
    /// Acknowledged entries absent.
    pub missing: u64,
    /// Acknowledged entries present with other content.
    pub differing: u64,
    /// Acknowledged voids whose entry is still there.
    pub resurrected: u64,
    /// Entries whose last change has no known outcome (in flight, failed or
    /// abandoned by a timeout, perhaps after the commit).
    pub unknown_outcome: u64,
    /// Whether those were judged from their rows (the final check) or only
    /// counted (a check while the workload runs).
    pub unknown_resolved: bool,
    /// Entries written again while the check ran: not judged this time.
    pub changed_during_check: u64,
    pub examples: Vec<String>,
}

impl LedgerCheck {
    pub fn ok(&self) -> bool {
        self.missing == 0 && self.differing == 0 && self.resurrected == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::day::Day;

    fn entry(amount: i64) -> NewEntry {
        NewEntry::revenue(7, Day::from_ymd(2026, 10, 31), "rooms", amount)
    }

    #[test]
    fn the_last_acknowledged_write_decides_and_unfinished_changes_are_unknown() {
        let l = Ledger::default();
        l.recorded(1, 3, &entry(100));
        l.pending(EntryKind::Revenue, 1, 3, PendingWrite::Amount(250));
        l.adjusted(EntryKind::Revenue, 1, 3, 250);
        l.recorded(2, 3, &entry(5));
        l.pending(EntryKind::Revenue, 2, 3, PendingWrite::Void);
        l.voided(EntryKind::Revenue, 2, 3);
        // An adjust that never came back (failed, or dropped by a timeout).
        l.recorded(4, 3, &entry(9));
        l.pending(EntryKind::Revenue, 4, 3, PendingWrite::Amount(10));
        // A void answered "not found": the acknowledged entry was lost.
        l.recorded(5, 3, &entry(11));
        l.pending(EntryKind::Revenue, 5, 3, PendingWrite::Void);
        l.not_found(EntryKind::Revenue, 5, 3);
        assert_eq!(l.acknowledged(), 6);
        let m = l.entries.lock().unwrap();
        match &m[&(EntryKind::Revenue, 1)].state {
            State::Present(c) => assert_eq!(c.amount_cents, 250),
            s => panic!("{s:?}"),
        }
        assert_eq!(m[&(EntryKind::Revenue, 2)].state, State::Deleted);
        match &m[&(EntryKind::Revenue, 4)].state {
            State::Unknown(Some(c), Some(PendingWrite::Amount(10))) => {
                assert_eq!(c.amount_cents, 9)
            }
            s => panic!("{s:?}"),
        }
        assert_eq!(m[&(EntryKind::Revenue, 5)].state, State::Lost(entry(11)));
    }

    #[test]
    fn judging_finds_missing_differing_and_resurrected_rows() {
        let c = entry(100);
        let mut other = c.clone();
        other.amount_cents = 101;
        assert!(judge(&State::Present(c.clone()), Some(&c)).is_none());
        assert!(matches!(
            judge(&State::Present(c.clone()), None),
            Some(Problem::Missing)
        ));
        assert!(matches!(
            judge(&State::Present(c.clone()), Some(&other)),
            Some(Problem::Differing)
        ));
        assert!(matches!(
            judge(&State::Deleted, Some(&c)),
            Some(Problem::Resurrected)
        ));
        assert!(judge(&State::Deleted, None).is_none());
        assert_ne!(checksum(&c), checksum(&other));
        // Lost is missing whatever the row holds now.
        assert!(matches!(
            judge(&State::Lost(c.clone()), Some(&c)),
            Some(Problem::Missing)
        ));
        assert!(matches!(
            judge(&State::Lost(c.clone()), None),
            Some(Problem::Missing)
        ));
    }

    #[test]
    fn an_unknown_outcome_is_resolved_by_the_row_old_or_new_content_only() {
        let c = entry(100);
        let adjusted = Content {
            amount_cents: 250,
            ..c.clone()
        };
        let other = Content {
            amount_cents: 7,
            ..c.clone()
        };
        let adjust = State::Unknown(Some(c.clone()), Some(PendingWrite::Amount(250)));
        assert!(judge(&adjust, Some(&c)).is_none(), "not committed");
        assert!(judge(&adjust, Some(&adjusted)).is_none(), "committed");
        assert!(matches!(
            judge(&adjust, Some(&other)),
            Some(Problem::Differing)
        ));
        assert!(matches!(judge(&adjust, None), Some(Problem::Missing)));
        let void = State::Unknown(Some(c.clone()), Some(PendingWrite::Void));
        assert!(judge(&void, None).is_none(), "the void committed");
        assert!(judge(&void, Some(&c)).is_none(), "the void did not commit");
        assert!(matches!(
            judge(&void, Some(&other)),
            Some(Problem::Differing)
        ));
    }
}
