use super::*;

const GOOD: &str = r#"
name = "mixed"
seed = 7
warmup = "5s"

[[phase]]
name = "ramp"
duration = "30s"
rate = 100
ramp_to = 400

[[phase]]
duration = "1m"
users = 8
think = "10ms"

[[mix]]
operation = "dashboard"
weight = 3

[[mix]]
operation = "sql"
name = "probe"
weight = 1
sql = "SELECT $1::int8 + $2"
params = ["org", "int:1..10"]

[tenants]
distribution = "zipf"
exponent = 1.2

[[variant]]
name = "part"
mode = "partitioned"
reads = "replica"
cache = false
pool = "pgbouncer"

[budgets.dashboard]
p99 = "20ms"
error_rate = 0.01
"#;

fn err(text: &str) -> String {
    parse(Path::new("s.toml"), text).unwrap_err().to_string()
}

#[test]
fn jobs_parse_and_a_wrong_one_is_named_with_its_line_and_column() {
    let base =
        "[[phase]]\nduration = \"10s\"\nrate = 1\n[[mix]]\noperation = \"pnl\"\nweight = 1\n";
    let s = parse(
        Path::new("s.toml"),
        &format!("{base}[[job]]\nname = \"reconcile\"\nstart = \"2s\"\nevery = \"5s\"\n[[job]]\nname = \"analyze\"\n"),
    )
    .unwrap();
    assert_eq!(s.jobs.len(), 2);
    assert_eq!(s.jobs[0].job, crate::jobs::Job::Reconcile);
    assert_eq!(s.jobs[0].every, Some(Dur(Duration::from_secs(5))));
    assert_eq!((s.jobs[1].start.0, s.jobs[1].every), (Duration::ZERO, None));
    let e = err(&format!("{base}[[job]]\nname = \"vacuum\"\n"));
    assert!(e.starts_with("s.toml:8:8: unknown job \"vacuum\""), "{e}");
    let e = err(&format!(
        "{base}[[job]]\nname = \"analyze\"\nevery = \"10ms\"\n"
    ));
    assert!(
        e.starts_with("s.toml:9:9: job analyze: every 10ms is too often"),
        "{e}"
    );
    let e = err(&format!("{base}[[job]]\nname = \"analyze\"\nwhen = 1\n"));
    assert!(e.contains("s.toml:9:1: unknown field `when`"), "{e}");
}

#[test]
fn a_full_scenario_parses_with_its_defaults() {
    let s = parse(Path::new("scenarios/mixed.toml"), GOOD).unwrap();
    assert_eq!(s.name, "mixed");
    assert_eq!(s.seed, 7);
    assert_eq!(s.duration(), Duration::from_secs(90));
    assert_eq!(s.phases[1].name, "phase 2");
    assert_eq!(
        s.phases[0].load,
        Load::Open {
            rate: 100.0,
            ramp_to: 400.0,
            arrival: Arrival::Poisson,
            max_in_flight: 64,
            late_after: Dur(Duration::from_millis(10)),
        }
    );
    assert_eq!(s.mix[1].params, vec![SqlParam::Org, SqlParam::Int(1, 10)]);
    assert_eq!(s.mix[1].name, "probe");
    assert_eq!(s.mix[0].days, 30);
    assert_eq!(s.tenants, Tenants::Zipf { exponent: 1.2 });
    assert_eq!(s.variants.len(), 1);
    assert_eq!(s.variants[0].pool, Pooling::PgBouncer);
    assert_eq!(s.variants[0].reads, Via::Replica);
    assert_eq!(
        s.budgets["dashboard"].p99,
        Some(Dur(Duration::from_millis(20)))
    );
    assert!(s.has_closed_phase());
}

#[test]
fn rate_and_duration_overrides_scale_the_phases() {
    let mut s = parse(Path::new("s.toml"), GOOD).unwrap();
    s.set_rate(800.0).unwrap();
    match s.phases[0].load {
        Load::Open { rate, ramp_to, .. } => assert_eq!((rate, ramp_to), (200.0, 800.0)),
        _ => unreachable!(),
    }
    s.set_duration(Duration::from_secs(9));
    assert_eq!(s.phases[0].duration.0, Duration::from_secs(3));
    assert_eq!(s.phases[1].duration.0, Duration::from_secs(6));
    assert!(s
        .select_variants(&["nope".into()])
        .unwrap_err()
        .to_string()
        .contains("part"));
}

#[test]
fn unknown_keys_and_wrong_types_name_line_and_column() {
    let e = err("bogus = 1\n[[phase]]\nduration = \"1s\"\nrate = 1\n[[mix]]\noperation = \"pnl\"\nweight = 1\n");
    assert!(e.starts_with("s.toml:1:1:"), "{e}");
    assert!(e.contains("bogus"), "{e}");
    let e = err("[[phase]]\nduration = 5\nrate = 1\n[[mix]]\noperation = \"pnl\"\nweight = 1\n");
    assert!(e.starts_with("s.toml:2:12:"), "{e}");
    let e = err(
        "[[phase]]\nduration = \"5 parsecs\"\nrate = 1\n[[mix]]\noperation = \"pnl\"\nweight = 1\n",
    );
    assert!(
        e.starts_with("s.toml:2:12:") && e.contains("bad duration"),
        "{e}"
    );
}

#[test]
fn every_error_of_a_file_is_reported_each_where_it_is() {
    // An unknown key, a value of the wrong type in another table, and a
    // check across tables (a budget for an operation not in the mix).
    let text = "[[phase]]\nduration = \"10s\"\nrate = 5\ncolour = \"blue\"\n\
                [[mix]]\noperation = \"dashboard\"\nweight = \"heavy\"\n\
                [[mix]]\noperation = \"pnl\"\nweight = 1\ndays = 3\n\
                [budgets.ledger]\np99 = \"10ms\"\n";
    let errors = check(Path::new("s.toml"), text).unwrap_err();
    let places: Vec<String> = errors
        .iter()
        .map(|e| e.splitn(4, ':').take(3).collect::<Vec<_>>().join(":"))
        .collect();
    assert_eq!(
        places,
        ["s.toml:4:1", "s.toml:7:10", "s.toml:11:8", "s.toml:12:10"],
        "{errors:#?}"
    );
    assert!(errors[0].contains("colour") && errors[1].contains("heavy"));
    assert!(errors[2].contains("`days` does not apply to pnl"));
    assert!(errors[3].contains("not in the mix"));
    // The joined message of `parse` carries them all.
    let e = err(text);
    assert_eq!(e.lines().count(), 4, "{e}");
}

#[test]
fn unknown_operations_are_refused_where_they_are_written() {
    let e = err(
        "[[phase]]\nduration = \"1s\"\nrate = 1\n[[mix]]\noperation = \"refund\"\nweight = 1\n",
    );
    assert!(e.starts_with("s.toml:5:13:"), "{e}");
    assert!(e.contains("refund") && e.contains("dashboard"), "{e}");
}

#[test]
fn weights_summing_to_zero_are_refused() {
    let e = err("[[phase]]\nduration = \"1s\"\nrate = 1\n[[mix]]\noperation = \"pnl\"\nweight = 0\n[[mix]]\noperation = \"ledger\"\nweight = 0\n");
    assert!(e.starts_with("s.toml:6:10:"), "{e}");
    assert!(e.contains("sum to zero"), "{e}");
}

#[test]
fn a_budget_on_an_operation_not_in_the_mix_is_refused() {
    let e = err("[[phase]]\nduration = \"1s\"\nrate = 1\n[[mix]]\noperation = \"pnl\"\nweight = 1\n[budgets.ledger]\np99 = \"5ms\"\n");
    assert!(e.starts_with("s.toml:7:10:"), "{e}");
    assert!(e.contains("not in the mix") && e.contains("pnl"), "{e}");
}

#[test]
fn phase_models_and_operation_keys_are_checked() {
    let head = "[[mix]]\noperation = \"pnl\"\nweight = 1\n";
    let e = err(&format!(
        "{head}[[phase]]\nduration = \"1s\"\nrate = 1\nusers = 2\n"
    ));
    assert!(
        e.starts_with("s.toml:7:9:") && e.contains("not both"),
        "{e}"
    );
    let e = err(&format!("{head}[[phase]]\nduration = \"1s\"\n"));
    assert!(e.contains("give `rate`"), "{e}");
    let e = err(&format!("{head}[[phase]]\nduration = \"1s\"\nrate = -3\n"));
    assert!(
        e.starts_with("s.toml:6:8:") && e.contains("positive"),
        "{e}"
    );
    let e = err("[[phase]]\nduration = \"1s\"\nrate = 1\n[[mix]]\noperation = \"pnl\"\nweight = 1\nlimit = 5\n");
    assert!(
        e.starts_with("s.toml:7:9:") && e.contains("does not apply to pnl"),
        "{e}"
    );
    let e = err("[[phase]]\nduration = \"1s\"\nrate = 1\n[[mix]]\noperation = \"sql\"\nweight = 1\nsql = \"SELECT $1, $2\"\nparams = [\"org\"]\n");
    assert!(
        e.starts_with("s.toml:8:10:") && e.contains("2 parameter"),
        "{e}"
    );
    let e = err("[[phase]]\nduration = \"1s\"\nrate = 1\n[[mix]]\noperation = \"sql\"\nweight = 1\nsql = \"SELECT $1\"\nparams = [\"int:9..1\"]\n");
    assert!(e.contains("empty"), "{e}");
    let e = err("[[phase]]\nduration = \"1s\"\nrate = 1\n[[mix]]\noperation = \"pnl\"\nweight = 1\n[[variant]]\nname = \"x\"\nmode = \"sharded\"\n");
    assert!(e.starts_with("s.toml:9:8:") && e.contains("sharded"), "{e}");
    let e = err("[[phase]]\nduration = \"1s\"\nrate = 1\n[[mix]]\noperation = \"pnl\"\nweight = 1\n[tenants]\ndistribution = \"uniform\"\nexponent = 2\n");
    assert!(e.starts_with("s.toml:9:12:"), "{e}");
}

#[test]
fn durations_parse_in_every_unit() {
    let d = |s: &str| s.parse::<Dur>().unwrap().0;
    assert_eq!(d("250us"), Duration::from_micros(250));
    assert_eq!(d("1.5s"), Duration::from_millis(1500));
    assert_eq!(d("2m"), Duration::from_secs(120));
    assert!("10".parse::<Dur>().is_err());
    assert!("5 days".parse::<Dur>().is_err());
    assert_eq!(Dur(Duration::from_millis(20)).to_string(), "20ms");
}

#[test]
fn early_release_is_read_and_a_long_one_is_refused_at_its_line() {
    let base =
        "[[phase]]\nduration = \"10s\"\nrate = 1\n[[mix]]\noperation = \"pnl\"\nweight = 1\n";
    let s = parse(
        Path::new("s.toml"),
        &format!("early_release = \"50us\"\n{base}"),
    )
    .unwrap();
    assert_eq!(s.early_release, Some(Dur(Duration::from_micros(50))));
    assert_eq!(
        parse(Path::new("s.toml"), base).unwrap().early_release,
        None
    );
    let e = err(&format!("early_release = \"5ms\"\n{base}"));
    assert!(
        e.contains("s.toml:1:17") && e.contains("too long: at most 2ms"),
        "{e}"
    );
    // The driver's rule when the scenario is silent; the scenario's when it is not.
    use crate::driver::{early_release, EARLY_RELEASE};
    assert_eq!(early_release(None, 500.0), EARLY_RELEASE);
    assert_eq!(early_release(None, 501.0), Duration::ZERO);
    assert_eq!(early_release(Some(Duration::ZERO), 100.0), Duration::ZERO);
    assert_eq!(
        early_release(Some(Duration::from_micros(50)), 5000.0),
        Duration::from_micros(50)
    );
}
