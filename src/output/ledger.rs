//! A write-ledger check as the drills print it.

use std::fmt;

use crate::driver::ledger::LedgerCheck;

impl fmt::Display for LedgerCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "acknowledged writes: {}, missing: {}, differing: {}, resurrected: {}, unknown outcome: {} ({}) (checked {} entries in {}; {} rewritten during the check)",
            self.acknowledged,
            self.missing,
            self.differing,
            self.resurrected,
            self.unknown_outcome,
            if self.unknown_resolved {
                "each judged from its row"
            } else {
                "not judged until the final check"
            },
            self.entries_checked,
            self.side,
            self.changed_during_check
        )
    }
}
