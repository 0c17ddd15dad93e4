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
    pub title: &'a str,
    /// Axis label of the latency (e.g. "predicted online latency (s), LAN").
    pub x_label: &'a str,
    /// Axis label of the score (accuracy or top-1 agreement).
    pub y_label: &'a str,
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
        .build_cartesian_2d((lo..hi).log_scale(), ylo..yhi)?;
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
    // Points drawn (nearly) at the same pixel share one tag ("3,4").
    let mut tags: Vec<((i32, i32), String, bool)> = Vec::new();
    for (i, p) in points.iter().enumerate() {
        let at = ((spec.latency)(p), 100.0 * p.score);
        let style = if p.front { FRONT.filled() } else { OTHER.filled() };
        chart.draw_series(std::iter::once(Circle::new(at, if p.front { 6 } else { 4 }, style)))?;
        let px = chart.backend_coord(&at);
        match tags.iter_mut().find(|(q, _, _)| (q.0 - px.0).abs() <= 16 && (q.1 - px.1).abs() <= 10) {
            Some(t) => {
                t.1 += &format!(",{}", i + 1);
                t.2 |= p.front;
            }
            None => tags.push((px, (i + 1).to_string(), p.front)),
        }
    }
    for (px, tag, front) in &tags {
        let style = font(15).color(if *front { &FRONT } else { &OTHER });
        // `chart_area` starts at the backend's origin, so backend coordinates are its own.
        chart_area.draw(&Text::new(tag.clone(), (px.0 + 7, px.1 - 20), style))?;
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
