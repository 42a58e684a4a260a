use super::*;
use crate::repo::trace::Sent;

#[test]
fn texts_compare_as_pg_stat_statements_keeps_them() {
    // What we sent, and what pg_stat_statements shows for it: constants
    // replaced by parameters after ours, white space as sent.
    let ours = "SELECT x FROM portfolio_rankings\n WHERE mode = 'legacy' AND rank <= $3 LIMIT 10";
    let theirs = "SELECT x FROM portfolio_rankings\n WHERE mode = $4 AND rank <= $3 LIMIT $5";
    assert_eq!(normalize(ours), normalize(theirs));
    // A leaf is its parent; another table is not.
    assert_eq!(
        normalize("DELETE FROM revenue_entries_partitioned_p017 WHERE id = $2"),
        normalize("DELETE FROM revenue_entries_partitioned WHERE id = $1")
    );
    assert_ne!(
        normalize("DELETE FROM revenue_entries WHERE id = $2"),
        normalize("DELETE FROM revenue_entries_partitioned WHERE id = $2")
    );
    // NULL is a constant there (the ledger's `NULL::text` is kept as `$11::text`).
    assert_eq!(
        normalize("SELECT NULL::text, x IS NULL"),
        normalize("SELECT $11::text, x IS NULL")
    );
    // A negative constant, with its sign, is one constant.
    assert_eq!(normalize("SELECT -1, 'it''s'"), normalize("SELECT $1, $2"));
    // An identifier with digits is not a constant.
    assert_eq!(normalize("SELECT t1.a FROM t1"), "SELECT t1.a FROM t1");
}

fn delta(id: i64, query: &str, calls: i64, exec_ms: f64) -> server::Delta {
    server::Delta {
        queryid: id,
        query: query.into(),
        calls,
        exec_ms,
        ..Default::default()
    }
}

#[test]
fn a_statement_is_split_among_the_operations_that_sent_it_and_shares_sum_to_one() {
    let names = vec!["record".to_string(), "dashboard".to_string()];
    let sent = vec![
        Sent {
            op: 0,
            sql: "INSERT INTO r VALUES ($1)".into(),
            calls: 30,
        },
        Sent {
            op: 0,
            sql: "SELECT pg_current_wal_insert_lsn()".into(),
            calls: 30,
        },
        Sent {
            op: 1,
            sql: "SELECT * FROM s WHERE o = $1".into(),
            calls: 10,
        },
        Sent {
            op: 1,
            sql: "SELECT pg_current_wal_insert_lsn()".into(),
            calls: 10,
        },
    ];
    let mut seen = Seen {
        rounds: 100,
        ..Default::default()
    };
    seen.waits.insert((1, "CPU".into()), 6);
    seen.waits.insert((1, "Lock:relation".into()), 2);
    seen.waits.insert((2, "CPU".into()), 4);
    seen.waits.insert((3, "IO:WALWrite".into()), 4);
    seen.waits.insert((99, "CPU".into()), 5); // nobody's
    seen.locks.insert(2, (2, 134, 102));
    let part = ServerPart {
        name: "primary".into(),
        deltas: vec![
            delta(1, "INSERT INTO r VALUES ($1)", 30, 60.0),
            delta(2, "SELECT * FROM s WHERE o = $1", 10, 5.0),
            delta(3, "SELECT pg_current_wal_insert_lsn()", 40, 4.0),
        ],
        seen,
    };
    let prepared = vec![("SELECT * FROM s WHERE o = $1".to_string(), 0, 6)];
    let a = attribute(&names, &sent, &[part], &prepared, 10.0, 20, true);
    let rec = &a.operations[0];
    let dash = &a.operations[1];
    // The WAL position: 30 of its 40 calls were the record's.
    assert!((rec.calls - 60.0).abs() < 1e-9, "{}", rec.calls);
    assert!((rec.exec_ms - 63.0).abs() < 1e-9, "{}", rec.exec_ms);
    assert!((dash.calls - 20.0).abs() < 1e-9);
    // Waits: 6 CPU + 2 Lock + 3 WALWrite for the record.
    assert!((rec.sampled - 11.0).abs() < 1e-9);
    let sum: f64 = rec.waits.iter().map(|w| w.share).sum();
    assert!((sum - 1.0).abs() < 1e-9);
    assert!((rec.share("Lock:relation") - 2.0 / 11.0).abs() < 1e-9);
    assert_eq!(dash.share("Lock:relation"), 0.0);
    assert_eq!(a.unattributed_samples, 5);
    // Plans and locks land on the dashboard only.
    assert_eq!(
        (dash.generic_plans, dash.custom_plans),
        (Some(0.0), Some(6.0))
    );
    assert_eq!(rec.custom_plans, None);
    let l = dash.locks.as_ref().unwrap();
    assert_eq!((l.held, l.not_fast_path), (67.0, 51.0));
}
