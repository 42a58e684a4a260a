//! How big properties are and how much they earn and spend on a given day:
//! sizes skewed toward small, weekday and seasonal patterns, integer cents.

use super::rng::SplitMix;
use crate::day::Day;

const HOTEL: usize = 0;
const RESTAURANT: usize = 1;
const BAR: usize = 2;

// Revenue category indexes into REVENUE_CATEGORIES.
const ROOMS: usize = 0;
const FOOD_BEVERAGE: usize = 1;
const SPA_SALES: usize = 2;
const OTHER: usize = 3;

// Expense category indexes into EXPENSE_CATEGORIES.
const PAYROLL: usize = 0;
const SUPPLIES: usize = 1;
const UTILITIES: usize = 2;
const MAINTENANCE: usize = 3;
const MARKETING: usize = 4;

/// Rooms, covers or treatment rooms: most properties small, a long tail large.
pub fn property_size(rng: &mut SplitMix, kind: usize) -> i32 {
    let skew = rng.unit().powf(2.5);
    let (min, span) = match kind {
        HOTEL => (15.0, 385.0),
        RESTAURANT => (30.0, 220.0),
        BAR => (20.0, 130.0),
        _ => (4.0, 26.0),
    };
    (min + skew * span) as i32
}

/// A name suffix for a property of `kind`.
pub fn kind_label(kind: usize, n: u32) -> String {
    let base = ["Hotel", "Kitchen", "Bar", "Spa"][kind];
    if n == 0 {
        base.to_string()
    } else {
        format!("{base} {}", n + 1)
    }
}

/// Demand on `day` relative to an average day: season (peak in summer),
/// weekday (weekends busy for hotels and bars), and noise.
pub fn day_factor(rng: &mut SplitMix, kind: usize, day: Day) -> f64 {
    let doy = day.day_of_year() as f64;
    let season = 1.0 + 0.25 * (std::f64::consts::TAU * (doy - 100.0) / 365.0).sin();
    // 0 = Monday ... 6 = Sunday.
    let wd = day.weekday() as usize;
    let weekday = match kind {
        HOTEL => [0.9, 0.9, 0.95, 1.0, 1.25, 1.3, 0.85][wd],
        RESTAURANT => [0.7, 0.85, 0.9, 1.0, 1.4, 1.45, 1.1][wd],
        BAR => [0.6, 0.65, 0.7, 1.2, 1.8, 1.9, 0.8][wd],
        _ => [0.9, 0.9, 0.9, 1.0, 1.1, 1.3, 1.3][wd],
    };
    season * weekday * (0.85 + 0.3 * rng.unit())
}

fn cents(x: f64) -> i64 {
    (x.round() as i64).max(1)
}

/// The day's revenue entries, (category index, cents), written into `out`
/// (cleared first): the caller reuses one buffer for every property-day.
pub fn revenue(
    rng: &mut SplitMix,
    kind: usize,
    size: i32,
    price: f64,
    f: f64,
    out: &mut Vec<(usize, i64)>,
) {
    let size = size as f64;
    out.clear();
    match kind {
        HOTEL => {
            let occupancy = (0.62 * f).min(0.98);
            let rooms = size * occupancy * 12_000.0 * price;
            out.push((ROOMS, cents(rooms)));
            out.push((FOOD_BEVERAGE, cents(size * 0.5 * f * 3_500.0 * price)));
            if size > 80.0 {
                out.push((SPA_SALES, cents(size * 0.05 * f * 9_000.0 * price)));
            }
            out.push((OTHER, cents(rooms * (0.02 + 0.03 * rng.unit()))));
        }
        RESTAURANT => {
            let fb = size * 1.1 * f * 3_200.0 * price;
            out.push((FOOD_BEVERAGE, cents(fb)));
            if rng.unit() < 0.3 {
                out.push((OTHER, cents(fb * (0.02 + 0.03 * rng.unit()))));
            }
        }
        BAR => {
            let fb = size * 1.3 * f * 1_800.0 * price;
            out.push((FOOD_BEVERAGE, cents(fb)));
            if rng.unit() < 0.2 {
                out.push((OTHER, cents(fb * 0.05)));
            }
        }
        _ => {
            let spa = size * 4.0 * f * 8_500.0 * price;
            out.push((SPA_SALES, cents(spa)));
            out.push((OTHER, cents(spa * 0.1 * rng.unit())));
        }
    }
}

/// The day's expense entries, (category index, cents), written into `out`
/// (cleared first). `sales` is the day's revenue, which drives the cost of goods.
pub fn expenses(
    rng: &mut SplitMix,
    kind: usize,
    size: i32,
    sales: i64,
    day: Day,
    out: &mut Vec<(usize, i64)>,
) {
    let size = size as f64;
    out.clear();
    let cost_ratio = match kind {
        HOTEL => 0.08,
        RESTAURANT => 0.32,
        BAR => 0.25,
        _ => 0.12,
    };
    if rng.unit() < 0.75 {
        out.push((
            SUPPLIES,
            cents(sales as f64 * cost_ratio * (0.8 + 0.4 * rng.unit())),
        ));
    }
    let wd = day.weekday();
    // Payroll every other Friday, for two weeks of work.
    if wd == 4 && (day.0.div_euclid(7)) % 2 == 0 {
        let per_unit_day = match kind {
            HOTEL => 4_500.0,
            RESTAURANT | BAR => 2_800.0,
            _ => 9_000.0,
        };
        out.push((
            PAYROLL,
            cents(size * per_unit_day * 14.0 * (0.9 + 0.2 * rng.unit())),
        ));
    }
    // Utilities billed weekly, on Mondays.
    if wd == 0 {
        out.push((
            UTILITIES,
            cents(size * 700.0 * 7.0 * (0.8 + 0.4 * rng.unit())),
        ));
    }
    if rng.unit() < 0.08 {
        out.push((MAINTENANCE, cents(5_000.0 + rng.unit().powi(3) * 195_000.0)));
    }
    if rng.unit() < 0.04 {
        out.push((MARKETING, cents(10_000.0 + rng.unit().powi(2) * 490_000.0)));
    }
}
