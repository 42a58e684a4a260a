//! Every exit code rehearse returns, named once. Pipelines branch on them,
//! so a code means the same thing in every command: `run`, `gate`,
//! `cutover` and the rest map their outcomes onto this list.

/// Success: the command did what it was asked and every verdict passed.
pub const OK: i32 = 0;
/// A verdict failed: a budget was missed, a regression was found, a verify
/// found differences, or the drill lost or changed an acknowledged write.
pub const FAIL: i32 = 1;
/// Bad usage or bad input: flags, settings, scenario files, a run directory
/// that is missing a field or has an unknown schema version.
pub const USAGE: i32 = 2;
/// The numbers must not be trusted: the target rate was not reached, the
/// driver was the bottleneck, or a budget had too few samples to be judged.
pub const INVALID: i32 = 3;
/// The estate is not usable: a binary is missing, a port is taken, a
/// component is down or unreachable, a statement failed, or a seed would
/// not fit the free disk.
pub const ENVIRONMENT: i32 = 4;
/// Refused for safety: the target is not a rehearsal database, its schema
/// is unknown, or a step was run out of order.
pub const REFUSED: i32 = 5;
/// Interrupted (Ctrl-C): what was measured is kept, marked interrupted.
pub const INTERRUPTED: i32 = 130;

/// The exit code of several outcomes: interrupted over invalid over a
/// failed verdict over success; any other code (an error) ranks between
/// a failed verdict and invalid.
pub fn worst(a: i32, b: i32) -> i32 {
    let rank = |c: i32| match c {
        INTERRUPTED => 5,
        INVALID => 4,
        OK => 0,
        FAIL => 2,
        _ => 3,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

/// The exit codes as `--help` documents them.
pub const HELP: &str = "\
Exit codes:
  0    success
  1    a verdict failed (budget, regression, verify, write ledger)
  2    bad usage or bad input (flags, settings file, scenario file, run directory)
  3    invalid: the numbers must not be trusted (rate not reached, driver-bound,
       too few samples for a budget)
  4    the estate is not usable: a binary is missing, a port is taken, a
       component is down or unreachable, a statement failed, or a seed would
       not fit the free disk (nothing is written)
  5    refused: not a rehearsal target, unknown schema version, or out of order
  130  interrupted: what was measured is kept, marked interrupted";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_outcome_wins_whatever_the_order() {
        for (a, b, w) in [
            (OK, FAIL, FAIL),
            (FAIL, INVALID, INVALID),
            (INVALID, INTERRUPTED, INTERRUPTED),
            (OK, ENVIRONMENT, ENVIRONMENT),
            (ENVIRONMENT, INVALID, INVALID),
            (FAIL, USAGE, USAGE),
        ] {
            assert_eq!(worst(a, b), w, "{a} {b}");
            assert_eq!(worst(b, a), w, "{b} {a}");
        }
    }
}
