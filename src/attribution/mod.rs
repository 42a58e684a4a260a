//! Where an operation's time went on the server (issue 34).
//!
//! While a variant runs, three things are gathered on every server the
//! repository uses (the primary, and the replica its reads go to):
//! - **pg_stat_statements, before and after**: per statement, calls,
//!   planning and execution time (`track_planning` in the lab), rows, and
//!   shared buffers hit, read and dirtied;
//! - **pg_stat_activity, sampled** every few milliseconds by a connection of
//!   its own: what each backend serving a statement waits on (no wait event
//!   is CPU), keyed by the statement's query id; and, every so many rounds,
//!   the relation locks each one holds and how many are outside the
//!   fast path (`pg_locks`);
//! - **pg_prepared_statements**, read at the end on the repository's own
//!   connections: how many generic and custom plans each statement got.
//!
//! The statements are tied to the scenario's operations by the repository's
//! trace ([`crate::repo::trace`]): which statement texts each operation sent,
//! and how often. A statement several operations send (the WAL position
//! after a commit) is shared among them by their calls. Texts are compared
//! as pg_stat_statements keeps them: constants and parameters alike, leaf
//! partitions as their parent ([`normalize`]).

pub mod sampler;
pub mod server;
pub mod session;

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

/// One variant's attribution, in run.json.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attribution {
    /// pg_stat_activity was sampled every this many milliseconds.
    pub interval_ms: f64,
    /// pg_locks was read every this many rounds.
    pub lock_every: u32,
    /// Rounds of sampling, per server.
    pub rounds: BTreeMap<String, u64>,
    /// The server time the sampler's own queries took, ms (its cost there).
    pub sampler_ms: f64,
    pub operations: Vec<OpTime>,
    /// Sampled backends busy with a statement no operation sent (other
    /// clients, jobs): counted, not attributed.
    pub unattributed_samples: u64,
    /// Whether pg_stat_statements timed planning (`track_planning`); when
    /// false, every `plan_ms` is 0 and planning is inside nothing.
    pub track_planning: bool,
}

/// Where one operation's server time went.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpTime {
    /// The operation's name in the scenario's mix.
    pub name: String,
    /// Statement calls on the servers (a shared statement's calls split by use).
    pub calls: f64,
    /// Plans made (with `track_planning`): a prepared statement reusing its
    /// plan makes none.
    pub plans: f64,
    pub plan_ms: f64,
    pub exec_ms: f64,
    pub rows: f64,
    pub shared_hit: f64,
    pub shared_read: f64,
    pub shared_dirtied: f64,
    /// Sampled backend time by wait event (`CPU` when there was none), the
    /// largest first; shares sum to 1 over `sampled`.
    pub waits: Vec<WaitShare>,
    /// Samples of a backend busy with one of this operation's statements.
    pub sampled: f64,
    /// Plans of its prepared statements, summed over the repository's
    /// connections; None through PgBouncer (unnamed statements).
    pub generic_plans: Option<f64>,
    pub custom_plans: Option<f64>,
    /// Relation locks held by an executing statement, sampled.
    pub locks: Option<Locks>,
    /// The statements it sent (normalized, shortened).
    pub statements: Vec<String>,
}

impl OpTime {
    /// Server milliseconds per call: planning and execution.
    pub fn ms_per_call(&self) -> Option<(f64, f64)> {
        (self.calls > 0.0).then(|| (self.plan_ms / self.calls, self.exec_ms / self.calls))
    }

    /// The share of sampled time for an event (0 when never seen).
    pub fn share(&self, event: &str) -> f64 {
        self.waits
            .iter()
            .find(|w| w.event == event)
            .map_or(0.0, |w| w.share)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitShare {
    /// `CPU`, or `type:event` as pg_stat_activity names it (`Lock:relation`,
    /// `LWLock:LockManager`, `IO:DataFileRead`, `Client:ClientRead`, ...).
    pub event: String,
    pub samples: f64,
    pub share: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Locks {
    /// Executions seen holding locks.
    pub samples: f64,
    /// Relation locks per execution, mean.
    pub held: f64,
    /// Of those, outside the 16 fast-path slots, mean.
    pub not_fast_path: f64,
}

/// A statement's text as pg_stat_statements compares it: constants and
/// parameters become `?` (a negative constant with its sign; NULL, TRUE
/// and FALSE, which pg_stat_statements replaces too), runs of
/// white space one space, and a leaf partition `<parent>_pNNN` its parent.
pub fn normalize(sql: &str) -> String {
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut i = 0;
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let push_space = |out: &mut String| {
        if !out.is_empty() && !out.ends_with(' ') {
            out.push(' ');
        }
    };
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            push_space(&mut out);
            i += 1;
        } else if c == b'\'' {
            // A string constant ('' escapes a quote).
            i += 1;
            while i < b.len() {
                if b[i] == b'\'' {
                    if b.get(i + 1) == Some(&b'\'') {
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                i += 1;
            }
            out.push('?');
        } else if c == b'$' && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
            i += 1;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            out.push('?');
        } else if c.is_ascii_digit() || (c == b'-' && b.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            i += 1;
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                i += 1;
            }
            out.push('?');
        } else if ident(c) {
            let start = i;
            while i < b.len() && ident(b[i]) {
                i += 1;
            }
            let word = &sql[start..i];
            // NULL, TRUE and FALSE are constants to pg_stat_statements too.
            if ["null", "true", "false"]
                .iter()
                .any(|k| word.eq_ignore_ascii_case(k))
            {
                out.push('?');
            } else {
                out.push_str(strip_leaf(word));
            }
        } else {
            out.push(c as char);
            i += 1;
        }
    }
    out.trim_end().to_string()
}

/// `revenue_entries_partitioned_p017` → `revenue_entries_partitioned`.
fn strip_leaf(word: &str) -> &str {
    match word.rfind("_p") {
        Some(at) if word.len() - at >= 5 && word[at + 2..].bytes().all(|b| b.is_ascii_digit()) => {
            &word[..at]
        }
        _ => word,
    }
}

/// What the sampler saw on one server.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    pub rounds: u64,
    /// (query id, event) → samples.
    pub waits: HashMap<(i64, String), u64>,
    /// (statement text, event) → samples of statements not analysed yet
    /// (no query id): matched by their text.
    pub waits_by_text: HashMap<(String, String), u64>,
    /// query id → (executions seen holding locks, locks, of them not fast-path).
    pub locks: HashMap<i64, (u64, u64, u64)>,
    /// The sampler's own queries, ms.
    pub busy_ms: f64,
}

/// One server's part: its statement deltas and what was sampled there.
pub struct ServerPart {
    pub name: String,
    pub deltas: Vec<server::Delta>,
    pub seen: Seen,
}

/// Put it together: `names` are the mix's operations, by index.
pub fn attribute(
    names: &[String],
    sent: &[crate::repo::trace::Sent],
    servers: &[ServerPart],
    prepared: &[(String, i64, i64)],
    interval_ms: f64,
    lock_every: u32,
    track_planning: bool,
) -> Attribution {
    // normalized text → [(op, calls)]
    let mut users: HashMap<String, Vec<(usize, f64)>> = HashMap::new();
    let mut texts: Vec<Vec<String>> = vec![Vec::new(); names.len()];
    for s in sent {
        let op = s.op as usize;
        if op >= names.len() {
            continue;
        }
        let key = normalize(&s.sql);
        let u = users.entry(key.clone()).or_default();
        match u.iter_mut().find(|(o, _)| *o == op) {
            Some(e) => e.1 += s.calls as f64,
            None => u.push((op, s.calls as f64)),
        }
        if !texts[op].contains(&key) {
            texts[op].push(key);
        }
    }
    // Each user's share of a statement.
    let shares = |key: &str| -> Vec<(usize, f64)> {
        let Some(u) = users.get(key) else {
            return Vec::new();
        };
        let total: f64 = u.iter().map(|x| x.1).sum();
        u.iter()
            .map(|&(op, c)| (op, if total > 0.0 { c / total } else { 0.0 }))
            .collect()
    };
    let mut ops: Vec<OpTime> = names
        .iter()
        .enumerate()
        .map(|(i, n)| OpTime {
            name: n.clone(),
            statements: texts[i]
                .iter()
                .map(|t| crate::text::shorten(t, 120))
                .collect(),
            ..OpTime::default()
        })
        .collect();
    let mut waits: Vec<HashMap<String, f64>> = vec![HashMap::new(); names.len()];
    let mut locks: Vec<(f64, f64, f64)> = vec![(0.0, 0.0, 0.0); names.len()];
    let mut unattributed = 0u64;
    let mut rounds = BTreeMap::new();
    let mut sampler_ms = 0.0;
    for part in servers {
        rounds.insert(part.name.clone(), part.seen.rounds);
        sampler_ms += part.seen.busy_ms;
        let mut by_id: HashMap<i64, Vec<(usize, f64)>> = HashMap::new();
        for d in &part.deltas {
            let sh = shares(&normalize(&d.query));
            for &(op, f) in &sh {
                let o = &mut ops[op];
                o.calls += d.calls as f64 * f;
                o.plans += d.plans as f64 * f;
                o.plan_ms += d.plan_ms * f;
                o.exec_ms += d.exec_ms * f;
                o.rows += d.rows as f64 * f;
                o.shared_hit += d.shared_hit as f64 * f;
                o.shared_read += d.shared_read as f64 * f;
                o.shared_dirtied += d.shared_dirtied as f64 * f;
            }
            if !sh.is_empty() {
                by_id.insert(d.queryid, sh);
            }
        }
        for ((id, event), n) in &part.seen.waits {
            match by_id.get(id) {
                Some(sh) => {
                    for &(op, f) in sh {
                        *waits[op].entry(event.clone()).or_default() += *n as f64 * f;
                    }
                }
                None => unattributed += n,
            }
        }
        for ((text, event), n) in &part.seen.waits_by_text {
            // pg_stat_activity cuts long texts (track_activity_query_size).
            let key = normalize(text);
            let found = users.get(&key).map(|_| key.clone()).or_else(|| {
                (text.len() >= 1000)
                    .then(|| users.keys().find(|k| k.starts_with(&key)).cloned())
                    .flatten()
            });
            match found {
                Some(k) => {
                    for (op, f) in shares(&k) {
                        *waits[op].entry(event.clone()).or_default() += *n as f64 * f;
                    }
                }
                None => unattributed += n,
            }
        }
        for (id, (execs, held, slow)) in &part.seen.locks {
            if let Some(sh) = by_id.get(id) {
                for &(op, f) in sh {
                    locks[op].0 += *execs as f64 * f;
                    locks[op].1 += *held as f64 * f;
                    locks[op].2 += *slow as f64 * f;
                }
            }
        }
    }
    let mut plans: Vec<Option<(f64, f64)>> = vec![None; names.len()];
    for (sql, generic, custom) in prepared {
        for (op, f) in shares(&normalize(sql)) {
            let p = plans[op].get_or_insert((0.0, 0.0));
            p.0 += *generic as f64 * f;
            p.1 += *custom as f64 * f;
        }
    }
    for (i, o) in ops.iter_mut().enumerate() {
        let total: f64 = waits[i].values().sum();
        o.sampled = total;
        let mut w: Vec<WaitShare> = waits[i]
            .iter()
            .map(|(e, n)| WaitShare {
                event: e.clone(),
                samples: *n,
                share: if total > 0.0 { n / total } else { 0.0 },
            })
            .collect();
        w.sort_by(|a, b| b.samples.total_cmp(&a.samples).then(a.event.cmp(&b.event)));
        o.waits = w;
        let (execs, held, slow) = locks[i];
        o.locks = (execs > 0.0).then(|| Locks {
            samples: execs,
            held: held / execs,
            not_fast_path: slow / execs,
        });
        o.generic_plans = plans[i].map(|p| p.0);
        o.custom_plans = plans[i].map(|p| p.1);
    }
    Attribution {
        interval_ms,
        lock_every,
        rounds,
        sampler_ms,
        operations: ops,
        unattributed_samples: unattributed,
        track_planning,
    }
}

/// The wait classes a chart stacks, in order: an event's class is its
/// type (`Lock`, `LWLock`, `IO`, `Client`, ...), CPU its own.
pub fn class_of(event: &str) -> &str {
    event.split(':').next().unwrap_or(event)
}

#[cfg(test)]
mod tests;
