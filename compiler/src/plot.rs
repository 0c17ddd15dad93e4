//! The Pareto plot of `veilc explore`: score against predicted latency, every configuration a
//! labelled point, the front highlighted and joined. Drawn with `plotters` into SVG and PNG;
//! text uses a bundled subset of DejaVu Sans (`assets/`), so the output does not depend on the
//! machine's fonts.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::explore::Point;

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans-subset.ttf");
const FAMILY: &str = "veil-sans";

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bundled font is a valid TrueType file (checked by the tests that draw).
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT);
    });
}

/// What the plot shows.
pub struct PlotSpec<'a> {
    /// Title above the chart.
    pub title: &'a str,
    /// Axis label of the latency (e.g. "predicted online latency (s), LAN").
    pub x_label: &'a str,
    /// Axis label of the score (accuracy or top-1 agreement).
    pub y_label: &'a str,
    /// The x coordinate of a point, in seconds (which phase, which network).
    pub latency: &'a dyn Fn(&Point) -> f64,
}

/// Writes the plot as SVG to `svg` and PNG to `png`. Point `i` of `points` is marked with
/// its number `i + 1` (as in `pareto.csv`'s `id` column); the key beside the chart names each.
pub fn write(points: &[Point], spec: &PlotSpec, svg: &Path, png: &Path) -> Result<(), String> {
    register_font();
    let size = (1500, 60 + 20 * points.len().max(36) as u32);
    {
        let root = SVGBackend::new(svg, size).into_drawing_area();
        draw(&root, points, spec).map_err(|e| format!("{}: {e}", svg.display()))?;
        root.present().map_err(|e| format!("{}: {e}", svg.display()))?;
    }
    let root = BitMapBackend::new(png, size).into_drawing_area();
    draw(&root, points, spec).map_err(|e| format!("{}: {e}", png.display()))?;
    root.present().map_err(|e| format!("{}: {e}", png.display()))?;
    Ok(())
}

const FRONT: RGBColor = RGBColor(200, 30, 30);
const OTHER: RGBColor = RGBColor(100, 100, 100);

/// A pixel rectangle `[x0, x1) × [y0, y1)`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Rect {
    x0: i32,
    y0: i32,
    x1: i32,
    y1: i32,
}

impl Rect {
    fn around(c: (i32, i32), r: i32) -> Rect {
        Rect { x0: c.0 - r, y0: c.1 - r, x1: c.0 + r + 1, y1: c.1 + r + 1 }
    }

    fn overlaps(&self, o: &Rect) -> bool {
        self.x0 < o.x1 && o.x0 < self.x1 && self.y0 < o.y1 && o.y0 < self.y1
    }

    fn contains(&self, p: (i32, i32)) -> bool {
        (self.x0..self.x1).contains(&p.0) && (self.y0..self.y1).contains(&p.1)
    }

    fn inside(&self, o: &Rect) -> bool {
        self.x0 >= o.x0 && self.y0 >= o.y0 && self.x1 <= o.x1 && self.y1 <= o.y1
    }

    /// Whether the segment `a`–`b` passes through the rectangle (sampled every pixel).
    fn crosses(&self, a: (i32, i32), b: (i32, i32)) -> bool {
        let steps = (b.0 - a.0).abs().max((b.1 - a.1).abs()).max(1);
        (0..=steps).any(|k| {
            let t = k as f64 / steps as f64;
            let p = (a.0 + ((b.0 - a.0) as f64 * t).round() as i32, a.1 + ((b.1 - a.1) as f64 * t).round() as i32);
            self.contains(p)
        })
    }

    /// The point of the rectangle's border nearest to `p` (where a leader line ends).
    fn nearest(&self, p: (i32, i32)) -> (i32, i32) {
        (p.0.clamp(self.x0, self.x1 - 1), p.1.clamp(self.y0, self.y1 - 1))
    }
}

/// Where the tag of a point at `at` goes: the first of a growing ring of candidate boxes of
/// size `size` that stays inside `area` and clear of `taken` boxes and the `front` line.
/// `None` if every candidate collides.
fn place(at: (i32, i32), size: (i32, i32), area: &Rect, taken: &[Rect], front: &[(i32, i32)]) -> Option<Rect> {
    let (w, h) = size;
    // Right, above-right, left, below-right, above, below, above-left, below-left.
    const DIRS: [(i32, i32); 8] = [(1, 0), (1, -1), (-1, 0), (1, 1), (0, -1), (0, 1), (-1, -1), (-1, 1)];
    for radius in (8..=160).step_by(12) {
        for (dx, dy) in DIRS {
            // The box's edge nearest the point sits `radius` away in direction (dx, dy).
            let x0 = match dx {
                1 => at.0 + radius,
                -1 => at.0 - radius - w,
                _ => at.0 - w / 2,
            };
            let y0 = match dy {
                1 => at.1 + radius,
                -1 => at.1 - radius - h,
                _ => at.1 - h / 2,
            };
            let r = Rect { x0, y0, x1: x0 + w, y1: y0 + h };
            let clear = r.inside(area)
                && !taken.iter().any(|t| t.overlaps(&r))
                && !front.windows(2).any(|s| r.crosses(s[0], s[1]));
            if clear {
                return Some(r);
            }
        }
    }
    None
}

/// Tick values for a log axis over `[lo, hi]`: the coarsest of the 1-2-5 style series that
/// gives at least five ticks inside the range.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    const SERIES: [&[f64]; 4] = [
        &[1.0],
        &[1.0, 2.0, 5.0],
        &[1.0, 1.5, 2.0, 3.0, 5.0, 7.0],
        &[1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0],
    ];
    // The last resort for very narrow ranges: every tenth of a unit.
    let tenths: Vec<f64> = (10..100).map(|k| k as f64 / 10.0).collect();
    let mut best = Vec::new();
    for series in SERIES.into_iter().chain([tenths.as_slice()]) {
        best = (lo.log10().floor() as i32..=hi.log10().ceil() as i32)
            .flat_map(|e| series.iter().map(move |m| m * 10f64.powi(e)))
            .filter(|x| (lo..=hi).contains(x))
            .collect();
        if best.len() >= 5 {
            break;
        }
    }
    best
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    points: &[Point],
    spec: &PlotSpec,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let (chart_area, key_area) = root.split_horizontally(1040);
    let xs: Vec<f64> = points.iter().map(|p| (spec.latency)(p)).filter(|x| *x > 0.0).collect();
    let (lo, hi) = xs.iter().fold((f64::INFINITY, 0f64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    let (lo, hi) = if lo.is_finite() { (lo / 1.2, hi * 1.2) } else { (1e-3, 1.0) };
    let ymin = points.iter().map(|p| 100.0 * p.score).fold(100.0, f64::min);
    let (ylo, yhi) = ((ymin - 5.0).max(0.0).floor(), 101.0);
    let font = |size: u32| (FAMILY, size).into_font();
    let mut chart = ChartBuilder::on(&chart_area)
        .caption(spec.title, font(24))
        .margin(20)
        .x_label_area_size(55)
        .y_label_area_size(70)
        .build_cartesian_2d((lo..hi).log_scale().with_key_points(log_ticks(lo, hi)), ylo..yhi)?;
    chart
        .configure_mesh()
        .x_desc(spec.x_label)
        .y_desc(spec.y_label)
        .label_style(font(16))
        .axis_desc_style(font(18))
        .x_label_formatter(&|x| format_seconds(*x))
        .draw()?;
    let mut front: Vec<(f64, f64)> =
        points.iter().filter(|p| p.front).map(|p| ((spec.latency)(p), 100.0 * p.score)).collect();
    front.sort_by(|a, b| a.0.total_cmp(&b.0));
    chart.draw_series(LineSeries::new(front.iter().copied(), FRONT.stroke_width(2)))?;
    let front_px: Vec<(i32, i32)> = front.iter().map(|p| chart.backend_coord(p)).collect();

    // Points drawn at the same pixel (within 3) share one tag ("3,4"); every other point gets
    // its own tag, placed clear of the markers, the front line and the other tags, with a
    // leader line when it sits away from its point.
    let mut groups: Vec<((i32, i32), Vec<usize>, bool)> = Vec::new();
    for (i, p) in points.iter().enumerate() {
        let at = ((spec.latency)(p), 100.0 * p.score);
        let style = if p.front { FRONT.filled() } else { OTHER.filled() };
        chart.draw_series(std::iter::once(Circle::new(at, if p.front { 6 } else { 4 }, style)))?;
        let px = chart.backend_coord(&at);
        match groups.iter_mut().find(|(q, _, _)| (q.0 - px.0).abs() <= 3 && (q.1 - px.1).abs() <= 3) {
            Some(g) => {
                g.1.push(i);
                g.2 |= p.front;
            }
            None => groups.push((px, vec![i], p.front)),
        }
    }
    let (xr, yr) = chart.plotting_area().get_pixel_range();
    let area = Rect { x0: xr.start, y0: yr.start, x1: xr.end, y1: yr.end };
    let mut taken: Vec<Rect> = groups.iter().map(|(px, _, _)| Rect::around(*px, 7)).collect();
    // Front points first, then left to right: the front's tags get the nearest places.
    let mut order: Vec<usize> = (0..groups.len()).collect();
    order.sort_by_key(|&g| (!groups[g].2, groups[g].0.0));
    for g in order {
        let (px, ids, is_front) = &groups[g];
        let tag = ids.iter().map(|i| (i + 1).to_string()).collect::<Vec<_>>().join(",");
        let style = font(15).color(if *is_front { &FRONT } else { &OTHER });
        let (w, h) = chart_area.estimate_text_size(&tag, &style)?;
        let size = (w as i32 + 2, h as i32 + 2);
        let Some(r) = place(*px, size, &area, &taken, &front_px) else { continue };
        taken.push(r);
        let near = (r.x0 - px.0).abs().min((r.x1 - px.0).abs()).max((r.y0 - px.1).abs().min((r.y1 - px.1).abs()));
        if near > 12 {
            let end = r.nearest(*px);
            let colour = if *is_front { FRONT.mix(0.5) } else { OTHER.mix(0.5) };
            chart_area.draw(&PathElement::new(vec![*px, end], colour.stroke_width(1)))?;
        }
        // `chart_area` starts at the backend's origin, so backend coordinates are its own.
        chart_area.draw(&Text::new(tag, (r.x0 + 1, r.y0 + 1), style))?;
    }
    let key_font = |front: bool| font(14).color(if front { &FRONT } else { &OTHER });
    key_area.draw(&Text::new("configurations (red: Pareto front)", (10, 30), font(16)))?;
    for (i, p) in points.iter().enumerate() {
        let y = 60 + 20 * i as i32;
        key_area.draw(&Text::new(
            format!("{:>2}  {} ({} ReLUs)", i + 1, p.label, p.relus),
            (10, y),
            key_font(p.front),
        ))?;
    }
    Ok(())
}

/// Seconds with a unit that suits them.
pub fn format_seconds(x: f64) -> String {
    if x >= 1.0 {
        format!("{x:.3} s")
    } else if x >= 1e-3 {
        format!("{:.1} ms", x * 1e3)
    } else {
        format!("{:.0} µs", x * 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ticks_give_at_least_five_in_narrow_and_wide_ranges() {
        // The plot's range is at least 1.44 wide in ratio (its points' range widened 1.2 times
        // each way).
        let narrow = (0..200).map(|k| 10f64.powf(-6.0 + k as f64 * 0.037)).map(|lo| (lo, lo * 1.44));
        for (lo, hi) in [(9.6e-3, 25e-3), (1e-4, 10.0), (0.8, 1.3), (2e-6, 3e-6)].into_iter().chain(narrow) {
            let t = log_ticks(lo, hi);
            assert!(t.len() >= 5, "{lo}..{hi}: {t:?}");
            assert!(t.iter().all(|x| (lo..=hi).contains(x)) && t.windows(2).all(|w| w[0] < w[1]), "{t:?}");
        }
    }

    #[test]
    fn tags_avoid_each_other_markers_and_the_front() {
        let area = Rect { x0: 0, y0: 0, x1: 400, y1: 300 };
        let points = [(100, 100), (104, 100), (108, 102), (112, 100), (200, 200)];
        let front = [(50, 250), (200, 200), (300, 50)];
        let mut taken: Vec<Rect> = points.iter().map(|&p| Rect::around(p, 7)).collect();
        let mut placed = Vec::new();
        for p in points {
            let r = place(p, (20, 16), &area, &taken, &front).expect("room");
            assert!(r.inside(&area));
            assert!(!taken.iter().any(|t| t.overlaps(&r)), "{r:?} overlaps");
            assert!(!front.windows(2).any(|s| r.crosses(s[0], s[1])), "{r:?} crosses the front");
            taken.push(r);
            placed.push(r);
        }
        assert_eq!(placed.len(), 5);
    }
}
