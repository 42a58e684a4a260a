//! The workload a drill runs in the background: a scenario's steady load
//! (its last phase), one variant, until the drill stops it.

use std::time::Duration;

use super::Options;
use crate::error::{Error, Result};
use crate::scenario::{load, Dur, Scenario};
use crate::schema::Mode;

/// A scenario as a drill runs it in the background: its last phase (the
/// steady load), renamed `phase`, lasting until the drill stops it, one
/// variant (`variant`, else the first), no warm-up, at `rate` if given.
pub fn load_steady(o: &Options, phase: &str) -> Result<Scenario> {
    let (rate, variant) = (o.rate, o.variant.as_ref());
    let mut s = load(&o.scenario)?;
    let mut last = s
        .phases
        .last()
        .cloned()
        .expect("a checked scenario has a phase");
    last.name = phase.into();
    last.duration = Dur(Duration::from_secs(7 * 24 * 3600));
    s.phases = vec![last];
    if let Some(r) = rate {
        if r.is_nan() || r <= 0.0 {
            return Err(Error::Usage("--rate must be positive".into()));
        }
        s.set_rate(r)?;
    }
    if let Some(v) = variant {
        s.select_variants(std::slice::from_ref(v))?;
    }
    s.variants.truncate(1);
    s.warmup = Dur(Duration::ZERO);
    Ok(s)
}

/// A drill's workload: the scenario's last phase, its first (or the
/// chosen) variant following the flag, budgets cleared (a drill judges
/// itself), and a mix that writes, so the ledger can prove something.
pub fn flag_workload(o: &Options, phase: &str) -> Result<Scenario> {
    let path = &o.scenario;
    let mut s = load_steady(o, phase)?;
    let v = &mut s.variants[0];
    // A tag of the interval log: letters, digits, '-' and '_' only.
    v.name = format!("flag-{}", v.name);
    v.mode = Mode::Legacy;
    // The drill judges steps against the steady state, not budgets.
    s.budgets.clear();
    if !s.mix.iter().any(|m| m.operation.is_write()) {
        return Err(Error::Usage(format!(
            "{}: the drill proves no acknowledged write is lost, and this scenario's mix writes nothing; \
             use one with finance operations (e.g. scenarios/mixed_peak.toml)",
            path.display()
        )));
    }
    Ok(s)
}
