//! Stacked bars ([`Stacked`]): per category, one bar per group, each bar
//! cut into layers (where an operation's server time went, per variant).

use plotters::coord::Shift;
use plotters::prelude::*;

use super::bars::{category_slots, draw_category_labels};
use super::*;

/// Per category (operation), one bar per group (variant), stacked by layer.
#[derive(Debug, Clone)]
pub struct Stacked {
    pub title: String,
    pub y_desc: String,
    pub categories: Vec<String>,
    /// The bars of a category, left to right, and the tag written over each.
    pub groups: Vec<(String, String)>,
    /// Layer names, bottom to top; the legend names them.
    pub layers: Vec<String>,
    /// values[group][category][layer]
    pub values: Vec<Vec<Vec<f64>>>,
    /// How a bar's total is written above it.
    pub value: fn(f64) -> String,
}

/// Draw stacked bars into `dir/<name>.png` and `.svg`; returns the SVG text
/// and what was drawn where.
pub fn render_stacked(s: &Stacked, dir: &Path, name: &str) -> Result<(String, Drawn)> {
    render_with(
        dir,
        name,
        |root| draw_stacked(root, s),
        |root| draw_stacked(root, s),
    )
}

fn total(v: &[f64]) -> f64 {
    v.iter().filter(|x| x.is_finite()).sum()
}

pub(super) fn draw_stacked<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    s: &Stacked,
) -> std::result::Result<Drawn, String> {
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    let mut drawn = Drawn::default();
    root.fill(&WHITE).map_err(e)?;
    let (width_px, height_px) = (SIZE.0 as i32, SIZE.1 as i32);
    let n = s.categories.len().max(1);
    let g = s.groups.len().max(1) as f64;
    let top = s
        .values
        .iter()
        .flat_map(|cats| cats.iter().map(|l| total(l)))
        .fold(0.0f64, f64::max)
        .max(1e-9)
        * 1.22;
    let y_area = y_area(&[tick_label(top), tick_label(top / 2.0)]);
    let plot_left = MARGIN + y_area;
    let plot_right = width_px - MARGIN;
    let slot_w = (plot_right - plot_left) as f64 / n as f64;
    let cat_slots = category_slots(&s.categories, plot_left, slot_w);
    let cat_rows = rows_used(&cat_slots).unwrap_or(1);
    let row_h = row_height();
    let mut entries: Vec<Entry> = s
        .layers
        .iter()
        .enumerate()
        .map(|(j, label)| Entry {
            text: label.clone(),
            sample: Sample::Block(PALETTE[j % PALETTE.len()]),
        })
        .collect();
    let order: Vec<String> = s
        .groups
        .iter()
        .map(|(name, tag)| format!("{tag} = {name}"))
        .collect();
    entries.push(Entry {
        text: format!("bars, left to right: {}", order.join(", ")),
        sample: Sample::Line(GUIDE, 1, Dash::Solid),
    });
    entries.extend(key_entries(&cat_slots, &s.categories));
    let legend_h = legend_height(&entries, width_px - 2 * MARGIN);
    let (title_area, rest) = root.split_vertically(TITLE_H);
    let (chart_area, legend_area) = rest.split_vertically(height_px - TITLE_H - legend_h);
    draw_title(&title_area, &s.title, &mut drawn)?;
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
        .y_desc(s.y_desc.as_str())
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
        &s.categories,
        &cat_slots,
        |i| chart.backend_coord(&(i as f64 + 0.5, 0.0)).0,
        &mut drawn,
    )?;
    let width = 0.8 / g;
    let bar_px = (slot_w * width * 0.9) as i32;
    for (j, cats) in s.values.iter().enumerate() {
        let tag = s.groups.get(j).map(|t| t.1.as_str()).unwrap_or("");
        for (i, layers) in cats.iter().enumerate() {
            let x0 = i as f64 + 0.1 + j as f64 * width;
            let mut y = 0.0;
            for (k, v) in layers.iter().enumerate() {
                if !v.is_finite() || *v <= 0.0 {
                    continue;
                }
                let color = PALETTE[k % PALETTE.len()];
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x0, y), (x0 + width * 0.9, y + v)],
                        color.filled(),
                    )))
                    .map_err(e)?;
                y += v;
            }
            let t = total(layers);
            if t <= 0.0 {
                continue;
            }
            // The bar's tag and total above it, on two lines when narrow.
            let (cx, cy) = chart.backend_coord(&(x0 + width * 0.45, t));
            let lines = if text_size(&format!("{tag} {}", (s.value)(t)), 11).0 + 2 > bar_px {
                vec![(s.value)(t), tag.to_string()]
            } else {
                vec![format!("{tag} {}", (s.value)(t))]
            };
            let mut yb = cy - 3;
            for text in lines {
                let (w, h) = text_size(&text, 11);
                yb -= h;
                root.draw(&Text::new(
                    text.clone(),
                    (cx - w / 2, yb),
                    ("sans-serif", 11).into_font().color(&RGBColor(40, 40, 40)),
                ))
                .map_err(e)?;
                drawn
                    .labels
                    .push(Placed::new(&text, cx - w / 2, yb, (w, h)));
                yb -= 1;
            }
        }
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
