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
use plotters::element::DashedPathElement;
use plotters::prelude::*;

use crate::error::{Error, Result};

const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
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
fn round_up_125(v: f64) -> f64 {
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|x| *x >= v * (1.0 - 1e-9))
        .unwrap_or(10.0 * p)
}

fn nines_label(x: f64) -> String {
    let q = 1.0 - 1.0 / x;
    let pct = q * 100.0;
    if pct < 99.0 {
        format!("{pct:.0}%")
    } else {
        let digits = (-(1.0 - q).log10()).round() as usize;
        format!("{:.*}%", digits.saturating_sub(2), pct)
    }
}

/// A tick label: as few digits as the value needs ("0.5", "10", "2,000").
pub fn tick_label(v: f64) -> String {
    let a = v.abs();
    let s = if a == 0.0 {
        return "0".into();
    } else if a >= 1000.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        return format!("{sign}{}", crate::progress::thousands(a.round() as u64));
    } else if a >= 10.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else if a >= 0.01 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    };
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Where a marker's label went.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Slot {
    /// Its full text, in this row of the band, on this side of its line.
    Full(usize, Side),
    /// Its number, in this row; the legend's key gives the text.
    Number(usize, Side),
    /// Only in the legend's key.
    KeyOnly,
}

/// Which side of its line a label sits on. Decided once, in the layout:
/// drawing places the line a pixel or two from where the layout reckoned,
/// and deciding again could move a label onto its neighbour.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Side {
    Right,
    Left,
}

/// How many rows of labels `slots` use (None: no label has a row).
fn rows_used(slots: &[Slot]) -> Option<i32> {
    slots
        .iter()
        .filter_map(|s| match s {
            Slot::Full(r, _) | Slot::Number(r, _) => Some(*r as i32 + 1),
            Slot::KeyOnly => None,
        })
        .max()
}

/// The height of a row of labels.
fn row_height() -> i32 {
    text_size("Ag", LABEL_FONT).1 + 3
}

/// The legend's key: the name of every marker that did not get its name drawn.
fn key_entries(slots: &[Slot], names: &[String]) -> Vec<Entry> {
    slots
        .iter()
        .zip(names)
        .enumerate()
        .filter(|(_, (s, _))| !matches!(s, Slot::Full(..)))
        .map(|(i, (_, name))| Entry {
            text: name.clone(),
            sample: Sample::Number((i + 1).to_string()),
        })
        .collect()
}

/// The first row in which the span [x0, x1) keeps `GAP` from everything
/// already there, and takes it.
fn take_row(rows: &mut [Vec<(i32, i32)>], x0: i32, x1: i32) -> Option<usize> {
    let r = rows
        .iter()
        .position(|row| row.iter().all(|&(a, b)| x1 + GAP <= a || b + GAP <= x0))?;
    rows[r].push((x0, x1));
    Some(r)
}

/// The side of a vertical line at `x` a label of width `w` goes on: the
/// right, or the left where it would leave the plot.
fn side(x: i32, w: i32, right: i32) -> Side {
    if x + 3 + w <= right {
        Side::Right
    } else {
        Side::Left
    }
}

/// The span of a label of width `w` on `side` of a line at `x`.
fn span(x: i32, w: i32, side: Side) -> (i32, i32) {
    match side {
        Side::Right => (x + 3, x + 3 + w),
        Side::Left => (x - 3 - w, x - 3),
    }
}

/// Lay out the labels of vertical lines at pixel `xs` in `rows` rows: full
/// text where it fits, else its number, else the key only.
fn band_layout(xs: &[i32], texts: &[String], right: i32, rows: usize) -> Vec<Slot> {
    let mut taken: Vec<Vec<(i32, i32)>> = vec![Vec::new(); rows];
    xs.iter()
        .zip(texts)
        .enumerate()
        .map(|(i, (&x, t))| {
            let w = text_size(t, LABEL_FONT).0;
            let s = side(x, w, right);
            let (a, b) = span(x, w, s);
            if let Some(r) = take_row(&mut taken, a, b) {
                return Slot::Full(r, s);
            }
            let w = text_size(&(i + 1).to_string(), LABEL_FONT).0;
            let s = side(x, w, right);
            let (a, b) = span(x, w, s);
            match take_row(&mut taken, a, b) {
                Some(r) => Slot::Number(r, s),
                None => Slot::KeyOnly,
            }
        })
        .collect()
}

/// One entry of the legend: a sample of the line (or box) and its text.
struct Entry {
    text: String,
    sample: Sample,
}

enum Sample {
    Line(RGBColor, u32, Dash),
    Block(RGBColor),
    /// A key entry: the marker's number, shown as the sample.
    Number(String),
}

const SAMPLE_W: i32 = 26;
const LEGEND_ROW: i32 = 20;

/// Entries wrapped into lines of `width` pixels: (x offset, line) per entry.
fn legend_layout(entries: &[Entry], width: i32) -> Vec<(i32, usize)> {
    let mut out = Vec::new();
    let (mut x, mut line) = (0, 0);
    for e in entries {
        let w = entry_width(e);
        if x > 0 && x + w > width {
            x = 0;
            line += 1;
        }
        out.push((x, line));
        x += w + 18;
    }
    out
}

fn entry_width(e: &Entry) -> i32 {
    let sample = match &e.sample {
        Sample::Number(n) => text_size(n, LABEL_FONT).0.max(14),
        _ => SAMPLE_W,
    };
    sample + 6 + text_size(&e.text, LABEL_FONT).0
}

fn legend_height(entries: &[Entry], width: i32) -> i32 {
    match legend_layout(entries, width).last() {
        None => 0,
        Some(&(_, lines)) => (lines as i32 + 1) * LEGEND_ROW + 6,
    }
}

/// Draw the legend into `area` (absolute pixel `origin`), recording boxes.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[Entry],
    origin: (i32, i32),
    drawn: &mut Drawn,
) -> std::result::Result<(), String> {
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    let width = SIZE.0 as i32 - 2 * MARGIN;
    let placed = legend_layout(entries, width);
    // Center each line.
    let lines = placed.last().map_or(0, |p| p.1 + 1);
    for line in 0..lines {
        let members: Vec<usize> = (0..entries.len())
            .filter(|&i| placed[i].1 == line)
            .collect();
        let used = members
            .iter()
            .map(|&i| placed[i].0 + entry_width(&entries[i]))
            .max()
            .unwrap_or(0);
        let shift = MARGIN + (width - used) / 2;
        for i in members {
            let en = &entries[i];
            let x = shift + placed[i].0;
            let y = 4 + line as i32 * LEGEND_ROW;
            let mid = y + LEGEND_ROW / 2 - 2;
            let sample_w = match &en.sample {
                Sample::Line(c, w, d) => {
                    let pts = vec![(x, mid), (x + SAMPLE_W, mid)];
                    let style = c.stroke_width((*w).max(2));
                    match d {
                        Dash::Solid => area.draw(&PathElement::new(pts, style)),
                        Dash::Dashed => area.draw(&DashedPathElement::new(pts, 7, 4, style)),
                        Dash::Dotted => area.draw(&DashedPathElement::new(pts, 2, 3, style)),
                    }
                    .map_err(e)?;
                    SAMPLE_W
                }
                Sample::Block(c) => {
                    area.draw(&Rectangle::new(
                        [(x + 6, mid - 6), (x + 20, mid + 6)],
                        c.filled(),
                    ))
                    .map_err(e)?;
                    SAMPLE_W
                }
                Sample::Number(n) => {
                    let (w, h) = text_size(n, LABEL_FONT);
                    area.draw(&Text::new(
                        n.clone(),
                        (x, mid - h / 2),
                        ("sans-serif", LABEL_FONT)
                            .into_font()
                            .style(FontStyle::Bold)
                            .color(&GUIDE),
                    ))
                    .map_err(e)?;
                    w.max(14)
                }
            };
            let (tw, th) = text_size(&en.text, LABEL_FONT);
            let tx = x + sample_w + 6;
            let ty = mid - th / 2;
            area.draw(&Text::new(
                en.text.clone(),
                (tx, ty),
                ("sans-serif", LABEL_FONT)
                    .into_font()
                    .color(&RGBColor(40, 40, 40)),
            ))
            .map_err(e)?;
            drawn.labels.push(Placed {
                text: en.text.clone(),
                x0: origin.0 + x,
                y0: origin.1 + ty.min(mid - 6),
                x1: origin.0 + tx + tw,
                y1: origin.1 + (ty + th).max(mid + 6),
            });
        }
    }
    Ok(())
}

/// Draw the title centred in `area`.
fn draw_title<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    drawn: &mut Drawn,
) -> std::result::Result<(), String> {
    let (w, h) = text_size(title, TITLE_FONT);
    let x = (SIZE.0 as i32 - w) / 2;
    area.draw(&Text::new(
        title.to_string(),
        (x, 8),
        ("sans-serif", TITLE_FONT).into_font(),
    ))
    .map_err(|x| x.to_string())?;
    drawn.labels.push(Placed::new(title, x, 8, (w, h)));
    Ok(())
}

const TITLE_H: i32 = 38;

/// The width the y axis' tick labels and description need.
fn y_area(labels: &[String]) -> i32 {
    let widest = labels
        .iter()
        .map(|l| text_size(l, TICK_FONT).0)
        .max()
        .unwrap_or(0);
    // Tick length, a gap, the labels, a gap, the rotated description.
    widest + 10 + 10 + DESC_FONT as i32 + 8
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    c: &Chart,
) -> std::result::Result<Drawn, String> {
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    let mut drawn = Drawn::default();
    root.fill(&WHITE).map_err(e)?;
    let all: Vec<(f64, f64)> = c
        .series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .chain(c.markers.iter().map(|m| m.at))
        .chain(c.rules.iter().map(|r| (f64::NAN, r.y)))
        .filter(|p| p.1.is_finite() && (!c.log_y || p.1 > 0.0))
        .collect();
    let xs = all.iter().map(|p| p.0).chain(c.bounds.iter().map(|b| b.0));
    let (mut x0, mut x1) = xs
        .filter(|x| x.is_finite())
        .fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
    let (mut y0, mut y1) = all
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    if x0 > x1 {
        (x0, x1) = (0.0, 1.0);
    }
    if y0 > y1 {
        (y0, y1) = (if c.log_y { 1.0 } else { 0.0 }, 1.0);
    }
    if c.nines {
        x0 = 1.0;
        x1 = x1.max(10.0) * 1.5;
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    let (y0, y1) = if c.log_y {
        // The bottom on a power of ten and the top on 1, 2 or 5 times one,
        // so the ticks fall on 1, 10, 100 and their steps. (A bottom of 2 or
        // 5 makes plotters label every step of the top decade: "90" runs
        // into "100".)
        let lo = 10f64.powf((y0.max(1e-3) / 1.1).log10().floor());
        let hi = round_up_125(y1.max(1e-3) * 1.1).max(lo * 10.0);
        (lo, hi)
    } else {
        (y0.min(0.0), y1.max(1e-9) * 1.1)
    };
    let y_labels: Vec<String> = [y0, y1, (y0 + y1) / 2.0]
        .iter()
        .map(|v| tick_label(*v))
        .collect();
    let y_area = y_area(&y_labels);
    let (width_px, height_px) = (SIZE.0 as i32, SIZE.1 as i32);
    let plot_left = MARGIN + y_area;
    let plot_right = width_px - MARGIN;
    // Where plotters will put each x value, to lay the band out before drawing.
    let px = |x: f64| -> i32 {
        let f = if c.nines {
            (x.ln() - x0.ln()) / (x1.ln() - x0.ln())
        } else {
            (x - x0) / (x1 - x0)
        };
        plot_left + (f * (plot_right - plot_left) as f64).round() as i32
    };
    let bound_xs: Vec<i32> = c.bounds.iter().map(|b| px(b.0)).collect();
    let bound_texts: Vec<String> = c.bounds.iter().map(|b| b.1.trim().to_string()).collect();
    let slots = band_layout(&bound_xs, &bound_texts, plot_right, BAND_ROWS);
    let rows_used = rows_used(&slots).unwrap_or(0);
    let row_h = row_height();
    let band_h = if rows_used > 0 {
        rows_used * row_h + 6
    } else {
        0
    };

    let mut entries: Vec<Entry> = c
        .series
        .iter()
        .map(|s| Entry {
            text: s.label.clone(),
            sample: Sample::Line(s.color, s.width, s.dash),
        })
        .chain(c.rules.iter().map(|r| Entry {
            text: r.label.clone(),
            sample: Sample::Line(r.color, 2, Dash::Dashed),
        }))
        .collect();
    entries.extend(key_entries(&slots, &bound_texts));
    let legend_h = legend_height(&entries, width_px - 2 * MARGIN);

    let (title_area, rest) = root.split_vertically(TITLE_H + band_h);
    let (chart_area, legend_area) = rest.split_vertically(height_px - TITLE_H - band_h - legend_h);
    draw_title(&title_area, &c.title, &mut drawn)?;

    let mut builder = ChartBuilder::on(&chart_area);
    builder
        .margin_left(MARGIN)
        .margin_right(MARGIN)
        .margin_top(4)
        .margin_bottom(4)
        .x_label_area_size(44)
        .y_label_area_size(y_area);
    macro_rules! finish {
        ($chart:expr) => {{
            let mut chart = $chart;
            let mut mesh = chart.configure_mesh();
            mesh.x_desc(c.x_desc.as_str())
                .y_desc(c.y_desc.as_str())
                .label_style(("sans-serif", TICK_FONT))
                .axis_desc_style(("sans-serif", DESC_FONT))
                .light_line_style(RGBColor(238, 238, 238))
                .y_label_formatter(&|y| tick_label(*y));
            if c.nines {
                mesh.x_label_formatter(&|x| nines_label(*x));
            } else {
                mesh.x_label_formatter(&|x| tick_label(*x));
            }
            mesh.draw().map_err(e)?;
            let (xr, yr) = chart.plotting_area().get_pixel_range();
            drawn.plot = (xr.start, yr.start, xr.end, yr.end);
            let bottom = if c.log_y { y0 } else { y0.max(0.0).min(y1) };
            for (i, (x, _)) in c.bounds.iter().enumerate() {
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(*x, bottom), (*x, y1)],
                        GUIDE.mix(0.7).stroke_width(1),
                    )))
                    .map_err(e)?;
                let at = chart.backend_coord(&(*x, y1)).0;
                let (text, row, s) = match slots[i] {
                    Slot::Full(r, s) => (bound_texts[i].clone(), r, s),
                    Slot::Number(r, s) => ((i + 1).to_string(), r, s),
                    Slot::KeyOnly => continue,
                };
                let (w, h) = text_size(&text, LABEL_FONT);
                let (a, _) = span(at, w, s);
                let y = TITLE_H + 3 + row as i32 * row_h;
                // A leader from the label's row down to the plot.
                root.draw(&PathElement::new(
                    vec![(at, y + h / 2), (at, drawn.plot.1)],
                    GUIDE.mix(0.7).stroke_width(1),
                ))
                .map_err(e)?;
                let font = ("sans-serif", LABEL_FONT).into_font();
                let font = if matches!(slots[i], Slot::Number(..)) {
                    font.style(FontStyle::Bold)
                } else {
                    font
                };
                root.draw(&Text::new(text.clone(), (a, y), font.color(&GUIDE)))
                    .map_err(e)?;
                drawn.labels.push(Placed::new(&text, a, y, (w, h)));
            }
            for r in &c.rules {
                chart
                    .draw_series(std::iter::once(DashedPathElement::new(
                        vec![(x0, r.y), (x1, r.y)],
                        9,
                        5,
                        r.color.stroke_width(2),
                    )))
                    .map_err(e)?;
            }
            for s in &c.series {
                let style = s.color.stroke_width(s.width);
                let pts: Vec<(f64, f64)> = s
                    .points
                    .iter()
                    .copied()
                    .filter(|p| p.1.is_finite() && (!c.log_y || p.1 > 0.0))
                    .collect();
                match s.dash {
                    Dash::Solid => chart
                        .draw_series(std::iter::once(PathElement::new(pts, style)))
                        .map(|_| ()),
                    Dash::Dashed => chart
                        .draw_series(std::iter::once(DashedPathElement::new(pts, 7, 4, style)))
                        .map(|_| ()),
                    Dash::Dotted => chart
                        .draw_series(std::iter::once(DashedPathElement::new(pts, 2, 3, style)))
                        .map(|_| ()),
                }
                .map_err(e)?;
            }
            // Budget crosses, each label beside its cross, moved down while
            // it would cover another label.
            for m in &c.markers {
                let color = if m.pass { MET } else { MISSED };
                chart
                    .draw_series(std::iter::once(Cross::new(m.at, 7, color.stroke_width(3))))
                    .map_err(e)?;
                let (cx, cy) = chart.backend_coord(&m.at);
                let (w, h) = text_size(&m.label, LABEL_FONT);
                let mut x = cx + 12;
                if x + w > drawn.plot.2 {
                    x = cx - 12 - w;
                }
                let mut y = cy - h / 2;
                for _ in 0..20 {
                    let b = Placed::new(&m.label, x, y, (w, h));
                    if !drawn.labels.iter().any(|o| o.overlaps(&b)) {
                        break;
                    }
                    y += h + 2;
                }
                root.draw(&Text::new(
                    m.label.clone(),
                    (x, y),
                    ("sans-serif", LABEL_FONT).into_font().color(&color),
                ))
                .map_err(e)?;
                drawn.labels.push(Placed::new(&m.label, x, y, (w, h)));
            }
        }};
    }
    match (c.nines, c.log_y) {
        (true, true) => finish!(builder
            .build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())
            .map_err(e)?),
        (false, true) => finish!(builder
            .build_cartesian_2d(x0..x1, (y0..y1).log_scale())
            .map_err(e)?),
        (true, false) => finish!(builder
            .build_cartesian_2d((x0..x1).log_scale(), y0..y1)
            .map_err(e)?),
        (false, false) => finish!(builder.build_cartesian_2d(x0..x1, y0..y1).map_err(e)?),
    }
    draw_legend(
        &legend_area,
        &entries,
        (0, height_px - legend_h),
        &mut drawn,
    )?;
    root.present().map_err(e)?;
    Ok(drawn)
}

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

fn draw_bars<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    b: &Bars,
) -> std::result::Result<Drawn, String> {
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    let mut drawn = Drawn::default();
    root.fill(&WHITE).map_err(e)?;
    let (width_px, height_px) = (SIZE.0 as i32, SIZE.1 as i32);
    let n = b.categories.len().max(1);
    let g = b.groups.len().max(1) as f64;
    let top = b
        .groups
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .chain(b.rules.iter().map(|r| r.1.y))
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max)
        .max(1e-9)
        * 1.18;
    let y_area = y_area(&[tick_label(top), tick_label(top / 2.0)]);
    let plot_left = MARGIN + y_area;
    let plot_right = width_px - MARGIN;
    let slot_w = (plot_right - plot_left) as f64 / n as f64;
    // Category labels under the axis: centred, in as many rows as they need
    // (up to three), else their number with the name in the legend.
    let mut rows: Vec<Vec<(i32, i32)>> = vec![Vec::new(); 3];
    let cat_slots: Vec<Slot> = b
        .categories
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mid = plot_left + ((i as f64 + 0.5) * slot_w).round() as i32;
            let w = text_size(t, LABEL_FONT).0;
            // Centred under the category: the side is not used.
            if let Some(r) = take_row(&mut rows, mid - w / 2, mid + w / 2) {
                return Slot::Full(r, Side::Right);
            }
            let w = text_size(&(i + 1).to_string(), LABEL_FONT).0;
            match take_row(&mut rows, mid - w / 2, mid + w / 2) {
                Some(r) => Slot::Number(r, Side::Right),
                None => Slot::KeyOnly,
            }
        })
        .collect();
    let cat_rows = rows_used(&cat_slots).unwrap_or(1);
    let row_h = row_height();
    let mut entries: Vec<Entry> = b
        .groups
        .iter()
        .enumerate()
        .map(|(j, (label, _))| Entry {
            text: label.clone(),
            sample: Sample::Block(PALETTE[j % PALETTE.len()]),
        })
        .collect();
    let mut seen_rules: Vec<String> = Vec::new();
    for (_, r) in &b.rules {
        if !seen_rules.contains(&r.label) {
            seen_rules.push(r.label.clone());
            entries.push(Entry {
                text: r.label.clone(),
                sample: Sample::Line(r.color, 2, Dash::Dashed),
            });
        }
    }
    entries.extend(key_entries(&cat_slots, &b.categories));
    let legend_h = legend_height(&entries, width_px - 2 * MARGIN);
    let (title_area, rest) = root.split_vertically(TITLE_H);
    let (chart_area, legend_area) = rest.split_vertically(height_px - TITLE_H - legend_h);
    draw_title(&title_area, &b.title, &mut drawn)?;
    let x_area = cat_rows * row_h + 10;
    let mut chart = ChartBuilder::on(&chart_area)
        .margin_left(MARGIN)
        .margin_right(MARGIN)
        .margin_top(4)
        .margin_bottom(4)
        .x_label_area_size(x_area)
        .y_label_area_size(y_area)
        .build_cartesian_2d(0.0..n as f64, 0.0..top)
        .map_err(e)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .x_label_formatter(&|_| String::new())
        .y_desc(b.y_desc.as_str())
        .y_label_formatter(&|y| tick_label(*y))
        .label_style(("sans-serif", TICK_FONT))
        .axis_desc_style(("sans-serif", DESC_FONT))
        .light_line_style(RGBColor(238, 238, 238))
        .draw()
        .map_err(e)?;
    let (xr, yr) = chart.plotting_area().get_pixel_range();
    drawn.plot = (xr.start, yr.start, xr.end, yr.end);
    for (i, s) in cat_slots.iter().enumerate() {
        let (text, row) = match s {
            Slot::Full(r, _) => (b.categories[i].clone(), *r),
            Slot::Number(r, _) => ((i + 1).to_string(), *r),
            Slot::KeyOnly => continue,
        };
        let mid = chart.backend_coord(&(i as f64 + 0.5, 0.0)).0;
        let (w, h) = text_size(&text, LABEL_FONT);
        let y = drawn.plot.3 + 5 + row as i32 * row_h;
        root.draw(&Text::new(
            text.clone(),
            (mid - w / 2, y),
            ("sans-serif", LABEL_FONT)
                .into_font()
                .color(&RGBColor(40, 40, 40)),
        ))
        .map_err(e)?;
        drawn
            .labels
            .push(Placed::new(&text, mid - w / 2, y, (w, h)));
    }
    let width = 0.8 / g;
    // Value labels: above each bar, alternating two heights when they are
    // wider than the bars.
    let bar_px = (slot_w * width * 0.9) as i32;
    let values: Vec<(usize, usize, f64)> = b
        .groups
        .iter()
        .enumerate()
        .flat_map(|(j, (_, v))| v.iter().enumerate().map(move |(i, x)| (j, i, *x)))
        .collect();
    let widest = values
        .iter()
        .map(|v| text_size(&(b.value)(v.2), 11).0)
        .max()
        .unwrap_or(0);
    let stagger = widest + 2 > bar_px;
    for (j, (label, vals)) in b.groups.iter().enumerate() {
        let color = PALETTE[j % PALETTE.len()];
        chart
            .draw_series(vals.iter().enumerate().map(|(i, v)| {
                let x0 = i as f64 + 0.1 + j as f64 * width;
                Rectangle::new([(x0, 0.0), (x0 + width * 0.9, *v)], color.filled())
            }))
            .map_err(e)?;
        let _ = label;
    }
    for (j, i, v) in values {
        if !v.is_finite() {
            continue;
        }
        let x0 = i as f64 + 0.1 + j as f64 * width;
        let (cx, cy) = chart.backend_coord(&(x0 + width * 0.45, v));
        let text = (b.value)(v);
        let (w, h) = text_size(&text, 11);
        let lift = if stagger && j % 2 == 1 { h + 2 } else { 0 };
        let (x, y) = (cx - w / 2, cy - h - 3 - lift);
        root.draw(&Text::new(
            text.clone(),
            (x, y),
            ("sans-serif", 11).into_font().color(&RGBColor(40, 40, 40)),
        ))
        .map_err(e)?;
        drawn.labels.push(Placed::new(&text, x, y, (w, h)));
    }
    for (cat, r) in &b.rules {
        let (a, z) = match cat {
            Some(i) => (*i as f64 + 0.04, *i as f64 + 0.96),
            None => (0.0, n as f64),
        };
        chart
            .draw_series(std::iter::once(DashedPathElement::new(
                vec![(a, r.y), (z, r.y)],
                9,
                5,
                r.color.stroke_width(2),
            )))
            .map_err(e)?;
    }
    draw_legend(
        &legend_area,
        &entries,
        (0, height_px - legend_h),
        &mut drawn,
    )?;
    root.present().map_err(e)?;
    Ok(drawn)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nines_axis_reads_as_percentiles() {
        assert_eq!(nines_label(1.0), "0%");
        assert_eq!(nines_label(10.0), "90%");
        assert_eq!(nines_label(100.0), "99%");
        assert_eq!(nines_label(1000.0), "99.9%");
        assert_eq!(nines_label(10000.0), "99.99%");
    }

    #[test]
    fn log_tops_round_to_one_two_five() {
        assert_eq!(round_up_125(104.5), 200.0);
        assert_eq!(round_up_125(45.0), 50.0);
        assert_eq!(round_up_125(100.0), 100.0);
    }

    #[test]
    fn tick_labels_carry_no_needless_digits() {
        assert_eq!(tick_label(0.0), "0");
        assert_eq!(tick_label(0.5), "0.5");
        assert_eq!(tick_label(1.0), "1");
        assert_eq!(tick_label(2.5), "2.5");
        assert_eq!(tick_label(40.0), "40");
        assert_eq!(tick_label(4000000.0), "4,000,000");
        assert_eq!(tick_label(0.001), "0.001");
    }

    fn no_two_overlap(d: &Drawn) {
        for (i, a) in d.labels.iter().enumerate() {
            assert!(
                a.x0 >= 0 && a.y0 >= 0 && a.x1 <= SIZE.0 as i32 && a.y1 <= SIZE.1 as i32,
                "{a:?} leaves the image"
            );
            for b in &d.labels[i + 1..] {
                assert!(!a.overlaps(b), "{a:?} overlaps {b:?}");
            }
        }
    }

    /// The steps of a cutover drill, at the times a real one took them:
    /// several come within a second of each other at the end.
    fn drill_steps() -> Vec<(f64, String)> {
        [
            (0.0, "steady"),
            (15.0, "prepare"),
            (15.6, "dual-write"),
            (15.7, "backfill"),
            (28.8, "verify"),
            (33.9, "switch"),
            (34.1, "soak"),
            (94.2, "check writes (partitioned)"),
            (96.9, "rollback"),
            (99.8, "verify after rollback"),
            (105.2, "switch again"),
            (105.5, "verify after switch"),
        ]
        .iter()
        .map(|(t, n)| (*t, n.to_string()))
        .collect()
    }

    /// A shorter drill (soak 20 s) whose last labels sit close to the right
    /// edge: a label's side of its line once differed between layout and
    /// drawing by a pixel of rounding, and two labels overlapped.
    fn short_drill_steps() -> Vec<(f64, String)> {
        let mut steps = drill_steps();
        for (s, t) in steps.iter_mut().zip([
            0.0, 15.3, 15.9, 16.0, 35.6, 42.5, 42.8, 62.9, 65.5, 66.3, 71.3, 70.57,
        ]) {
            s.0 = t;
        }
        steps.push((79.0, "after".into()));
        steps
    }

    #[test]
    fn a_timeline_of_twelve_steps_draws_no_label_over_another() {
        for (steps, end) in [(drill_steps(), 115), (short_drill_steps(), 81)] {
            twelve_steps(steps, end);
        }
    }

    fn twelve_steps(steps: Vec<(f64, String)>, end: usize) {
        let dir = std::env::temp_dir().join(format!("rehearse-chart-{}", std::process::id()));
        let mut c = Chart::new("record_revenue: latency per 1 s interval", "s", "ms");
        c.log_y = true;
        c.bounds = steps;
        let line = |k: f64| (0..end).map(|i| (i as f64, k + (i % 7) as f64)).collect();
        for (i, (label, dash)) in [
            ("p50", Dash::Dashed),
            ("p99", Dash::Solid),
            ("max", Dash::Dotted),
        ]
        .into_iter()
        .enumerate()
        {
            c.series.push(Series {
                label: format!("flag-replica-cache {label}"),
                color: PALETTE[i],
                width: 2,
                dash,
                points: line(i as f64 * 5.0 + 1.0),
            });
        }
        c.rules.push(Rule {
            label: "p99 budget 20 ms (met)".into(),
            y: 20.0,
            color: MET,
        });
        let (_, d) = render_drawn(&c, &dir, "twelve").unwrap();
        no_two_overlap(&d);
        // Every step is named: on the chart, or by its number in the key.
        for (i, (_, name)) in c.bounds.iter().enumerate() {
            let on_chart = d.labels.iter().any(|l| &l.text == name);
            let numbered = d.labels.iter().any(|l| l.text == (i + 1).to_string())
                && d.labels.iter().filter(|l| &l.text == name).count() == 1;
            assert!(on_chart || numbered, "step {name} is not named");
        }
        // The crowded last steps could not all have their names in the band.
        assert!(d.labels.iter().any(|l| l.text == "verify after switch"));
        // Breaking the layout is seen: two boxes at one place overlap.
        let mut broken = d.clone();
        let first = broken.labels[1].clone();
        broken.labels.push(first);
        assert!(std::panic::catch_unwind(|| no_two_overlap(&broken)).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn spectrum_budget_labels_sit_beside_their_crosses_and_bars_carry_values() {
        let dir = std::env::temp_dir().join(format!("rehearse-chart-b-{}", std::process::id()));
        let mut c = Chart::new("dashboard: response time by percentile", "percentile", "ms");
        c.nines = true;
        c.log_y = true;
        c.series.push(Series {
            label: "cache-on".into(),
            color: PALETTE[0],
            width: 2,
            dash: Dash::Solid,
            points: (1..60).map(|i| (1.2f64.powi(i), i as f64 / 3.0)).collect(),
        });
        for (q, ms) in [(0.5, 2.0), (0.95, 8.0), (0.99, 20.0), (0.999, 21.0)] {
            c.markers.push(Marker {
                label: format!("p{} budget {ms} ms", q * 100.0),
                at: (1.0 / (1.0 - q), ms),
                pass: true,
            });
        }
        let (_, d) = render_drawn(&c, &dir, "spectrum").unwrap();
        no_two_overlap(&d);
        let steps = drill_steps();
        let b = Bars {
            title: "p99 per step".into(),
            y_desc: "p99 response time (ms)".into(),
            categories: steps.iter().map(|s| s.1.clone()).collect(),
            groups: vec![("p99".into(), (0..12).map(|i| 3.0 + i as f64).collect())],
            rules: vec![(
                None,
                Rule {
                    label: "steady p99".into(),
                    y: 3.0,
                    color: GUIDE,
                },
            )],
            value: |v| format!("{v:.1}"),
        };
        let (_, d) = render_bars_drawn(&b, &dir, "bars").unwrap();
        no_two_overlap(&d);
        for v in ["3.0", "14.0"] {
            assert!(d.labels.iter().any(|l| l.text == v), "no value label {v}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
