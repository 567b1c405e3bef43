//! Bar charts drawn on the server as SVG, so a report needs no script: one group of bars per
//! period, scaled to the largest value, each bar's number in its `<title>` for a pointer to show.
//! A chart is for the eye; its numbers are always in a table beside it, which is what a screen
//! reader reads, so the picture is one labelled image and the legend plain text.

use maud::{html, Markup};

/// One kind of count, drawn in its own colour (`s0`, `s1`, ... in console.css).
pub struct Series<'a> {
    pub name: &'a str,
    pub values: Vec<i64>,
}

const HEIGHT: i64 = 120;
const BAR: i64 = 6;
const GAP: i64 = 4;
/// Room on the left for the largest value.
const AXIS: i64 = 48;
/// Pixels per unit: a chart of few bars stays small rather than stretched, and a wide one
/// shrinks to the page (console.css).
const SCALE: i64 = 2;

/// A chart of `series` over `periods` (labels, first to last), described by `label`.
pub fn bars(label: &str, periods: &[String], series: &[Series]) -> Markup {
    let groups = i64::try_from(periods.len()).unwrap_or(i64::MAX);
    let per_group = i64::try_from(series.len()).unwrap_or(0) * BAR + GAP;
    let width = AXIS + groups.saturating_mul(per_group) + GAP;
    let top = series.iter().flat_map(|s| s.values.iter().copied()).max().unwrap_or(0).max(1);
    let plot = HEIGHT - 20;
    let first = periods.first().map(String::as_str).unwrap_or_default();
    let last = periods.last().map(String::as_str).unwrap_or_default();
    html! {
        figure class="chart" {
            svg role="img" aria-label={ (label) ", " (first) " to " (last) "; the table below holds every number" }
                viewBox={ "0 0 " (width) " " (HEIGHT) } width=(width * SCALE) height=(HEIGHT * SCALE) {
                line class="axis" x1=(AXIS) y1=(plot) x2=(width) y2=(plot) {}
                text class="tick" x=(AXIS - 4) y="10" text-anchor="end" { (top) }
                text class="tick" x=(AXIS - 4) y=(plot) text-anchor="end" { "0" }
                @for (g, period) in periods.iter().enumerate() {
                    @for (k, s) in series.iter().enumerate() {
                        @let value = s.values.get(g).copied().unwrap_or(0);
                        @let h = value.saturating_mul(plot - 12) / top;
                        @let x = AXIS + GAP + i64::try_from(g).unwrap_or(0) * per_group + i64::try_from(k).unwrap_or(0) * BAR;
                        rect class={ "s" (k) } x=(x) y=(plot - h) width=(BAR - 1) height=(h) {
                            title { (period) ": " (value) " " (s.name) }
                        }
                    }
                }
                text class="tick" x=(AXIS + GAP) y=(HEIGHT - 4) { (first) }
                text class="tick" x=(width - GAP) y=(HEIGHT - 4) text-anchor="end" { (last) }
            }
            figcaption {
                (label) ": "
                @for (k, s) in series.iter().enumerate() {
                    @if k > 0 { ", " }
                    span class={ "key s" (k) } {} " " (s.name)
                }
            }
        }
    }
}
