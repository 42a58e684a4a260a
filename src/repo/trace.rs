//! Which statements each operation of a workload sent: the key that ties
//! the server's own statistics (pg_stat_statements, pg_stat_activity,
//! pg_prepared_statements) back to the operations a scenario names.
//!
//! The driver runs each request inside [`Trace::scope`] with the index of
//! its operation; every statement the repository sends from inside is
//! counted under that index ([`note`], called by [`super::conn::Exec::run`]).
//! A statement outside any scope (the flag read by a background refresh,
//! the replica checks) is not counted. The cost per statement is one
//! task-local read, one uncontended lock and one comparison of the text.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

tokio::task_local! {
    static CURRENT: (u16, Arc<Trace>);
}

/// (operation, address and length of a statement's text) → its text and calls.
type Seen = HashMap<(u16, usize, usize), (String, u64)>;

/// One variant's statements per operation.
#[derive(Default)]
pub struct Trace {
    seen: Mutex<Seen>,
}

/// A statement an operation sent, and how often.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub op: u16,
    pub sql: String,
    pub calls: u64,
}

impl Trace {
    pub fn new() -> Arc<Trace> {
        Arc::new(Trace::default())
    }

    /// Run `f` as operation `op`: the statements it sends are counted for it.
    pub async fn scope<F: std::future::Future>(self: &Arc<Self>, op: u16, f: F) -> F::Output {
        CURRENT.scope((op, self.clone()), f).await
    }

    fn count(&self, op: u16, sql: &str) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        // Statements are the repository's own strings, which live as long
        // as it does: their address is a cheap key. The text is compared
        // too, in case an address was reused for another statement.
        let e = seen
            .entry((op, sql.as_ptr() as usize, sql.len()))
            .or_insert_with(|| (sql.to_string(), 0));
        if e.0 != sql {
            *e = (sql.to_string(), 0);
        }
        e.1 += 1;
    }

    /// Every (operation, statement) with its calls, statements of one text merged.
    pub fn sent(&self) -> Vec<Sent> {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let mut merged: HashMap<(u16, &str), u64> = HashMap::new();
        for ((op, _, _), (sql, calls)) in seen.iter() {
            *merged.entry((*op, sql.as_str())).or_default() += calls;
        }
        let mut out: Vec<Sent> = merged
            .into_iter()
            .map(|((op, sql), calls)| Sent {
                op,
                sql: sql.to_string(),
                calls,
            })
            .collect();
        out.sort_by(|a, b| (a.op, &a.sql).cmp(&(b.op, &b.sql)));
        out
    }
}

/// Run `f` with nothing it sends counted (the repository's own catalog
/// reads, made inside whichever request needed them first).
pub async fn untraced<F: std::future::Future>(f: F) -> F::Output {
    CURRENT
        .scope((u16::MAX, Arc::new(Trace::default())), f)
        .await
}

/// Count `sql` for the operation whose scope this task is in, if any.
pub(crate) fn note(sql: &str) {
    let _ = CURRENT.try_with(|(op, t)| t.count(*op, sql));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn statements_are_counted_for_the_scope_they_ran_in_only() {
        let t = Trace::new();
        let a = String::from("SELECT 1");
        let b = String::from("SELECT 2");
        t.scope(0, async {
            note(&a);
            note(&a);
        })
        .await;
        t.scope(1, async { note(&b) }).await;
        note(&a); // outside any scope
        assert_eq!(
            t.sent(),
            vec![
                Sent {
                    op: 0,
                    sql: a.clone(),
                    calls: 2
                },
                Sent {
                    op: 1,
                    sql: b.clone(),
                    calls: 1
                },
            ]
        );
    }
}
