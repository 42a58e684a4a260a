//! Progress display for long work: indicatif bars on a terminal, and one
//! plain line per finished phase everywhere (CI logs have no terminal).

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// One phase of a long command.
pub struct Phase {
    name: String,
    bar: ProgressBar,
    started: Instant,
    verbose: bool,
}

impl Phase {
    /// A phase of `total` units (`unit` names them, e.g. "orgs"); a hidden
    /// bar when `verbose` is false.
    pub fn start(name: &str, total: u64, unit: &str, verbose: bool) -> Phase {
        let bar = if verbose {
            ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
        } else {
            ProgressBar::hidden()
        };
        let template = format!(
            "{{prefix:>10}} [{{elapsed_precise}}] {{bar:30}} {{pos}}/{{len}} {unit} ({{per_sec}}, eta {{eta}}) {{msg}}"
        );
        bar.set_style(ProgressStyle::with_template(&template).expect("valid template"));
        bar.set_prefix(name.to_string());
        bar.enable_steady_tick(Duration::from_millis(500));
        Phase {
            name: name.to_string(),
            bar,
            started: Instant::now(),
            verbose,
        }
    }

    pub fn inc(&self, n: u64) {
        self.bar.inc(n);
    }

    pub fn set_message(&self, msg: String) {
        self.bar.set_message(msg);
    }

    /// Close the bar, print a summary line, and return the seconds taken.
    pub fn finish(&self, summary: &str) -> f64 {
        self.bar.finish_and_clear();
        let secs = self.started.elapsed().as_secs_f64();
        if self.verbose {
            eprintln!("{:>10}  {secs:7.1} s  {summary}", self.name);
        }
        secs
    }
}

/// Peak resident set size of this process in KiB (VmHWM), if known.
pub fn peak_rss_kib() -> Option<u64> {
    status_kib("VmHWM:")
}

/// Resident set size of this process now, in KiB (VmRSS), if known.
pub fn rss_kib() -> Option<u64> {
    status_kib("VmRSS:")
}

fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// 1234567 -> "1,234,567".
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_groups_digits() {
        assert_eq!(super::thousands(0), "0");
        assert_eq!(super::thousands(999), "999");
        assert_eq!(super::thousands(1_234_567), "1,234,567");
    }
}
