//! Grouped bars ([`Bars`]).

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;

use super::*;

pub(super) fn draw_bars<DB: DrawingBackend>(
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
    let cat_slots = category_slots(&b.categories, plot_left, slot_w);
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
    draw_category_labels(
        &root,
        &b.categories,
        &cat_slots,
        |i| chart.backend_coord(&(i as f64 + 0.5, 0.0)).0,
        &mut drawn,
    )?;
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

/// Category labels under the axis: centred, in as many rows as they need
/// (up to three), else their number with the name in the legend.
pub(super) fn category_slots(categories: &[String], plot_left: i32, slot_w: f64) -> Vec<Slot> {
    let mut rows: Vec<Vec<(i32, i32)>> = vec![Vec::new(); 3];
    categories
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
        .collect()
}

/// Draw the category labels `slots` placed under the plot (`drawn.plot`),
/// category `i` centred at `mid(i)`.
pub(super) fn draw_category_labels<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    categories: &[String],
    slots: &[Slot],
    mid: impl Fn(usize) -> i32,
    drawn: &mut Drawn,
) -> std::result::Result<(), String> {
    let row_h = row_height();
    for (i, s) in slots.iter().enumerate() {
        let (text, row) = match s {
            Slot::Full(r, _) => (categories[i].clone(), *r),
            Slot::Number(r, _) => ((i + 1).to_string(), *r),
            Slot::KeyOnly => continue,
        };
        let mid = mid(i);
        let (w, h) = text_size(&text, LABEL_FONT);
        let y = drawn.plot.3 + 5 + row as i32 * row_h;
        root.draw(&Text::new(
            text.clone(),
            (mid - w / 2, y),
            ("sans-serif", LABEL_FONT)
                .into_font()
                .color(&RGBColor(40, 40, 40)),
        ))
        .map_err(|x| x.to_string())?;
        drawn
            .labels
            .push(Placed::new(&text, mid - w / 2, y, (w, h)));
    }
    Ok(())
}
