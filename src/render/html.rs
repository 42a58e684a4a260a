//! HTML: report.html, from maud templates. Every text is escaped by the
//! template; the one thing embedded as it is is a chart's SVG, which
//! rehearse drew itself. [`escape`] is the same escaping for the one XML
//! file rehearse writes by hand (JUnit).

use std::fmt::Write as _;

use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::{Block, Cell, Doc, Inline, Line, Renderer, Table};

pub struct Html;

/// One stylesheet for every page. Headers may wrap: a wide table keeps its
/// figures on one line and fits the page by breaking its column names.
const STYLE: &str = "body{font-family:sans-serif;margin:2em;max-width:1200px}\
table{border-collapse:collapse;margin:1em 0}\
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right;white-space:nowrap}\
.text{white-space:normal;text-align:left!important;min-width:18em}\
td:first-child,th:first-child{text-align:left}\
th{white-space:normal;vertical-align:bottom}\
.pass{color:#0a7d3c}.fail{color:#c00000;font-weight:bold}.warn{color:#a06000;font-weight:bold}\
h1 .pass,h1 .fail,h1 .warn{margin-right:.2em}figure{margin:1em 0}svg{max-width:100%;height:auto}";

impl Renderer for Html {
    fn render(&self, doc: &Doc) -> String {
        let page = html! {
            (DOCTYPE)
            html {
                head {
                    meta charset="utf-8";
                    title { (doc.title) }
                    style { (PreEscaped(STYLE)) }
                }
                body {
                    @for b in &doc.blocks { (block(b)) }
                }
            }
        };
        page.into_string() + "\n"
    }
}

/// `s` with `&`, `<`, `>` and `"` escaped, as the templates escape it.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let _ = maud::Escaper::new(&mut out).write_str(s);
    out
}

fn block(b: &Block) -> Markup {
    match b {
        Block::Heading { level, id, text } => match level {
            1 => html! { h1 id=[id] { (line(text)) } },
            2 => html! { h2 id=[id] { (line(text)) } },
            3 => html! { h3 id=[id] { (line(text)) } },
            _ => html! { h4 id=[id] { (line(text)) } },
        },
        Block::Para { id, text } => html! { p id=[id] { (line(text)) } },
        Block::List { id, items } => html! {
            @if !items.is_empty() {
                ul id=[id] { @for i in items { li { (line(i)) } } }
            }
        },
        Block::Table(t) => table(t),
        Block::Pre { id, text } => html! { pre id=[id] { (text) } },
        Block::Section { id, blocks } => html! {
            section id=(id) { @for b in blocks { (block(b)) } }
        },
        Block::Figure { name, svg, .. } => html! {
            figure id={ "chart-" (name) } { (PreEscaped(svg)) }
        },
    }
}

fn line(l: &Line) -> Markup {
    html! {
        @for i in &l.0 {
            @match i {
                Inline::Text(s) => (s),
                Inline::Code(s) => code { (s) },
                Inline::Strong(s) => b { (s) },
                Inline::Toned(t, s) => span class=(t.class()) { (s) },
                Inline::Link(s, href) => a href=(href) { (s) },
            }
        }
    }
}

fn class(c: &Cell) -> Option<String> {
    let classes: Vec<&str> = [c.wrap.then_some("text"), c.tone.map(|t| t.class())]
        .into_iter()
        .flatten()
        .collect();
    (!classes.is_empty()).then(|| classes.join(" "))
}

fn table(t: &Table) -> Markup {
    html! {
        table id=[&t.id] {
            tr {
                @for c in &t.columns { th class=[c.wrap.then_some("text")] { (c.name) } }
            }
            @for r in &t.rows {
                tr {
                    @for (i, c) in r.iter().enumerate() {
                        @let wrap = c.wrap || t.columns.get(i).is_some_and(|col| col.wrap);
                        td class=[class(&Cell { wrap, ..c.clone() })] { (c.text) }
                    }
                }
            }
            @if t.rows.is_empty() {
                @if let Some(e) = &t.empty {
                    tr { td colspan=(t.columns.len()) class=[class(e)] { (e.text) } }
                }
            }
        }
    }
}
