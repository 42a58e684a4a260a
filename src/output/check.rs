//! `rehearse check`: one line per valid scenario file.

use std::path::Path;

use crate::scenario::Scenario;

pub fn scenario(file: &Path, s: &Scenario) -> String {
    format!(
        "{}: ok: {} phase(s), {:.0} s per variant, {} operation(s), {} variant(s) ({}), {} budget(s)\n",
        file.display(),
        s.phases.len(),
        s.duration().as_secs_f64(),
        s.mix.len(),
        s.variants.len(),
        s.variants
            .iter()
            .map(|v| v.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        s.budgets.len()
    )
}

/// Warnings for the budgets a scenario cannot decide at its length, even
/// were each figure half its budget: the requests it will get, those it
/// needs, and the measured seconds that would give them.
pub fn undecidable(file: &Path, s: &Scenario) -> String {
    let mut out = String::new();
    for f in crate::run::judge::forecast(s) {
        if f.decidable() {
            continue;
        }
        let Some(expected) = f.expected else {
            out += &format!(
                "{}: warning: budget {} {}: a closed-loop phase's request count depends on the service; \
                 it needs about {:.0} requests to be decided\n",
                file.display(),
                f.operation,
                f.metric,
                f.needed
            );
            continue;
        };
        out += &format!(
            "{}: warning: budget {} {} cannot be decided: {} gets about {:.0} measured requests at the scenario's rates, \
             and its {} needs about {:.0} to be decided even well inside its budget ({} measured at this rate); \
             lengthen the phases or budget a figure the run can bound\n",
            file.display(),
            f.operation,
            f.metric,
            f.operation,
            expected,
            f.metric,
            f.needed,
            f.seconds_needed
                .map_or("n/a".into(), crate::text::duration_s),
        );
    }
    out
}

/// The line `check` prints for a journeys file that checked.
pub fn journeys(file: &Path, j: &crate::journeys::file::Journeys) -> String {
    format!(
        "{}: ok: journeys, {} persona(s) ({}), {} transaction(s), {} users for {}, variant(s) {}, {} budget(s)\n",
        file.display(),
        j.personas.len(),
        j.personas
            .iter()
            .map(|p| format!("{} x{}", p.name, p.weight))
            .collect::<Vec<_>>()
            .join(", "),
        j.transactions().len(),
        j.users,
        j.duration,
        j.variants
            .iter()
            .map(|m| m.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        j.budgets.len()
    )
}

pub fn failed(files: usize, bad: &[(&std::path::PathBuf, usize)]) -> String {
    let errors: usize = bad.iter().map(|b| b.1).sum();
    format!(
        "check: {} error{} in {} of {files} file{}\n",
        errors,
        if errors == 1 { "" } else { "s" },
        bad.len(),
        if files == 1 { "" } else { "s" },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(name: &str) -> (std::path::PathBuf, Scenario) {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scenarios")
            .join(name);
        let s = crate::scenario::load(&p).unwrap();
        (p, s)
    }

    #[test]
    fn check_is_silent_on_the_shipped_suite_and_warns_on_a_budget_it_cannot_decide() {
        for name in [
            "finance_day.toml",
            "reporting_day.toml",
            "mixed_peak.toml",
            "month_end_close.toml",
            "dashboard_storm.toml",
        ] {
            let (p, s) = load(name);
            assert_eq!(undecidable(&p, &s), "", "{name}");
        }
        // gate_smoke's 8 measured seconds at 400/s, given a p99 budget: the
        // forecast wants about 3,500 requests for a p99 at half its budget.
        let (p, mut s) = load("gate_smoke.toml");
        s.budgets.get_mut("probe").unwrap().p99 =
            Some(crate::scenario::Dur(std::time::Duration::from_millis(50)));
        let w = undecidable(&p, &s);
        assert!(
            w.contains("warning: budget probe p99 cannot be decided") && w.contains("lengthen"),
            "{w}"
        );
    }
}
