use super::steps::fault_problem;
use super::*;
use crate::lab::monitor;

#[test]
fn every_rule_has_a_for_and_every_expected_alert_a_rule() {
    let fors = rule_for(monitor::RULES).unwrap();
    assert!(fors.len() >= 12, "{fors:?}");
    // A for: that is not a duration is named, not dropped.
    let bad =
        "groups:\n- name: x\n  rules:\n  - alert: Broken\n    expr: up == 0\n    for: 10 sec\n";
    let e = rule_for(bad).unwrap_err().to_string();
    assert!(
        e.contains("line 6") && e.contains("Broken") && e.contains("10 sec"),
        "{e}"
    );
    assert_eq!(fors.get("SummaryDrift"), Some(&Duration::from_secs(10)));
    assert_eq!(fors.get("PartitionSkew"), Some(&Duration::from_secs(60)));
    for f in Fault::ALL {
        for a in f.expected().iter().chain(f.allowed().iter()) {
            assert!(
                fors.contains_key(*a),
                "{} expects {a}, which no rule defines",
                f.name()
            );
        }
    }
}

#[test]
fn fault_names_round_trip() {
    for f in Fault::ALL {
        assert_eq!(f.name().parse::<Fault>().unwrap(), f);
    }
    assert!("replica".parse::<Fault>().is_err());
}

#[test]
fn a_fault_that_never_fired_is_named_in_the_reasons() {
    let r = FaultResult {
        fault: Fault::RedisDown,
        how: "x".into(),
        injected_at_s: 1.0,
        repaired_at_s: 2.0,
        alerts: vec![AlertTiming {
            alert: "RedisDown".into(),
            for_s: 10.0,
            fired_after_s: None,
            fire_deadline_s: 23.0,
            resolved_after_s: None,
            resolve_deadline_s: 13.0,
            ok: false,
        }],
        also_fired: vec![],
        unexpected: vec!["ReplicaDown".into()],
        error: None,
        ok: false,
    };
    let p = fault_problem(&r);
    assert!(p.contains("RedisDown never fired (deadline 23 s)"), "{p}");
    assert!(p.contains("unexpected alerts fired: ReplicaDown"), "{p}");
}

#[test]
fn on_an_estate_too_large_for_the_drift_query_only_reconcile_must_alert() {
    use super::prometheus::DriftCheck;
    use super::steps::expected_for;
    let (small, _) = expected_for(Fault::SummaryDrift, Some(&DriftCheck::Checked));
    assert_eq!(small, ["SummaryDrift", "ReconcileFoundDrift"]);
    let (large, how) = expected_for(Fault::SummaryDrift, Some(&DriftCheck::TooLarge));
    assert_eq!(large, ["ReconcileFoundDrift"]);
    assert!(how.contains("SummaryDrift is not expected"), "{how}");
    // Other faults keep theirs whatever the estate.
    let (redis, _) = expected_for(Fault::RedisDown, Some(&DriftCheck::TooLarge));
    assert_eq!(redis, ["RedisDown"]);
}
