//! The pages rehearse writes, as one document model, and one renderer per
//! format behind one trait, as hyperfine's `export/` has: `markdown.rs`
//! writes summary.md and what commands print as Markdown, `html.rs` writes
//! report.html through maud templates, which escape every text by default.
//!
//! A page is built once, as a [`Doc`], in `report/` from the results, and
//! each format renders that same document: the Markdown and the HTML of a
//! page cannot drift apart, and escaping lives in one place per format.
//! Nothing here knows a result type. `charts/` draws the charts pages embed
//! (plotters, SVG and PNG).

pub mod charts;
pub mod html;
pub mod markdown;

pub use html::Html;
pub use markdown::Markdown;

/// One output format.
pub trait Renderer {
    /// The document, whole, in this format.
    fn render(&self, doc: &Doc) -> String;
}

/// A page: its title (the HTML `<title>`) and its blocks, in order.
#[derive(Debug, Clone, Default)]
pub struct Doc {
    pub title: String,
    pub blocks: Vec<Block>,
}

impl Doc {
    pub fn new(title: impl Into<String>) -> Doc {
        Doc {
            title: title.into(),
            blocks: Vec::new(),
        }
    }

    pub fn push(&mut self, b: Block) -> &mut Doc {
        self.blocks.push(b);
        self
    }

    pub fn extend(&mut self, bs: impl IntoIterator<Item = Block>) -> &mut Doc {
        self.blocks.extend(bs);
        self
    }
}

/// How a verdict reads: met, missed, or neither (unknown, invalid, warning).
/// HTML colours it; Markdown sets what did not pass in bold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Pass,
    Fail,
    Warn,
}

impl Tone {
    /// Pass when `ok`, else Fail.
    pub fn of(ok: bool) -> Tone {
        if ok {
            Tone::Pass
        } else {
            Tone::Fail
        }
    }

    pub fn class(self) -> &'static str {
        match self {
            Tone::Pass => "pass",
            Tone::Fail => "fail",
            Tone::Warn => "warn",
        }
    }
}

/// A run of text in a heading, a paragraph or a list item.
#[derive(Debug, Clone, PartialEq)]
pub enum Inline {
    Text(String),
    Code(String),
    Strong(String),
    Toned(Tone, String),
    /// Text that links elsewhere: (text, href).
    Link(String, String),
}

/// Text: a row of inlines.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Line(pub Vec<Inline>);

impl Line {
    pub fn text(mut self, s: impl Into<String>) -> Line {
        self.0.push(Inline::Text(s.into()));
        self
    }

    pub fn code(mut self, s: impl Into<String>) -> Line {
        self.0.push(Inline::Code(s.into()));
        self
    }

    pub fn strong(mut self, s: impl Into<String>) -> Line {
        self.0.push(Inline::Strong(s.into()));
        self
    }

    pub fn toned(mut self, tone: Tone, s: impl Into<String>) -> Line {
        self.0.push(Inline::Toned(tone, s.into()));
        self
    }

    pub fn link(mut self, text: impl Into<String>, href: impl Into<String>) -> Line {
        self.0.push(Inline::Link(text.into(), href.into()));
        self
    }
}

impl From<&str> for Line {
    fn from(s: &str) -> Line {
        Line(vec![Inline::Text(s.to_string())])
    }
}

impl From<String> for Line {
    fn from(s: String) -> Line {
        Line(vec![Inline::Text(s)])
    }
}

impl From<Inline> for Line {
    fn from(i: Inline) -> Line {
        Line(vec![i])
    }
}

/// A part of a page.
#[derive(Debug, Clone)]
pub enum Block {
    Heading {
        level: u8,
        id: Option<String>,
        text: Line,
    },
    Para {
        id: Option<String>,
        text: Line,
    },
    List {
        id: Option<String>,
        items: Vec<Line>,
    },
    Table(Table),
    /// Preformatted text: a fixed-width table a command also prints.
    Pre {
        id: Option<String>,
        text: String,
    },
    /// Blocks that belong together, under an id a test or a link can find.
    Section {
        id: String,
        blocks: Vec<Block>,
    },
    /// A chart: its name, its PNG relative to the page, and its SVG, which
    /// rehearse drew itself (plotters) and HTML embeds as it is.
    Figure {
        name: String,
        png: String,
        svg: String,
    },
}

impl Block {
    pub fn heading(level: u8, text: impl Into<Line>) -> Block {
        Block::Heading {
            level,
            id: None,
            text: text.into(),
        }
    }

    pub fn para(text: impl Into<Line>) -> Block {
        Block::Para {
            id: None,
            text: text.into(),
        }
    }

    pub fn list<L: Into<Line>>(items: impl IntoIterator<Item = L>) -> Block {
        Block::List {
            id: None,
            items: items.into_iter().map(Into::into).collect(),
        }
    }

    pub fn pre(text: impl Into<String>) -> Block {
        Block::Pre {
            id: None,
            text: text.into(),
        }
    }

    pub fn section(id: impl Into<String>, blocks: Vec<Block>) -> Block {
        Block::Section {
            id: id.into(),
            blocks,
        }
    }

    /// The block with an id (HTML's `id`; Markdown has none).
    pub fn id(mut self, new: impl Into<String>) -> Block {
        match &mut self {
            Block::Heading { id, .. }
            | Block::Para { id, .. }
            | Block::List { id, .. }
            | Block::Pre { id, .. } => *id = Some(new.into()),
            Block::Table(t) => t.id = Some(new.into()),
            Block::Section { id, .. } => *id = new.into(),
            Block::Figure { .. } => {}
        }
        self
    }
}

/// A table: columns, rows of cells, and what to say when there are no rows.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub id: Option<String>,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Cell>>,
    /// Said in one row across the table when it has none.
    pub empty: Option<Cell>,
}

#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    /// Right-aligned in Markdown (HTML's style aligns every cell but the first right).
    pub numeric: bool,
    /// A sentence, not a figure: HTML lets it wrap.
    pub wrap: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cell {
    pub text: String,
    pub tone: Option<Tone>,
    pub wrap: bool,
}

impl Cell {
    pub fn toned(tone: Tone, text: impl Into<String>) -> Cell {
        Cell {
            text: text.into(),
            tone: Some(tone),
            wrap: false,
        }
    }

    /// A sentence: HTML lets it wrap.
    pub fn wrap(text: impl Into<String>) -> Cell {
        Cell {
            text: text.into(),
            tone: None,
            wrap: true,
        }
    }
}

impl From<String> for Cell {
    fn from(text: String) -> Cell {
        Cell {
            text,
            ..Cell::default()
        }
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Cell {
        Cell::from(text.to_string())
    }
}

impl Table {
    /// A table with these columns, none numeric, none wrapping.
    pub fn new(header: &[&str]) -> Table {
        Table {
            columns: header
                .iter()
                .map(|h| Column {
                    name: h.to_string(),
                    numeric: false,
                    wrap: false,
                })
                .collect(),
            ..Table::default()
        }
    }

    /// The columns from `from` on hold figures.
    pub fn numeric_from(mut self, from: usize) -> Table {
        for c in self.columns.iter_mut().skip(from) {
            c.numeric = true;
        }
        self
    }

    /// Column `i` holds sentences, not figures.
    pub fn wrap(mut self, i: usize) -> Table {
        self.columns[i].wrap = true;
        self.columns[i].numeric = false;
        self
    }

    pub fn id(mut self, id: impl Into<String>) -> Table {
        self.id = Some(id.into());
        self
    }

    pub fn row<C: Into<Cell>>(&mut self, cells: impl IntoIterator<Item = C>) {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    /// Rows of plain text.
    pub fn rows(mut self, rows: Vec<Vec<String>>) -> Table {
        for r in rows {
            self.row(r);
        }
        self
    }

    pub fn block(self) -> Block {
        Block::Table(self)
    }
}

/// `doc` as summary.md and report.html in `dir`, each written atomically.
pub fn write_pages(
    dir: &std::path::Path,
    doc: &Doc,
) -> crate::Result<(std::path::PathBuf, std::path::PathBuf)> {
    let summary = dir.join("summary.md");
    crate::fsutil::write_atomic(&summary, Markdown.render(doc).as_bytes())?;
    let html = dir.join("report.html");
    crate::fsutil::write_atomic(&html, Html.render(doc).as_bytes())?;
    Ok((summary, html))
}

#[cfg(test)]
mod tests;
