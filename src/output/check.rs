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
