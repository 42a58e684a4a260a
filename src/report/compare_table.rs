//! Comparisons as a table, Markdown, or JSON: `rehearse compare` prints
//! them, and the ab page draws them (`output/compare.rs` hands them on).

use crate::compare::{CompareSettings, Comparison};

pub use crate::text::Format;

/// Every compared row, with how the between-run spread was accounted for.
pub fn render(
    out: &[(String, Comparison)],
    s: &CompareSettings,
    format: Format,
) -> crate::Result<String> {
    if let Format::Json = format {
        let mut text = serde_json::to_string_pretty(out).expect("comparisons serialize");
        text.push('\n');
        return Ok(text);
    }
    let ci = format!("{:.0}% CI", (1.0 - s.alpha) * 100.0);
    let header = [
        "variant/operation",
        "metric",
        "baseline",
        "candidate",
        "ratio",
        ci.as_str(),
        "verdict",
    ];
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
    let mut text = match format {
        Format::Markdown => {
            let mut t = format!(
                "| {} |\n|{}|\n",
                header.join(" | "),
                header.iter().map(|_| "---").collect::<Vec<_>>().join("|")
            );
            for r in rows {
                t += &format!("| {} |\n", r.join(" | "));
            }
            t
        }
        _ => crate::text::table(&header, &rows),
    };
    text.push('\n');
    for n in notes {
        text += &format!("{n}\n");
    }
    Ok(text)
}
