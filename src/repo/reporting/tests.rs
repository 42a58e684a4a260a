use super::*;

#[test]
fn cursors_round_trip_and_bad_ones_say_the_expected_form() {
    let c = Cursor {
        business_date: Day::from_ymd(2026, 10, 20),
        kind: "revenue".into(),
        id: 4242,
    };
    assert_eq!(c.to_string(), "2026-10-20.revenue.4242");
    assert_eq!(c.to_string().parse::<Cursor>().unwrap(), c);
    for bad in [
        "",
        "2026-10-20",
        "2026-10-20.refund.1",
        "2026-13-01.revenue.1",
        "2026-10-20.revenue.x",
    ] {
        let e = bad.parse::<Cursor>().unwrap_err();
        assert_eq!(e.exit_code(), crate::exit::USAGE);
        assert!(e.to_string().contains("DATE.KIND.ID"), "{e}");
    }
}

#[test]
fn ledger_bounds_continue_exactly_after_the_cursor() {
    let d = Day::from_ymd(2026, 10, 20);
    // A key is after the cursor iff (date, id) > its branch's bound.
    let after = |bound: (Day, i64), date: Day, id: i64| (date, id) > bound;
    let cur = Cursor {
        business_date: d,
        kind: "expense".into(),
        id: 10,
    };
    let (e, r) = ledger_bounds(d.plus(-5), Some(&cur));
    assert!(!after(e, d, 10) && after(e, d, 11) && !after(e, d.plus(-1), 99));
    // revenue sorts after expense: every revenue entry of the day follows.
    assert!(after(r, d, 0) && after(r, d, 1) && !after(r, d.plus(-1), i64::MAX - 1));
    let cur = Cursor {
        kind: "revenue".into(),
        ..cur
    };
    let (e, r) = ledger_bounds(d.plus(-5), Some(&cur));
    assert!(!after(e, d, i64::MAX - 1) && after(e, d.plus(1), 0));
    assert!(!after(r, d, 10) && after(r, d, 11));
    // No cursor: everything from the first day on.
    let (e, r) = ledger_bounds(d, None);
    assert!(after(e, d, 0) && after(r, d, 0) && !after(e, d.plus(-1), 5));
}

#[test]
fn bad_ranges_and_sizes_are_usage_errors() {
    let d = Day::from_ymd(2026, 10, 20);
    for q in [
        Query::Dashboard {
            org: 1,
            end: d,
            days: 0,
        },
        Query::Properties {
            org: 1,
            from: d,
            to: d.plus(-1),
        },
        Query::Ledger {
            org: 1,
            from: d,
            to: d,
            after: None,
            limit: 0,
        },
        Query::Portfolio {
            from: d,
            to: d,
            top: MAX_PAGE + 1,
        },
    ] {
        assert_eq!(
            q.check().unwrap_err().exit_code(),
            crate::exit::USAGE,
            "{q:?}"
        );
    }
    assert!(Query::Pnl { org: 1, month: d }.check().is_ok());
}

#[test]
fn every_statement_names_only_its_modes_tables() {
    let legacy = Sql::render(Mode::Legacy.tables());
    let part = Sql::render(Mode::Partitioned.tables());
    for s in [
        &legacy.dashboard,
        &legacy.pnl,
        &legacy.properties,
        &legacy.ledger,
        &legacy.portfolio,
    ] {
        assert!(!s.contains("{{") && !s.contains("_partitioned"), "{s}");
    }
    for s in [&part.dashboard, &part.pnl, &part.properties, &part.ledger] {
        assert!(!s.contains("{{"), "{s}");
        assert!(s.contains("_partitioned"), "{s}");
    }
    // The portfolio reads the shared ranking table, each mode its own rows.
    assert!(part.portfolio.contains("mode = 'partitioned'") && !part.portfolio.contains("{{"));
    assert!(legacy.portfolio.contains("mode = 'legacy'"));
}
