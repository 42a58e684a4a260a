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
