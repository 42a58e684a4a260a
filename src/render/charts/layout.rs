//! Laying out a chart's text before it is drawn: tick labels, the band of
//! marker labels, the legend, the title.

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;

use super::*;

pub(super) fn round_up_125(v: f64) -> f64 {
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|x| *x >= v * (1.0 - 1e-9))
        .unwrap_or(10.0 * p)
}

pub(super) fn nines_label(x: f64) -> String {
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
pub(super) enum Slot {
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
pub(super) enum Side {
    Right,
    Left,
}

/// How many rows of labels `slots` use (None: no label has a row).
pub(super) fn rows_used(slots: &[Slot]) -> Option<i32> {
    slots
        .iter()
        .filter_map(|s| match s {
            Slot::Full(r, _) | Slot::Number(r, _) => Some(*r as i32 + 1),
            Slot::KeyOnly => None,
        })
        .max()
}

/// The height of a row of labels.
pub(super) fn row_height() -> i32 {
    text_size("Ag", LABEL_FONT).1 + 3
}

/// The legend's key: the name of every marker that did not get its name drawn.
pub(super) fn key_entries(slots: &[Slot], names: &[String]) -> Vec<Entry> {
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
pub(super) fn take_row(rows: &mut [Vec<(i32, i32)>], x0: i32, x1: i32) -> Option<usize> {
    let r = rows
        .iter()
        .position(|row| row.iter().all(|&(a, b)| x1 + GAP <= a || b + GAP <= x0))?;
    rows[r].push((x0, x1));
    Some(r)
}

/// The side of a vertical line at `x` a label of width `w` goes on: the
/// right, or the left where it would leave the plot.
pub(super) fn side(x: i32, w: i32, right: i32) -> Side {
    if x + 3 + w <= right {
        Side::Right
    } else {
        Side::Left
    }
}

/// The span of a label of width `w` on `side` of a line at `x`.
pub(super) fn span(x: i32, w: i32, side: Side) -> (i32, i32) {
    match side {
        Side::Right => (x + 3, x + 3 + w),
        Side::Left => (x - 3 - w, x - 3),
    }
}

/// Lay out the labels of vertical lines at pixel `xs` in `rows` rows: full
/// text where it fits, else its number, else the key only.
pub(super) fn band_layout(xs: &[i32], texts: &[String], right: i32, rows: usize) -> Vec<Slot> {
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
pub(super) struct Entry {
    pub(super) text: String,
    pub(super) sample: Sample,
}

pub(super) enum Sample {
    Line(RGBColor, u32, Dash),
    Block(RGBColor),
    /// A key entry: the marker's number, shown as the sample.
    Number(String),
}

pub(super) const SAMPLE_W: i32 = 26;
pub(super) const LEGEND_ROW: i32 = 20;

/// Entries wrapped into lines of `width` pixels: (x offset, line) per entry.
pub(super) fn legend_layout(entries: &[Entry], width: i32) -> Vec<(i32, usize)> {
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

pub(super) fn entry_width(e: &Entry) -> i32 {
    let sample = match &e.sample {
        Sample::Number(n) => text_size(n, LABEL_FONT).0.max(14),
        _ => SAMPLE_W,
    };
    sample + 6 + text_size(&e.text, LABEL_FONT).0
}

pub(super) fn legend_height(entries: &[Entry], width: i32) -> i32 {
    match legend_layout(entries, width).last() {
        None => 0,
        Some(&(_, lines)) => (lines as i32 + 1) * LEGEND_ROW + 6,
    }
}

/// Draw the legend into `area` (absolute pixel `origin`), recording boxes.
pub(super) fn draw_legend<DB: DrawingBackend>(
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
pub(super) fn draw_title<DB: DrawingBackend>(
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

pub(super) const TITLE_H: i32 = 38;

/// The width the y axis' tick labels and description need.
pub(super) fn y_area(labels: &[String]) -> i32 {
    let widest = labels
        .iter()
        .map(|l| text_size(l, TICK_FONT).0)
        .max()
        .unwrap_or(0);
    // Tick length, a gap, the labels, a gap, the rotated description.
    widest + 10 + 10 + DESC_FONT as i32 + 8
}
