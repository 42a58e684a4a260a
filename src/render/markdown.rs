//! Markdown (GitHub's dialect): summary.md, alerts-drill.md, gate.md, and
//! what `--format md` prints. A `|` in a table cell is escaped; what did not
//! pass is set in bold, as HTML colours it.

use super::{Block, Doc, Inline, Line, Renderer, Table, Tone};

pub struct Markdown;

impl Renderer for Markdown {
    fn render(&self, doc: &Doc) -> String {
        let mut out = String::new();
        blocks(&doc.blocks, &mut out);
        out
    }
}

fn blocks(bs: &[Block], out: &mut String) {
    for b in bs {
        block(b, out);
    }
}

fn block(b: &Block, out: &mut String) {
    match b {
        Block::Heading { level, text, .. } => {
            out.push_str(&"#".repeat((*level).clamp(1, 6) as usize));
            out.push(' ');
            out.push_str(&line(text));
            out.push_str("\n\n");
        }
        Block::Para { text, .. } => {
            out.push_str(&line(text));
            out.push_str("\n\n");
        }
        Block::List { items, .. } => {
            if items.is_empty() {
                return;
            }
            for i in items {
                out.push_str("- ");
                out.push_str(&line(i));
                out.push('\n');
            }
            out.push('\n');
        }
        Block::Table(t) => table(t, out),
        Block::Pre { text, .. } => {
            out.push_str("```\n");
            out.push_str(text);
            if !text.ends_with('\n') {
                out.push('\n');
            }
            out.push_str("```\n\n");
        }
        Block::Section { blocks: bs, .. } => blocks(bs, out),
        Block::Figure { name, png, .. } => {
            out.push_str(&format!("![{name}]({png})\n\n"));
        }
    }
}

fn toned(tone: Option<Tone>, s: &str) -> String {
    match tone {
        Some(Tone::Fail | Tone::Warn) if !s.is_empty() => format!("**{s}**"),
        _ => s.to_string(),
    }
}

/// A line's inlines; table cells escape `|` on top.
pub(super) fn line(l: &Line) -> String {
    l.0.iter()
        .map(|i| match i {
            Inline::Text(s) => s.clone(),
            Inline::Code(s) => format!("`{s}`"),
            Inline::Strong(s) => format!("**{s}**"),
            Inline::Toned(t, s) => toned(Some(*t), s),
            Inline::Link(s, href) => format!("[{s}]({})", href.replace(' ', "%20")),
        })
        .collect()
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn table(t: &Table, out: &mut String) {
    let names: Vec<String> = t.columns.iter().map(|c| cell(&c.name)).collect();
    out.push_str(&format!("| {} |\n|", names.join(" | ")));
    for c in &t.columns {
        out.push_str(if c.numeric { "---:|" } else { "---|" });
    }
    out.push('\n');
    for r in &t.rows {
        let cells: Vec<String> = r.iter().map(|c| cell(&toned(c.tone, &c.text))).collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    if t.rows.is_empty() {
        if let Some(e) = &t.empty {
            out.push_str(&format!("| {} |\n", cell(&toned(e.tone, &e.text))));
        }
    }
    out.push('\n');
}
