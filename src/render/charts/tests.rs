use super::*;

#[test]
fn the_nines_axis_reads_as_percentiles() {
    assert_eq!(nines_label(1.0), "0%");
    assert_eq!(nines_label(10.0), "90%");
    assert_eq!(nines_label(100.0), "99%");
    assert_eq!(nines_label(1000.0), "99.9%");
    assert_eq!(nines_label(10000.0), "99.99%");
}

#[test]
fn log_tops_round_to_one_two_five() {
    assert_eq!(round_up_125(104.5), 200.0);
    assert_eq!(round_up_125(45.0), 50.0);
    assert_eq!(round_up_125(100.0), 100.0);
}

#[test]
fn tick_labels_carry_no_needless_digits() {
    assert_eq!(tick_label(0.0), "0");
    assert_eq!(tick_label(0.5), "0.5");
    assert_eq!(tick_label(1.0), "1");
    assert_eq!(tick_label(2.5), "2.5");
    assert_eq!(tick_label(40.0), "40");
    assert_eq!(tick_label(4000000.0), "4,000,000");
    assert_eq!(tick_label(0.001), "0.001");
}

fn no_two_overlap(d: &Drawn) {
    for (i, a) in d.labels.iter().enumerate() {
        assert!(
            a.x0 >= 0 && a.y0 >= 0 && a.x1 <= SIZE.0 as i32 && a.y1 <= SIZE.1 as i32,
            "{a:?} leaves the image"
        );
        for b in &d.labels[i + 1..] {
            assert!(!a.overlaps(b), "{a:?} overlaps {b:?}");
        }
    }
}

/// The steps of a cutover drill, at the times a real one took them:
/// several come within a second of each other at the end.
fn drill_steps() -> Vec<(f64, String)> {
    [
        (0.0, "steady"),
        (15.0, "prepare"),
        (15.6, "dual-write"),
        (15.7, "backfill"),
        (28.8, "verify"),
        (33.9, "switch"),
        (34.1, "soak"),
        (94.2, "check writes (partitioned)"),
        (96.9, "rollback"),
        (99.8, "verify after rollback"),
        (105.2, "switch again"),
        (105.5, "verify after switch"),
    ]
    .iter()
    .map(|(t, n)| (*t, n.to_string()))
    .collect()
}

/// A shorter drill (soak 20 s) whose last labels sit close to the right
/// edge: a label's side of its line once differed between layout and
/// drawing by a pixel of rounding, and two labels overlapped.
fn short_drill_steps() -> Vec<(f64, String)> {
    let mut steps = drill_steps();
    for (s, t) in steps.iter_mut().zip([
        0.0, 15.3, 15.9, 16.0, 35.6, 42.5, 42.8, 62.9, 65.5, 66.3, 71.3, 70.57,
    ]) {
        s.0 = t;
    }
    steps.push((79.0, "after".into()));
    steps
}

#[test]
fn a_timeline_of_twelve_steps_draws_no_label_over_another() {
    for (steps, end) in [(drill_steps(), 115), (short_drill_steps(), 81)] {
        twelve_steps(steps, end);
    }
}

fn twelve_steps(steps: Vec<(f64, String)>, end: usize) {
    let dir = std::env::temp_dir().join(format!("rehearse-chart-{}", std::process::id()));
    let mut c = Chart::new("record_revenue: latency per 1 s interval", "s", "ms");
    c.log_y = true;
    c.bounds = steps;
    let line = |k: f64| (0..end).map(|i| (i as f64, k + (i % 7) as f64)).collect();
    for (i, (label, dash)) in [
        ("p50", Dash::Dashed),
        ("p99", Dash::Solid),
        ("max", Dash::Dotted),
    ]
    .into_iter()
    .enumerate()
    {
        c.series.push(Series {
            label: format!("flag-replica-cache {label}"),
            color: PALETTE[i],
            width: 2,
            dash,
            points: line(i as f64 * 5.0 + 1.0),
        });
    }
    c.rules.push(Rule {
        label: "p99 budget 20 ms (met)".into(),
        y: 20.0,
        color: MET,
    });
    let (_, d) = render_drawn(&c, &dir, "twelve").unwrap();
    no_two_overlap(&d);
    // Every step is named: on the chart, or by its number in the key.
    for (i, (_, name)) in c.bounds.iter().enumerate() {
        let on_chart = d.labels.iter().any(|l| &l.text == name);
        let numbered = d.labels.iter().any(|l| l.text == (i + 1).to_string())
            && d.labels.iter().filter(|l| &l.text == name).count() == 1;
        assert!(on_chart || numbered, "step {name} is not named");
    }
    // The crowded last steps could not all have their names in the band.
    assert!(d.labels.iter().any(|l| l.text == "verify after switch"));
    // Breaking the layout is seen: two boxes at one place overlap.
    let mut broken = d.clone();
    let first = broken.labels[1].clone();
    broken.labels.push(first);
    assert!(std::panic::catch_unwind(|| no_two_overlap(&broken)).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn spectrum_budget_labels_sit_beside_their_crosses_and_bars_carry_values() {
    let dir = std::env::temp_dir().join(format!("rehearse-chart-b-{}", std::process::id()));
    let mut c = Chart::new("dashboard: response time by percentile", "percentile", "ms");
    c.nines = true;
    c.log_y = true;
    c.series.push(Series {
        label: "cache-on".into(),
        color: PALETTE[0],
        width: 2,
        dash: Dash::Solid,
        points: (1..60).map(|i| (1.2f64.powi(i), i as f64 / 3.0)).collect(),
    });
    for (q, ms) in [(0.5, 2.0), (0.95, 8.0), (0.99, 20.0), (0.999, 21.0)] {
        c.markers.push(Marker {
            label: format!("p{} budget {ms} ms", q * 100.0),
            at: (1.0 / (1.0 - q), ms),
            pass: true,
        });
    }
    let (_, d) = render_drawn(&c, &dir, "spectrum").unwrap();
    no_two_overlap(&d);
    let steps = drill_steps();
    let b = Bars {
        title: "p99 per step".into(),
        y_desc: "p99 response time (ms)".into(),
        categories: steps.iter().map(|s| s.1.clone()).collect(),
        groups: vec![("p99".into(), (0..12).map(|i| 3.0 + i as f64).collect())],
        rules: vec![(
            None,
            Rule {
                label: "steady p99".into(),
                y: 3.0,
                color: GUIDE,
            },
        )],
        value: |v| format!("{v:.1}"),
    };
    let (_, d) = render_bars_drawn(&b, &dir, "bars").unwrap();
    no_two_overlap(&d);
    for v in ["3.0", "14.0"] {
        assert!(d.labels.iter().any(|l| l.text == v), "no value label {v}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn stacked_bars_of_seven_operations_in_two_variants_keep_their_labels_apart() {
    let ops = [
        "record_revenue",
        "record_expense",
        "adjust",
        "void",
        "post_batch",
        "dashboard",
        "ledger",
    ];
    let layer = |k: f64| vec![0.05 * k, 0.2 * k, 0.0, 0.03, 0.01, 0.02 * k, 0.0];
    let s = Stacked {
        title: "finance_day: server time per request, where it went".into(),
        y_desc: "server ms per request".into(),
        categories: ops.iter().map(|s| s.to_string()).collect(),
        groups: vec![
            ("legacy".into(), "A".into()),
            ("partitioned".into(), "B".into()),
        ],
        layers: ["planning", "CPU", "Lock", "LWLock", "IO", "Client", "other"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        values: vec![
            (0..ops.len()).map(|i| layer(1.0 + i as f64)).collect(),
            (0..ops.len()).map(|i| layer(2.0 + i as f64)).collect(),
        ],
        value: |v| format!("{v:.2} ms"),
    };
    let dir = std::env::temp_dir().join(format!("rehearse-stacked-{}", std::process::id()));
    let (svg, drawn) = render_stacked(&s, &dir, "stacked").unwrap();
    no_two_overlap(&drawn);
    assert!(
        svg.contains("post_batch") && svg.contains("B = partitioned"),
        "{svg}"
    );
    assert!(dir.join("stacked.png").is_file());
    let _ = std::fs::remove_dir_all(&dir);
}
