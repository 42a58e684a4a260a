//! Charts of a run, drawn with plotters into SVG (for the HTML report) and
//! PNG (for anything else). Text is drawn with DejaVu Sans, shipped in
//! `assets/fonts`, so no system font library is needed.
//!
//! Everything a chart writes is laid out from measured text before it is
//! drawn, so no two labels overlap: the title on top, then a band for the
//! labels of vertical markers (a drill's steps, a scenario's phases), then
//! the plot, then a legend that names every series and budget line and the
//! markers that had no room for their full name. [`render`] returns the
//! boxes it drew, and the tests hold them apart.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{Error, Result};

const FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
pub const SIZE: (u32, u32) = (960, 540);

/// Series colours (colour-blind safe: Okabe-Ito, without its yellow, which
/// does not read on white).
pub const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
];
/// A budget that held, and one that did not (the label also says which).
pub const MET: RGBColor = RGBColor(0, 110, 60);
pub const MISSED: RGBColor = RGBColor(190, 0, 0);
/// Lines and labels that are not data (phase and step boundaries).
pub const GUIDE: RGBColor = RGBColor(120, 120, 120);

const MARGIN: i32 = 14;
const TITLE_FONT: u32 = 22;
const LABEL_FONT: u32 = 13;
const TICK_FONT: u32 = 14;
const DESC_FONT: u32 = 16;
/// Rows of the band above the plot for the markers' labels.
const BAND_ROWS: usize = 4;
/// Pixels kept free between two labels.
const GAP: i32 = 6;

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // A font we ship and know to parse.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// The size of `text` in the shipped font at `size` pixels.
pub fn text_size(text: &str, size: u32) -> (i32, i32) {
    register_font();
    let (w, h) = ("sans-serif", size)
        .into_font()
        .box_size(text)
        .unwrap_or((text.len() as u32 * size * 6 / 10, size));
    (w as i32, h.max(size) as i32)
}

/// How a line is drawn: the second cue after its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dash {
    Solid,
    Dashed,
    Dotted,
}

/// A line of a chart.
#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub color: RGBColor,
    /// Thicker lines stand out (p99 over p50).
    pub width: u32,
    pub dash: Dash,
    pub points: Vec<(f64, f64)>,
}

/// A point budget on a percentile spectrum: a cross with its label beside it.
#[derive(Debug, Clone)]
pub struct Marker {
    pub label: String,
    pub at: (f64, f64),
    pub pass: bool,
}

/// A horizontal line across the plot (a budget, a reference), named in the legend.
#[derive(Debug, Clone)]
pub struct Rule {
    pub label: String,
    pub y: f64,
    pub color: RGBColor,
}

/// What one chart shows.
#[derive(Debug, Clone)]
pub struct Chart {
    pub title: String,
    pub x_desc: String,
    /// The y axis' description, with its unit: "response time (ms)".
    pub y_desc: String,
    /// The percentile "nines" axis: x = 1 / (1 - q).
    pub nines: bool,
    pub log_y: bool,
    pub series: Vec<Series>,
    pub markers: Vec<Marker>,
    pub rules: Vec<Rule>,
    /// Vertical lines with labels (phase boundaries, drill steps).
    pub bounds: Vec<(f64, String)>,
}

impl Chart {
    /// A chart with nothing on it yet.
    pub fn new(title: impl Into<String>, x_desc: &str, y_desc: &str) -> Chart {
        Chart {
            title: title.into(),
            x_desc: x_desc.into(),
            y_desc: y_desc.into(),
            nines: false,
            log_y: false,
            series: Vec::new(),
            markers: Vec::new(),
            rules: Vec::new(),
            bounds: Vec::new(),
        }
    }
}

/// A box a chart drew text (or a legend entry) in, in pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct Placed {
    pub text: String,
    pub x0: i32,
    pub y0: i32,
    pub x1: i32,
    pub y1: i32,
}

impl Placed {
    fn new(text: &str, x: i32, y: i32, (w, h): (i32, i32)) -> Placed {
        Placed {
            text: text.to_string(),
            x0: x,
            y0: y,
            x1: x + w,
            y1: y + h,
        }
    }

    /// Whether two boxes share any pixel.
    pub fn overlaps(&self, o: &Placed) -> bool {
        self.x0 < o.x1 && o.x0 < self.x1 && self.y0 < o.y1 && o.y0 < self.y1
    }
}

/// What a chart drew: its plot area and every label's box.
#[derive(Debug, Clone, Default)]
pub struct Drawn {
    pub plot: (i32, i32, i32, i32),
    pub labels: Vec<Placed>,
}

/// The smallest of 1, 2 or 5 times a power of ten at or above `v`.
mod bars;
mod layout;
mod line;
mod stacked;
#[cfg(test)]
mod tests;

use bars::draw_bars;
pub use layout::tick_label;
use layout::*;
use line::draw;
pub use stacked::{render_stacked, Stacked};

/// Grouped bars: per category (operation, step), one bar per group (variant).
#[derive(Debug, Clone)]
pub struct Bars {
    pub title: String,
    /// The y axis' description, with its unit.
    pub y_desc: String,
    pub categories: Vec<String>,
    /// (group label, one value per category).
    pub groups: Vec<(String, Vec<f64>)>,
    /// Budget or reference lines: over one category's bars, or across all.
    pub rules: Vec<(Option<usize>, Rule)>,
    /// How a bar's value is written above it.
    pub value: fn(f64) -> String,
}

/// Draw grouped bars into `dir/<name>.png` and `.svg`; returns the SVG text.
pub fn render_bars(b: &Bars, dir: &Path, name: &str) -> Result<String> {
    render_bars_drawn(b, dir, name).map(|(svg, _)| svg)
}

/// Draw `c` into `dir/<name>.png` and `.svg`; returns the SVG text.
pub fn render(c: &Chart, dir: &Path, name: &str) -> Result<String> {
    render_drawn(c, dir, name).map(|(svg, _)| svg)
}

/// [`render`], also returning what was drawn where.
pub fn render_drawn(c: &Chart, dir: &Path, name: &str) -> Result<(String, Drawn)> {
    render_with(dir, name, |root| draw(root, c), |root| draw(root, c))
}

/// [`render_bars`], also returning what was drawn where.
pub fn render_bars_drawn(b: &Bars, dir: &Path, name: &str) -> Result<(String, Drawn)> {
    render_with(
        dir,
        name,
        |root| draw_bars(root, b),
        |root| draw_bars(root, b),
    )
}

/// Draw with `svg_draw` into an SVG string and with `png_draw` into a PNG
/// file (written atomically); both files land in `dir`. Returns the SVG
/// text and the PNG's layout.
fn render_with(
    dir: &Path,
    name: &str,
    svg_draw: impl FnOnce(DrawingArea<SVGBackend<'_>, Shift>) -> std::result::Result<Drawn, String>,
    png_draw: impl FnOnce(DrawingArea<BitMapBackend<'_>, Shift>) -> std::result::Result<Drawn, String>,
) -> Result<(String, Drawn)> {
    register_font();
    let mut svg = String::new();
    svg_draw(SVGBackend::with_string(&mut svg, SIZE).into_drawing_area())
        .map_err(|m| Error::Lab(format!("drawing {name}.svg: {m}")))?;
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        what: "creating the charts directory".into(),
        path: dir.to_path_buf(),
        source,
    })?;
    let png = dir.join(format!("{name}.png"));
    // The encoder picks the format from the extension: keep .png last.
    let tmp = dir.join(format!(".{name}.tmp-{}.png", std::process::id()));
    let drawn = png_draw(BitMapBackend::new(&tmp, SIZE).into_drawing_area())
        .map_err(|m| Error::Lab(format!("drawing {}: {m}", png.display())))?;
    std::fs::rename(&tmp, &png).map_err(|source| Error::Io {
        what: "renaming into place".into(),
        path: png.clone(),
        source,
    })?;
    crate::fsutil::write_atomic(&dir.join(format!("{name}.svg")), svg.as_bytes())?;
    Ok((svg, drawn))
}
