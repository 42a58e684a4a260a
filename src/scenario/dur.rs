//! Durations as scenario files and flags write them: `250us`, `5ms`,
//! `10s`, `2m`, `1h`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A duration written as `250us`, `5ms`, `10s`, `2m` or `1h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Duration);

impl std::str::FromStr for Dur {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Dur, String> {
        let s = s.trim();
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let bad = || format!("bad duration {s:?}: write a number and a unit, e.g. 500ms, 10s, 2m");
        let n: f64 = num.parse().map_err(|_| bad())?;
        let secs = match unit.trim() {
            "us" | "µs" => n / 1e6,
            "ms" => n / 1e3,
            "s" => n,
            "m" | "min" => n * 60.0,
            "h" => n * 3600.0,
            _ => return Err(bad()),
        };
        if !(0.0..=30.0 * 86_400.0).contains(&secs) {
            return Err(format!("duration {s:?} is out of range"));
        }
        Ok(Dur(Duration::from_secs_f64(secs)))
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Dur, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for Dur {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let us = self.0.as_micros();
        if us % 1_000_000 == 0 {
            write!(f, "{}s", us / 1_000_000)
        } else if us % 1000 == 0 {
            write!(f, "{}ms", us / 1000)
        } else {
            write!(f, "{us}us")
        }
    }
}

impl Serialize for Dur {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
