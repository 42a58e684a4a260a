//! The interval log beside `run.json` (`latency.hlog`): written line by
//! line as intervals finish, read back one histogram at a time, and the
//! `.hgrm` percentile distribution files HdrHistogram's plotters read.
//! Writer and reader live together so the format is defined once.

use std::io::Write;
use std::path::Path;
use std::time::SystemTime;

use base64::Engine;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;

use crate::error::{Error, IoContext, Result};
use crate::run::histogram::MAX_VALUE_DIVISOR;

/// An interval log: the interval histograms in HdrHistogram's text format
/// (V2 + DEFLATE, base64), written line by line as intervals finish.
pub struct Hlog {
    file: std::fs::File,
    serializer: V2DeflateSerializer,
    buf: Vec<u8>,
}

impl Hlog {
    /// Create `path` and write the header the Java and Python readers expect.
    pub fn create(path: &Path, start: SystemTime, comment: &str) -> Result<Hlog> {
        let mut file = std::fs::File::create(path).io("creating the interval log", path)?;
        let epoch = start
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let header = format!(
            "#[{comment}]\n\
             #[Histogram log format version 1.3]\n\
             #[StartTime: {epoch:.3} (seconds since epoch)]\n\
             #[BaseTime: {epoch:.3} (seconds since epoch)]\n\
             #[MaxValueDivisor: {MAX_VALUE_DIVISOR:.1}]\n\
             \"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n"
        );
        file.write_all(header.as_bytes())
            .io("writing the interval log", path)?;
        Ok(Hlog {
            file,
            serializer: V2DeflateSerializer::new(),
            buf: Vec::new(),
        })
    }

    /// Append one interval histogram; `start` is seconds after the log's StartTime.
    pub fn write<T: hdrhistogram::Counter>(
        &mut self,
        tag: &str,
        start: f64,
        length: f64,
        h: &Histogram<T>,
    ) -> std::io::Result<()> {
        self.buf.clear();
        self.serializer
            .serialize(h, &mut self.buf)
            .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        let line = format!(
            "Tag={tag},{start:.3},{length:.3},{:.3},{}\n",
            h.max() as f64 / MAX_VALUE_DIVISOR,
            base64::engine::general_purpose::STANDARD.encode(&self.buf)
        );
        // One write per line, unbuffered: a crash loses at most the line being written.
        self.file.write_all(line.as_bytes())
    }
}

/// Visit the interval histograms of the tags `keep` accepts, one at a time
/// (a long run's log holds thousands; held all at once they take gigabytes):
/// `f(tag, seconds after the log's start, histogram)`.
pub fn for_each(
    path: &Path,
    keep: impl Fn(&str) -> bool,
    mut f: impl FnMut(&str, f64, Histogram<u64>) -> Result<()>,
) -> Result<()> {
    let bytes = std::fs::read(path).io("reading the interval log", path)?;
    let mut de = Deserializer::new();
    for entry in IntervalLogIterator::new(&bytes) {
        let entry = entry.map_err(|e| {
            Error::Usage(format!(
                "{}: not an HdrHistogram interval log ({e:?})",
                path.display()
            ))
        })?;
        let LogEntry::Interval(ilh) = entry else {
            continue;
        };
        let tag = ilh.tag().map(|t| t.as_str()).unwrap_or_default();
        if !keep(tag) {
            continue;
        }
        let raw = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            ilh.encoded_histogram(),
        )
        .map_err(|e| {
            Error::Usage(format!(
                "{}: bad base64 in interval of {tag}: {e}",
                path.display()
            ))
        })?;
        let h: Histogram<u64> = de
            .deserialize(&mut std::io::Cursor::new(raw))
            .map_err(|e| {
                Error::Usage(format!(
                    "{}: bad histogram in interval of {tag}: {e:?}",
                    path.display()
                ))
            })?;
        f(tag, ilh.start_timestamp().as_secs_f64(), h)?;
    }
    Ok(())
}

/// HdrHistogram's percentile distribution text, as the Java and C tools
/// print it (`outputPercentileDistribution` with 5 ticks per half distance),
/// values in milliseconds from nanoseconds.
pub fn hgrm(h: &Histogram<u64>) -> String {
    let ratio = 1e6;
    let mut out = format!(
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    if h.is_empty() {
        return out;
    }
    let mut total = 0u64;
    for v in h.iter_quantiles(5) {
        let q = v.quantile_iterated_to();
        let value = h.highest_equivalent(v.value_iterated_to()) as f64 / ratio;
        total += v.count_since_last_iteration();
        if q < 1.0 {
            out += &format!(
                "{value:12.3} {q:2.12} {total:10} {:14.2}\n",
                1.0 / (1.0 - q)
            );
        } else {
            out += &format!("{value:12.3} {q:2.12} {total:10}\n");
        }
    }
    let buckets = {
        // Buckets and sub-buckets as the Java footer reports them.
        let sub = 2usize.pow((h.sigfig() as f64 * 10f64.log2()).ceil() as u32 + 1);
        let mut b = 1;
        let mut smallest_untrackable = (sub as u64) * h.low();
        while smallest_untrackable <= h.high() && smallest_untrackable < u64::MAX / 2 {
            smallest_untrackable *= 2;
            b += 1;
        }
        (b, sub)
    };
    out += &format!(
        "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]\n#[Max     = {:12.3}, Total count    = {:12}]\n#[Buckets = {:12}, SubBuckets     = {:12}]\n",
        h.mean() / ratio,
        h.stdev() / ratio,
        h.max() as f64 / ratio,
        h.len(),
        buckets.0,
        buckets.1
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_percentile_distribution_reads_like_hdrhistograms() {
        let mut h = crate::run::histogram::histogram::<u64>();
        for v in 1..=1000u64 {
            h.record(v * 1_000_000).unwrap(); // 1..1000 ms
        }
        let text = hgrm(&h);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("Value") && lines[0].contains("1/(1-Percentile)"));
        // First row: the smallest value at percentile 0.
        let first: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(first[1], "0.000000000000");
        assert!(
            (first[0].parse::<f64>().unwrap() - 1.0).abs() < 0.01,
            "{}",
            lines[2]
        );
        // The median row is near 500 ms, and the last row is the maximum at percentile 1.
        let median = lines
            .iter()
            .find(|l| l.split_whitespace().nth(1) == Some("0.500000000000"))
            .unwrap();
        let v: f64 = median.split_whitespace().next().unwrap().parse().unwrap();
        assert!((v - 500.0).abs() < 1.0, "{median}");
        let last_row = lines.iter().rev().find(|l| !l.starts_with('#')).unwrap();
        assert!(
            last_row.contains("1.000000000000") && last_row.contains("1000"),
            "{last_row}"
        );
        assert!(text.contains("Total count    =         1000"), "{text}");
    }
}
