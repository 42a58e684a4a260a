//! Comparisons as a table, Markdown, or JSON: `rehearse compare` prints
//! them, and the ab page draws them (`output/compare.rs` hands them on).

use crate::compare::{CompareSettings, Comparison};
use crate::render::{Block, Doc, Markdown, Renderer as _, Table};

pub use crate::text::Format;

/// The interval's column header at level 1 − `alpha`, with as many decimals
/// as the level needs not to round to 100%: "99% CI", "99.93% CI".
pub fn ci_label(alpha: f64) -> String {
    let decimals = (-(alpha * 100.0).log10()).ceil().clamp(0.0, 4.0) as usize;
    format!("{:.decimals$}% CI", (1.0 - alpha) * 100.0)
}

/// The header and rows of every compared row, and the notes on how the
/// between-run spread was accounted for.
fn rows(
    out: &[(String, Comparison)],
    s: &CompareSettings,
) -> (Vec<String>, Vec<Vec<String>>, Vec<String>) {
    let ci = ci_label(s.alpha);
    let header = [
        "variant/operation",
        "metric",
        "baseline",
        "candidate",
        "ratio",
        ci.as_str(),
        "verdict",
    ]
    .map(String::from)
    .to_vec();
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    for (key, c) in out {
        notes.push(format!("{key}: {}", c.between_runs));
        for r in &c.rows {
            let unit = if r.metric == "throughput" {
                "/s"
            } else {
                " ms"
            };
            rows.push(vec![
                key.clone(),
                r.metric.clone(),
                format!("{:.3}{unit}", r.baseline),
                format!("{:.3}{unit}", r.candidate),
                format!("x{:.3}", r.ratio),
                format!("{:.3}-{:.3}", r.low, r.high),
                match &r.note {
                    Some(n) => format!("{} ({n})", r.change),
                    None => r.change.to_string(),
                },
            ]);
        }
    }
    notes.dedup_by(|a, b| a.split_once(": ").map(|x| x.1) == b.split_once(": ").map(|x| x.1));
    (header, rows, notes)
}

/// The comparison as a page's blocks: the table, then the notes.
pub fn blocks(out: &[(String, Comparison)], s: &CompareSettings) -> Vec<Block> {
    let (header, rows, notes) = rows(out, s);
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    vec![
        Table::new(&header)
            .numeric_from(2)
            .wrap(6)
            .rows(rows)
            .block(),
        Block::list(notes),
    ]
}

/// Every compared row, with how the between-run spread was accounted for.
pub fn render(
    out: &[(String, Comparison)],
    s: &CompareSettings,
    format: Format,
) -> crate::Result<String> {
    match format {
        Format::Json => {
            let mut text = serde_json::to_string_pretty(out).expect("comparisons serialize");
            text.push('\n');
            Ok(text)
        }
        Format::Markdown => Ok(Markdown.render(&Doc {
            title: String::new(),
            blocks: blocks(out, s),
        })),
        Format::Table => {
            let (header, rows, notes) = rows(out, s);
            let header: Vec<&str> = header.iter().map(String::as_str).collect();
            let mut text = crate::text::table(&header, &rows);
            text.push('\n');
            for n in notes {
                text += &format!("{n}\n");
            }
            Ok(text)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_interval_header_names_its_level_without_rounding_it_to_100() {
        assert_eq!(super::ci_label(0.01), "99% CI");
        assert_eq!(super::ci_label(0.05), "95% CI");
        assert_eq!(super::ci_label(0.0032), "99.7% CI");
        assert_eq!(super::ci_label(0.0007), "99.93% CI");
        assert_eq!(super::ci_label(0.00071), "99.93% CI");
    }
}
