//! A line chart ([`Chart`]): series, budget markers and rules, phase bounds.

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;

use super::*;

pub(super) fn draw<DB: DrawingBackend>(
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
