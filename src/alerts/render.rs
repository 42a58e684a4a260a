//! The drill's report as Markdown and as the HTML a run's page leads with.

use super::*;

pub(super) fn secs(x: Option<f64>) -> String {
    x.map(|s| format!("{s:.1} s"))
        .unwrap_or_else(|| "never".into())
}

/// The drill's table, Markdown.
pub fn markdown(r: &AlertsReport) -> String {
    let mut md = format!("# Alert drill: {}\n\n", if r.ok { "PASS" } else { "FAIL" });
    for reason in &r.reasons {
        md += &format!("- {reason}\n");
    }
    if !r.reasons.is_empty() {
        md.push('\n');
    }
    md += &format!(
        "Under `{}`; Prometheus {} scraping and evaluating every {} s. Steady period {} s: {}.\n\n",
        r.scenario,
        r.prometheus,
        r.scrape_interval_s,
        r.steady_s,
        if r.steady_false_positives.is_empty() {
            "no alert fired".to_string()
        } else {
            format!("FIRED {}", r.steady_false_positives.join(", "))
        }
    );
    if !r.standing.is_empty() {
        md += &format!(
            "Standing alerts named with --standing (reported, not judged): {}.\n\n",
            r.standing
                .iter()
                .map(|(a, fired)| format!(
                    "{a} ({})",
                    if *fired { "fired" } else { "did not fire" }
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    md += "| fault | expected alert | for | fired after | deadline | resolved after | deadline | result |\n";
    md += "|---|---|---:|---:|---:|---:|---:|---|\n";
    for f in &r.faults {
        for a in &f.alerts {
            md += &format!(
                "| {} | {} | {:.0} s | {} | {:.0} s | {} | {:.0} s | {} |\n",
                f.fault.name(),
                a.alert,
                a.for_s,
                secs(a.fired_after_s),
                a.fire_deadline_s,
                secs(a.resolved_after_s),
                a.resolve_deadline_s,
                if a.ok { "ok" } else { "FAIL" }
            );
        }
    }
    md.push('\n');
    for f in &r.faults {
        md += &format!("- **{}**: {}", f.fault.name(), f.how);
        if !f.also_fired.is_empty() {
            md += &format!("; also fired, as consequences: {}", f.also_fired.join(", "));
        }
        if !f.unexpected.is_empty() {
            md += &format!("; UNEXPECTED: {}", f.unexpected.join(", "));
        }
        if let Some(e) = &f.error {
            md += &format!("; {e}");
        }
        md.push('\n');
    }
    if let Some(v) = &r.workload_verdict {
        md += &format!("\nThe workload's own verdict (run.json, budgets): {v}.\n");
    }
    md
}

/// The drill's section of report.html: the verdict's reasons and the table.
pub fn html(r: &AlertsReport) -> String {
    let esc = |t: &str| {
        t.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let mut h = String::from("<section id=\"alert-drill\"><h2>Alert drill</h2>");
    if !r.reasons.is_empty() {
        h += "<ul>";
        for why in &r.reasons {
            h += &format!("<li class=\"fail\">{}</li>", esc(why));
        }
        h += "</ul>";
    }
    h += &format!(
        "<p>Prometheus {} scraping and evaluating every {} s; steady period {} s: {}.</p>",
        esc(&r.prometheus),
        r.scrape_interval_s,
        r.steady_s,
        if r.steady_false_positives.is_empty() {
            "no alert fired".to_string()
        } else {
            format!("FIRED {}", esc(&r.steady_false_positives.join(", ")))
        }
    );
    if !r.standing.is_empty() {
        h += &format!(
            "<p>Standing alerts named with --standing (reported, not judged): {}.</p>",
            esc(&r
                .standing
                .iter()
                .map(|(a, fired)| format!(
                    "{a} ({})",
                    if *fired { "fired" } else { "did not fire" }
                ))
                .collect::<Vec<_>>()
                .join(", "))
        );
    }
    h += "<table><tr><th>fault</th><th class=\"text\">expected alert</th><th>for</th><th>fired after</th><th>deadline</th><th>resolved after</th><th>deadline</th><th>result</th></tr>";
    for f in &r.faults {
        for a in &f.alerts {
            h += &format!(
                "<tr><td>{}</td><td class=\"text\">{}</td><td>{:.0} s</td><td>{}</td><td>{:.0} s</td><td>{}</td><td>{:.0} s</td><td class=\"{}\">{}</td></tr>",
                f.fault.name(),
                esc(&a.alert),
                a.for_s,
                secs(a.fired_after_s),
                a.fire_deadline_s,
                secs(a.resolved_after_s),
                a.resolve_deadline_s,
                if a.ok { "pass" } else { "fail" },
                if a.ok { "ok" } else { "FAIL" },
            );
        }
    }
    h += "</table><ul>";
    for f in &r.faults {
        let mut line = format!("<b>{}</b>: {}", f.fault.name(), esc(&f.how));
        if !f.also_fired.is_empty() {
            line += &format!(
                "; also fired, as consequences: {}",
                esc(&f.also_fired.join(", "))
            );
        }
        if !f.unexpected.is_empty() {
            line += &format!(
                "; <span class=\"fail\">unexpected: {}</span>",
                esc(&f.unexpected.join(", "))
            );
        }
        h += &format!("<li>{line}</li>");
    }
    h + "</ul></section>"
}
