//! The readiness page: the verdict first, then its reasons, then legacy
//! against partitioned per operation, then one section per piece of
//! evidence with its figure, a link to the table that shows it, and its key
//! chart inline; last, what GO requires.

use std::path::{Component, Path, PathBuf};

use super::{Readiness, State, Verdict, REQUIRED};
use crate::error::Result;
use crate::render::charts::{self, Bars, Rule};
use crate::render::{Block, Cell, Doc, Line, Table, Tone};

fn tone(s: State) -> Tone {
    match s {
        State::Pass => Tone::Pass,
        State::Fail => Tone::Fail,
        State::Unknown | State::Info => Tone::Warn,
    }
}

/// `to` relative to `from` (both made absolute), for links that survive
/// moving the results directory whole.
fn relative(from: &Path, to: &Path) -> PathBuf {
    let abs = |p: &Path| {
        std::fs::canonicalize(p).unwrap_or_else(|_| {
            std::env::current_dir()
                .map(|c| c.join(p))
                .unwrap_or_else(|_| p.to_path_buf())
        })
    };
    let (a, b) = (abs(from), abs(to));
    let a: Vec<Component> = a.components().collect();
    let b: Vec<Component> = b.components().collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..a.len() {
        out.push("..");
    }
    for c in &b[common..] {
        out.push(c.as_os_str());
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

fn href(out: &Path, dir: &Path, file: &str) -> String {
    relative(out, dir).join(file).to_string_lossy().into_owned()
}

/// The p99 ratio per operation, partitioned over legacy, with 1.0 drawn.
fn ratio_chart(r: &Readiness, out: &Path) -> Result<Option<(String, String)>> {
    let rows: Vec<_> = r.modes.iter().filter(|m| m.metric == "p99").collect();
    if rows.is_empty() {
        return Ok(None);
    }
    let several = {
        let mut s: Vec<&str> = rows.iter().map(|m| m.scenario.as_str()).collect();
        s.dedup();
        s.len() > 1
    };
    let bars = Bars {
        title:
            "partitioned over legacy: p99 per operation (the ratio; the table gives its interval)"
                .into(),
        y_desc: "p99 ratio partitioned / legacy".into(),
        categories: rows
            .iter()
            .map(|m| {
                if several {
                    format!("{} {}", m.scenario, m.operation)
                } else {
                    m.operation.clone()
                }
            })
            .collect(),
        groups: vec![(
            "p99 partitioned / legacy".into(),
            rows.iter().map(|m| m.ratio).collect(),
        )],
        rules: vec![(
            None,
            Rule {
                label: "no change (1.0)".into(),
                y: 1.0,
                color: charts::GUIDE,
            },
        )],
        value: |x| format!("{x:.2}"),
    };
    let name = "readiness-p99-ratio";
    let svg = charts::render_bars(&bars, &out.join("charts"), name)?;
    Ok(Some((name.to_string(), svg)))
}

/// The page, drawing its chart into `out/charts`.
pub fn page(r: &Readiness, out: &Path) -> Result<Doc> {
    let mut doc = Doc::new(format!(
        "USE_PARTITIONED_TABLES readiness: {}",
        r.verdict.word()
    ));
    let vt = match r.verdict {
        Verdict::Go => Tone::Pass,
        Verdict::NoGo => Tone::Fail,
        Verdict::Unknown => Tone::Warn,
    };
    doc.push(
        Block::heading(
            1,
            Line::default()
                .toned(vt, r.verdict.word())
                .text(" USE_PARTITIONED_TABLES readiness"),
        )
        .id("verdict"),
    );
    let meaning = match r.verdict {
        Verdict::Go => "Every required piece of evidence is present and passes.",
        Verdict::NoGo => "A required piece of evidence failed: the rollout is not ready as rehearsed.",
        Verdict::Unknown => {
            "A required piece of evidence is missing, unreadable or could not be judged: the rehearsal does not yet say. Missing evidence is never a pass."
        }
    };
    doc.push(Block::para(meaning));
    // Why, each in its own piece's tone: a failure, or what is not known.
    let mut why: Vec<Line> = r
        .pieces
        .iter()
        .filter(|p| p.required && p.state != State::Pass)
        .map(|p| {
            Line::default()
                .toned(tone(p.state), format!("{} {}", p.title, p.state.word()))
                .text(format!(": {}", super::judge::brief(p)))
        })
        .collect();
    why.extend(r.unreadable.iter().map(|(d, e)| {
        Line::default()
            .toned(Tone::Warn, format!("{} could not be read", d.display()))
            .text(format!(": {e}"))
    }));
    doc.push(Block::list(why).id("why"));
    doc.push(Block::para(r.estate_note.as_str()).id("estate"));

    // Legacy against partitioned: the table a reviewer reads first.
    doc.push(Block::heading(2, "Legacy against partitioned").id("modes"));
    if r.modes.is_empty() {
        doc.push(Block::para(Line::default().toned(
            Tone::Warn,
            "No run held both a legacy and a partitioned variant: what the flag does to each operation is not measured.",
        )));
    } else {
        doc.push(Block::para(
            "Each suite scenario ran both modes on one schedule and one seed, one after the other. \
             The ratio is partitioned over legacy (above 1: partitioned takes longer, or for throughput does more), \
             with its interval from the two-level block bootstrap of `rehearse compare` (99%; one run per side, \
             so a 5% spread between runs is allowed for).",
        ));
        if let Some(line) = crate::report::modes::parity_summary(&r.modes) {
            doc.push(Block::para(line).id("parity"));
        }
        let t = crate::report::modes::table(&r.modes, true);
        doc.push(t.block());
        if let Some((name, svg)) = ratio_chart(r, out)? {
            doc.push(Block::Figure {
                png: format!("charts/{name}.png"),
                name,
                svg,
            });
        }
    }

    // The evidence at a glance, then each piece.
    doc.push(Block::heading(2, "Evidence").id("evidence"));
    let mut t = Table::new(&["piece", "required", "state", "figure"])
        .id("evidence-table")
        .wrap(3);
    for p in &r.pieces {
        t.row([
            Cell::from(p.title.as_str()),
            Cell::from(if p.required { "yes" } else { "no" }),
            Cell::toned(tone(p.state), p.state.word()),
            Cell::wrap(p.figure.as_str()),
        ]);
    }
    doc.push(t.block());
    for p in &r.pieces {
        let mut b = vec![Block::heading(
            2,
            Line::default()
                .text(format!("{}: ", p.title))
                .toned(tone(p.state), p.state.word()),
        )];
        b.push(Block::para(p.figure.as_str()));
        b.push(Block::list(p.reasons.iter().map(|w| {
            Line::default().toned(
                if p.state == State::Fail {
                    Tone::Fail
                } else {
                    Tone::Warn
                },
                w.as_str(),
            )
        })));
        b.push(Block::list(p.notes.iter().map(|n| Line::from(n.as_str()))));
        let links: Vec<Line> = p
            .sources
            .iter()
            .map(|s| {
                let dir = relative(out, &s.dir).to_string_lossy().into_owned();
                let mut l = Line::default().code(dir);
                if let Some(a) = &s.anchor {
                    l = l.text(": ").link("the table", href(out, &s.dir, a));
                }
                l
            })
            .collect();
        b.push(Block::list(links));
        for s in &p.sources {
            let Some(chart) = &s.chart else { continue };
            let file = s.dir.join(chart);
            if let Ok(svg) = std::fs::read_to_string(&file) {
                let name = format!(
                    "{}-{}",
                    p.id,
                    Path::new(chart)
                        .file_stem()
                        .and_then(|x| x.to_str())
                        .unwrap_or("chart")
                );
                let png = href(out, &s.dir, &chart.replace(".svg", ".png"));
                b.push(Block::Figure { name, png, svg });
            }
        }
        doc.push(Block::section(format!("piece-{}", p.id), b));
    }

    doc.push(Block::heading(2, "What GO requires").id("required"));
    doc.push(Block::list(REQUIRED.iter().map(|q| {
        Line::default()
            .strong(q.title)
            .text(format!(": {}; gathered by ", q.rule))
            .code(q.how)
    })));
    doc.push(Block::para(
        "Not required, shown for the review: each mode's capacity and the maintenance jobs' cost under load, when the directories hold them.",
    ));
    doc.push(Block::para(
        Line::default().text("Read from: ").code(
            r.dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        ),
    ));
    Ok(doc)
}
