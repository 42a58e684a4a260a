//! Progress display for long work: indicatif bars on a terminal; without
//! one (CI logs), a plain progress line every 30 seconds; and one line per
//! finished phase everywhere.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a phase without a terminal prints where it is.
const PLAIN_EVERY: Duration = Duration::from_secs(30);

/// One phase of a long command.
pub struct Task {
    name: String,
    unit: String,
    bar: ProgressBar,
    started: Instant,
    verbose: bool,
    /// Without a terminal: when the last plain line was printed, and the message.
    plain: Option<Mutex<(Instant, String)>>,
}

impl Task {
    /// A phase of `total` units (`unit` names them, e.g. "orgs"); a hidden
    /// bar when `verbose` is false.
    pub fn start(name: &str, total: u64, unit: &str, verbose: bool) -> Task {
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
        let plain = (verbose && !std::io::stderr().is_terminal())
            .then(|| Mutex::new((Instant::now(), String::new())));
        Task {
            name: name.to_string(),
            unit: unit.to_string(),
            bar,
            started: Instant::now(),
            verbose,
            plain,
        }
    }

    pub fn inc(&self, n: u64) {
        self.bar.inc(n);
        self.plain_line();
    }

    pub fn set_message(&self, msg: String) {
        if let Some(p) = &self.plain {
            p.lock().unwrap_or_else(|e| e.into_inner()).1 = msg.clone();
        }
        self.bar.set_message(msg);
    }

    /// Without a terminal, every PLAIN_EVERY: position, rate, ETA, message.
    fn plain_line(&self) {
        let Some(p) = &self.plain else { return };
        let mut p = p.lock().unwrap_or_else(|e| e.into_inner());
        if p.0.elapsed() < PLAIN_EVERY {
            return;
        }
        p.0 = Instant::now();
        let (pos, len) = (self.bar.position(), self.bar.length().unwrap_or(0));
        let secs = self.started.elapsed().as_secs_f64();
        let rate = pos as f64 / secs.max(1e-9);
        let eta = if rate > 0.0 && len > pos {
            format!(", eta {:.0} s", (len - pos) as f64 / rate)
        } else {
            String::new()
        };
        eprintln!(
            "{:>10}  {secs:7.1} s  {} of {} {} ({:.0}%), {:.0} {}/s{eta}  {}",
            self.name,
            thousands(pos),
            thousands(len),
            self.unit,
            pos as f64 * 100.0 / len.max(1) as f64,
            rate,
            self.unit,
            p.1
        );
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
