//! Single-tenant statements sent to the organization's own partition.
//!
//! On PostgreSQL 15 a statement on a hash-partitioned parent costs about
//! twice what it costs on a plain table, whichever way it is planned: a
//! custom plan is planned again on every call, and a generic plan locks
//! every partition at executor start-up (64 partitions: 67 relations, 51 of
//! them outside the 16 fast-path slots). The same statement on the
//! organization's leaf partition costs what the plain table costs
//! (`../shared/notes/platform.md`, measured with pgbench).
//!
//! So the repository computes the leaf itself. [`remainder`] is PostgreSQL's
//! own hash partitioning of a bigint key (`hashint8extended` with the hash
//! partition seed, folded as `compute_partition_hash_value` folds one key,
//! modulo the modulus). The leaves are read from the catalog (their bounds,
//! not their names), and before any statement is routed the computation is
//! checked on every parent against the server's `satisfies_hash_partition`
//! for a sample of keys, the extremes among them: where the server
//! disagrees, or the tables are not hash-partitioned by one bigint key with
//! one modulus, statements stay on the parent and the reason is reported.
//!
//! A statement that spans organizations (the portfolio) always names the
//! parent.

use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio_postgres::types::Type;

use super::conn::{Exec, Target};
use crate::schema::FinanceTables;

/// `HASH_PARTITION_SEED` of PostgreSQL's `partition.h`.
const HASH_PARTITION_SEED: u64 = 0x7A5B_2236_7996_DCFD;

/// How long a failed discovery is trusted before the catalog is read again
/// (the partitioned tables may be created while a workload runs: the cutover).
const RETRY: Duration = Duration::from_secs(5);

pub use crate::schema::PartitionRouting;

fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(4);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(6);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(8);
    *b = b.wrapping_add(*a);
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(16);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(19);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(4);
    *b = b.wrapping_add(*a);
}

fn finish(a: &mut u32, b: &mut u32, c: &mut u32) {
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(14));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(11));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(25));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(16));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(4));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(14));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(24));
}

/// `hash_bytes_uint32_extended` (Bob Jenkins' lookup3, as PostgreSQL has it).
fn hash_uint32_extended(k: u32, seed: u64) -> u64 {
    let init = 0x9e37_79b9u32.wrapping_add(4).wrapping_add(3_923_095);
    let (mut a, mut b, mut c) = (init, init, init);
    if seed != 0 {
        a = a.wrapping_add((seed >> 32) as u32);
        b = b.wrapping_add(seed as u32);
        mix(&mut a, &mut b, &mut c);
    }
    a = a.wrapping_add(k);
    finish(&mut a, &mut b, &mut c);
    (u64::from(b) << 32) | u64::from(c)
}

/// `hashint8extended`: a bigint folded to 32 bits so that values equal as
/// int4 and int8 hash alike.
fn hashint8_extended(v: i64, seed: u64) -> u64 {
    let lo = v as u32;
    let hi = (v >> 32) as u32;
    hash_uint32_extended(lo ^ if v >= 0 { hi } else { !hi }, seed)
}

/// The remainder of the hash partition that holds `key` in a table
/// `PARTITION BY HASH` on one bigint column, every partition of `modulus`.
pub fn remainder(key: i64, modulus: u32) -> u32 {
    let h = hashint8_extended(key, HASH_PARTITION_SEED);
    // hash_combine64(0, h), as compute_partition_hash_value folds one key.
    let row = h.wrapping_add(0x49a0_f4dd_15e5_a8e3);
    (row % u64::from(modulus.max(1))) as u32
}

/// Keys the computation is checked on before it is trusted: the extremes,
/// small ones and a spread of large ones of either sign.
fn sample_keys() -> Vec<i64> {
    let mut keys = vec![0, 1, -1, 2, i64::MAX, i64::MIN, i64::MAX - 1, i64::MIN + 1];
    keys.extend(1..=64);
    keys.extend([u32::MAX as i64, u32::MAX as i64 + 1, -(u32::MAX as i64)]);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..160 {
        // splitmix64
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        keys.push((z ^ (z >> 31)) as i64);
    }
    // Organization ids as seeded: 1..=1M, a few from across the range.
    keys.extend((0..32).map(|i| 1 + i * 31_249));
    keys
}

/// The leaves of one mode's three parents, by remainder.
#[derive(Debug, Clone)]
pub struct Leaves {
    pub modulus: u32,
    /// Per remainder: the revenue, expense and summary leaf.
    names: Vec<[String; 3]>,
}

impl Leaves {
    /// The leaf names of `org`'s partition: revenue, expense, summary.
    pub fn of(&self, org: i64) -> (usize, &[String; 3]) {
        let r = remainder(org, self.modulus) as usize;
        (r, &self.names[r])
    }
}

const BOUNDS: &str = "\
SELECT c.relname::text, c.relkind::text, pg_get_expr(c.relpartbound, c.oid)
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = to_regclass($1)";

const STRATEGY: &str = "\
SELECT pt.partstrat::text, pt.partnatts::int4, format_type(a.atttypid, NULL)
FROM pg_partitioned_table pt
JOIN pg_attribute a ON a.attrelid = pt.partrelid AND a.attnum = pt.partattrs[0]
WHERE pt.partrelid = to_regclass($1)";

const CHECK: &str = "\
SELECT count(*) FROM unnest($1::int8[], $2::int4[]) AS t(k, r)
WHERE NOT satisfies_hash_partition(to_regclass($3)::oid, $4, t.r, t.k)";

/// `FOR VALUES WITH (modulus 64, remainder 3)` → (64, 3).
fn parse_bound(bound: &str) -> Option<(u32, u32)> {
    let lower = bound.to_ascii_lowercase();
    let num = |word: &str| -> Option<u32> {
        let at = lower.find(word)? + word.len();
        lower[at..]
            .trim_start()
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    };
    Some((num("modulus")?, num("remainder")?))
}

/// Read the leaves of `t`'s parents and check the hash against the server.
/// Err is why statements must stay on the parent.
pub async fn discover(target: &Target, t: &FinanceTables) -> std::result::Result<Leaves, String> {
    let conn = target.get().await.map_err(|e| e.to_string())?;
    let st = target.statements;
    let keys = sample_keys();
    let mut modulus: Option<u32> = None;
    let mut names: Vec<[Option<String>; 3]> = Vec::new();
    for (slot, parent) in t.all().into_iter().enumerate() {
        let strat = conn
            .run(st, STRATEGY, &[(&parent, Type::TEXT)])
            .await
            .map_err(|e| format!("reading how {parent} is partitioned: {e}"))?;
        let Some(s) = strat.first() else {
            return Err(format!("{parent} is not a partitioned table"));
        };
        let (strategy, natts, ty): (String, i32, String) = (s.get(0), s.get(1), s.get(2));
        if strategy != "h" || natts != 1 || ty != "bigint" {
            return Err(format!(
                "{parent} is not partitioned by hash of one bigint key (strategy {strategy}, {natts} keys, {ty})"
            ));
        }
        let rows = conn
            .run(st, BOUNDS, &[(&parent, Type::TEXT)])
            .await
            .map_err(|e| format!("reading the partitions of {parent}: {e}"))?;
        for r in &rows {
            let (name, kind, bound): (String, String, Option<String>) =
                (r.get(0), r.get(1), r.get(2));
            let Some((m, rem)) = bound.as_deref().and_then(parse_bound) else {
                return Err(format!("{name}: not a hash partition bound ({bound:?})"));
            };
            if kind != "r" {
                return Err(format!("{name} is partitioned again: route to the parent"));
            }
            if *modulus.get_or_insert(m) != m {
                return Err(format!(
                    "{name} has modulus {m}, another partition {}: route to the parent",
                    modulus.unwrap_or(0)
                ));
            }
            if names.len() < m as usize {
                names.resize_with(m as usize, Default::default);
            }
            names[rem as usize][slot] = Some(name);
        }
        let m = modulus.ok_or_else(|| format!("{parent} has no partitions"))?;
        let rems: Vec<i32> = keys.iter().map(|&k| remainder(k, m) as i32).collect();
        let wrong: i64 = conn
            .run(
                st,
                CHECK,
                &[
                    (&keys, Type::INT8_ARRAY),
                    (&rems, Type::INT4_ARRAY),
                    (&parent, Type::TEXT),
                    (&(m as i32), Type::INT4),
                ],
            )
            .await
            .map_err(|e| format!("checking the partition hash on {parent}: {e}"))?[0]
            .get(0);
        if wrong != 0 {
            return Err(format!(
                "the repository's partition hash disagrees with the server's satisfies_hash_partition \
                 for {wrong} of {} sample keys on {parent}",
                keys.len()
            ));
        }
    }
    let modulus = modulus.ok_or_else(|| "no partitions".to_string())?;
    let names = names
        .into_iter()
        .enumerate()
        .map(|(i, n)| match n {
            [Some(a), Some(b), Some(c)] => Ok([a, b, c]),
            _ => Err(format!(
                "remainder {i} of {modulus} lacks a partition in one of {}: route to the parent",
                t.all().join(", ")
            )),
        })
        .collect::<std::result::Result<Vec<_>, String>>()?;
    Ok(Leaves { modulus, names })
}

/// What a run reports of leaf routing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeafStats {
    pub routing: PartitionRouting,
    /// The partitions found and checked; None until a partitioned call, or when routing to the parent.
    pub modulus: Option<u32>,
    /// Why single-tenant statements went to the parent although routing is `leaf`.
    pub fallback: Option<String>,
}

/// The repository's leaf routing: discovered on the first partitioned call,
/// again after a failure or after a leaf went missing.
pub(crate) struct LeafRouting<S> {
    routing: PartitionRouting,
    found: RwLock<Option<Arc<LeafSet<S>>>>,
    last_failure: Mutex<Option<(Instant, String)>>,
    discovering: tokio::sync::Mutex<()>,
}

/// The leaves with each one's statements, rendered when first used.
pub(crate) struct LeafSet<S> {
    pub leaves: Leaves,
    sql: Vec<OnceLock<S>>,
}

impl<S> LeafSet<S> {
    /// `org`'s statements, rendered by `render` (revenue, expense and summary leaf) once.
    pub fn sql(&self, org: i64, render: impl FnOnce(&[String; 3]) -> S) -> &S {
        let (r, names) = self.leaves.of(org);
        self.sql[r].get_or_init(|| render(names))
    }
}

impl<S> LeafRouting<S> {
    pub fn new(routing: PartitionRouting) -> Self {
        LeafRouting {
            routing,
            found: RwLock::new(None),
            last_failure: Mutex::new(None),
            discovering: tokio::sync::Mutex::new(()),
        }
    }

    /// The leaves, when routing is `leaf` and they were found and checked.
    pub async fn get(&self, target: &Target, t: &FinanceTables) -> Option<Arc<LeafSet<S>>> {
        if self.routing == PartitionRouting::Parent {
            return None;
        }
        if let Some(s) = self.found.read().unwrap_or_else(|e| e.into_inner()).clone() {
            return Some(s);
        }
        let recent = |f: &Mutex<Option<(Instant, String)>>| {
            f.lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
                .is_some_and(|(at, _)| at.elapsed() < RETRY)
        };
        if recent(&self.last_failure) {
            return None;
        }
        let _one = self.discovering.lock().await;
        if let Some(s) = self.found.read().unwrap_or_else(|e| e.into_inner()).clone() {
            return Some(s);
        }
        if recent(&self.last_failure) {
            return None;
        }
        match super::trace::untraced(discover(target, t)).await {
            Ok(leaves) => {
                let set = Arc::new(LeafSet {
                    sql: (0..leaves.modulus).map(|_| OnceLock::new()).collect(),
                    leaves,
                });
                *self.found.write().unwrap_or_else(|e| e.into_inner()) = Some(set.clone());
                *self.last_failure.lock().unwrap_or_else(|e| e.into_inner()) = None;
                Some(set)
            }
            Err(why) => {
                *self.last_failure.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some((Instant::now(), why));
                None
            }
        }
    }

    /// A leaf statement failed because a relation is gone (the partitioned
    /// tables were dropped or made again): read the catalog again next time.
    pub fn forget(&self) {
        *self.found.write().unwrap_or_else(|e| e.into_inner()) = None;
    }

    pub fn stats(&self) -> LeafStats {
        let found = self.found.read().unwrap_or_else(|e| e.into_inner()).clone();
        LeafStats {
            routing: self.routing,
            modulus: found.map(|s| s.leaves.modulus),
            fallback: self
                .last_failure
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
                .map(|(_, why)| why.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_parse_as_postgres_prints_them() {
        assert_eq!(
            parse_bound("FOR VALUES WITH (modulus 64, remainder 3)"),
            Some((64, 3))
        );
        assert_eq!(parse_bound("FOR VALUES FROM (1) TO (10)"), None);
        assert_eq!(parse_bound("DEFAULT"), None);
    }

    /// Remainders PostgreSQL 15.18 gave, so a change to the hash fails here
    /// as well as in the lab test against the server's tuple routing
    /// (tests/attribution.rs).
    #[test]
    fn remainders_match_the_ones_postgres_gave() {
        // From the 1M estate: `SELECT tableoid::regclass` of each
        // organization's summary rows (64 partitions).
        for (org, leaf) in [(1, 56), (2, 58), (3, 57), (4242, 0), (999_999, 7)] {
            assert_eq!(remainder(org, 64), leaf, "organization {org}");
        }
        let spread: Vec<u32> = (1..=20_000).map(|k| remainder(k, 64)).collect();
        let mut counts = [0u32; 64];
        for r in &spread {
            counts[*r as usize] += 1;
        }
        // A hash: every remainder is used, none more than twice its share.
        assert!(
            counts.iter().all(|&c| c > 0 && c < 2 * 20_000 / 64),
            "{counts:?}"
        );
        assert_eq!(remainder(5, 1), 0);
    }
}
