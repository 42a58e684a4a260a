//! Charts of a run, drawn with plotters into SVG (for the HTML report) and
//! PNG (for anything else). Text is drawn with DejaVu Sans, shipped in
//! `assets/fonts`, so no system font library is needed.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{Error, Result};

const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
pub const SIZE: (u32, u32) = (960, 540);

/// Series colours, one per variant (colour-blind safe: Okabe-Ito).
pub const PALETTE: [RGBColor; 6] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
];

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // A font we ship and know to parse.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// A line of a chart.
#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub color: RGBColor,
    /// Thicker lines stand out (p99 over p50).
    pub width: u32,
    pub points: Vec<(f64, f64)>,
}

/// A marker: a budget, drawn as a cross with its label.
#[derive(Debug, Clone)]
pub struct Marker {
    pub label: String,
    pub at: (f64, f64),
    pub pass: bool,
}

/// What one chart shows.
#[derive(Debug, Clone)]
pub struct Chart {
    pub title: String,
    pub x_desc: String,
    pub y_desc: String,
    /// The percentile "nines" axis: x = 1 / (1 - q).
    pub nines: bool,
    pub log_y: bool,
    pub series: Vec<Series>,
    pub markers: Vec<Marker>,
    /// Vertical lines with labels (phase boundaries).
    pub bounds: Vec<(f64, String)>,
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

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    c: &Chart,
) -> std::result::Result<(), String> {
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    root.fill(&WHITE).map_err(e)?;
    let all: Vec<(f64, f64)> = c
        .series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .chain(c.markers.iter().map(|m| m.at))
        .filter(|p| p.0.is_finite() && p.1.is_finite())
        .collect();
    let (mut x0, mut x1) = all
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (mut y0, mut y1) = all
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    if all.is_empty() {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    if c.nines {
        x0 = 1.0;
        x1 = x1.max(10.0) * 1.5;
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(&c.title, ("sans-serif", 22))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(72);
    macro_rules! finish {
        ($chart:expr) => {{
            let mut chart = $chart;
            let mut mesh = chart.configure_mesh();
            mesh.x_desc(c.x_desc.as_str())
                .y_desc(c.y_desc.as_str())
                .label_style(("sans-serif", 14))
                .axis_desc_style(("sans-serif", 16))
                .light_line_style(RGBColor(235, 235, 235));
            if c.nines {
                mesh.x_label_formatter(&|x| nines_label(*x));
            } else {
                mesh.x_label_formatter(&|x| format!("{x:.0}"));
            }
            mesh.draw().map_err(e)?;
            for (i, (x, label)) in c.bounds.iter().enumerate() {
                // Labels step down in four rows so close boundaries stay readable.
                let k = (i % 4) as f64 * 0.07;
                let label_y = if c.log_y && y0 > 0.0 {
                    (y1.ln() - k * (y1.ln() - y0.ln())).exp()
                } else {
                    y1 - k * (y1 - y0)
                };
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(*x, y0.max(f64::MIN_POSITIVE)), (*x, y1)],
                        RGBColor(150, 150, 150).stroke_width(1),
                    )))
                    .map_err(e)?;
                chart
                    .draw_series(std::iter::once(Text::new(
                        label.clone(),
                        (*x, label_y),
                        ("sans-serif", 13).into_font().color(&RGBColor(90, 90, 90)),
                    )))
                    .map_err(e)?;
            }
            for s in &c.series {
                let color = s.color;
                let width = s.width;
                chart
                    .draw_series(LineSeries::new(
                        s.points
                            .iter()
                            .copied()
                            .filter(|p| p.1.is_finite() && (!c.log_y || p.1 > 0.0)),
                        color.stroke_width(width),
                    ))
                    .map_err(e)?
                    .label(s.label.clone())
                    .legend(move |(x, y)| {
                        PathElement::new(
                            vec![(x, y), (x + 22, y)],
                            color.stroke_width(width.max(2)),
                        )
                    });
            }
            for m in &c.markers {
                let color = if m.pass {
                    RGBColor(0, 130, 60)
                } else {
                    RGBColor(200, 0, 0)
                };
                chart
                    .draw_series(std::iter::once(Cross::new(m.at, 7, color.stroke_width(3))))
                    .map_err(e)?;
                chart
                    .draw_series(std::iter::once(Text::new(
                        m.label.clone(),
                        m.at,
                        ("sans-serif", 13).into_font().color(&color),
                    )))
                    .map_err(e)?;
            }
            chart
                .configure_series_labels()
                .position(if c.nines {
                    SeriesLabelPosition::UpperLeft
                } else if c.bounds.len() > 3 {
                    // The boundaries' labels run along the top.
                    SeriesLabelPosition::LowerRight
                } else {
                    SeriesLabelPosition::UpperRight
                })
                .label_font(("sans-serif", 14))
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(180, 180, 180))
                .draw()
                .map_err(e)?;
        }};
    }
    match (c.nines, c.log_y) {
        (true, true) | (false, true) => {
            let y0 = (y0.max(1e-3) / 1.5).max(1e-3);
            let y1 = y1.max(y0 * 10.0) * 1.5;
            if c.nines {
                finish!(builder
                    .build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())
                    .map_err(e)?)
            } else {
                finish!(builder
                    .build_cartesian_2d(x0..x1, (y0..y1).log_scale())
                    .map_err(e)?)
            }
        }
        (true, false) => {
            let y1 = y1.max(1e-9) * 1.1;
            finish!(builder
                .build_cartesian_2d((x0..x1).log_scale(), 0.0..y1)
                .map_err(e)?)
        }
        (false, false) => {
            let y1 = y1.max(1e-9) * 1.1;
            finish!(builder.build_cartesian_2d(x0..x1, 0.0..y1).map_err(e)?)
        }
    }
    root.present().map_err(e)?;
    Ok(())
}

/// Grouped bars: per category (operation), one bar per group (variant).
#[derive(Debug, Clone)]
pub struct Bars {
    pub title: String,
    pub y_desc: String,
    pub categories: Vec<String>,
    /// (group label, one value per category).
    pub groups: Vec<(String, Vec<f64>)>,
}

fn draw_bars<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    b: &Bars,
) -> std::result::Result<(), String> {
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    root.fill(&WHITE).map_err(e)?;
    let n = b.categories.len().max(1) as f64;
    let g = b.groups.len().max(1) as f64;
    let top = b
        .groups
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold(0.0f64, f64::max)
        .max(1e-9)
        * 1.15;
    let mut chart = ChartBuilder::on(&root)
        .caption(&b.title, ("sans-serif", 22))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(0.0..n, 0.0..top)
        .map_err(e)?;
    let cats = b.categories.clone();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(b.categories.len() * 2 + 1)
        .x_label_formatter(&|x| {
            // Label the middle of each category only.
            let i = x.floor() as usize;
            if (x - x.floor() - 0.5).abs() < 0.01 {
                cats.get(i).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc(b.y_desc.as_str())
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(e)?;
    let width = 0.8 / g;
    for (j, (label, values)) in b.groups.iter().enumerate() {
        let color = PALETTE[j % PALETTE.len()];
        chart
            .draw_series(values.iter().enumerate().map(|(i, v)| {
                let x0 = i as f64 + 0.1 + j as f64 * width;
                Rectangle::new([(x0, 0.0), (x0 + width * 0.9, *v)], color.filled())
            }))
            .map_err(e)?
            .label(label.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font(("sans-serif", 14))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .draw()
        .map_err(e)?;
    root.present().map_err(e)?;
    Ok(())
}

/// Draw grouped bars into `dir/<name>.png` and `.svg`; returns the SVG text.
pub fn render_bars(b: &Bars, dir: &Path, name: &str) -> Result<String> {
    render_with(
        dir,
        name,
        |root| draw_bars(root, b),
        |root| draw_bars(root, b),
    )
}

/// Draw `c` into `dir/<name>.png` and return the SVG text.
pub fn render(c: &Chart, dir: &Path, name: &str) -> Result<String> {
    render_with(dir, name, |root| draw(root, c), |root| draw(root, c))
}

/// Draw with `svg_draw` into an SVG string and with `png_draw` into a PNG
/// file (written atomically); both files land in `dir`.
fn render_with(
    dir: &Path,
    name: &str,
    svg_draw: impl FnOnce(DrawingArea<SVGBackend<'_>, Shift>) -> std::result::Result<(), String>,
    png_draw: impl FnOnce(DrawingArea<BitMapBackend<'_>, Shift>) -> std::result::Result<(), String>,
) -> Result<String> {
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
    png_draw(BitMapBackend::new(&tmp, SIZE).into_drawing_area())
        .map_err(|m| Error::Lab(format!("drawing {}: {m}", png.display())))?;
    std::fs::rename(&tmp, &png).map_err(|source| Error::Io {
        what: "renaming into place".into(),
        path: png.clone(),
        source,
    })?;
    crate::fsutil::write_atomic(&dir.join(format!("{name}.svg")), svg.as_bytes())?;
    Ok(svg)
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
}
