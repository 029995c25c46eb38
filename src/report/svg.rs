//! Inline SVG charts: axes with ticks and units, points drawn as one path a
//! series (a report of thousands of alerts stays small), marks that differ
//! by shape and dash as well as by colour (greyscale printing).
//!
//! Every chart's root carries `data-chart` (its kind) and `data-points` (the
//! data points drawn), so a test can count them in the DOM.

use super::html::esc;
use std::fmt::Write as _;

const W: f64 = 560.0;
const H: f64 = 200.0;
const ML: f64 = 64.0;
const MR: f64 = 16.0;
const MT: f64 = 14.0;
const MB: f64 = 40.0;

/// "Nice" tick positions covering lo..hi (about five).
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = (hi - lo).max(f64::EPSILON);
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| span / s <= 6.0)
        .unwrap_or(10.0 * mag);
    let mut v = Vec::new();
    let mut t = (lo / step).ceil() * step;
    while t <= hi + step * 1e-9 && v.len() < 12 {
        v.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        t += step;
    }
    v
}

/// Short tick text: 1.2k, 3.4M for large values, trimmed decimals otherwise.
#[must_use]
pub fn short(x: f64) -> String {
    let a = x.abs();
    let (v, s) = if a >= 1e9 {
        (x / 1e9, "G")
    } else if a >= 1e6 {
        (x / 1e6, "M")
    } else if a >= 1e4 {
        (x / 1e3, "k")
    } else {
        (x, "")
    };
    let t = format!("{v:.2}");
    let t = t.trim_end_matches('0').trim_end_matches('.');
    format!("{t}{s}")
}

/// A time axis unit for a span in seconds: (divisor, unit label).
#[must_use]
pub fn time_unit(span_s: f64, ja: bool) -> (f64, &'static str) {
    match (span_s >= 3.0 * 3600.0, span_s >= 180.0, ja) {
        (true, _, false) => (3600.0, "h"),
        (true, _, true) => (3600.0, "時間"),
        (false, true, false) => (60.0, "min"),
        (false, true, true) => (60.0, "分"),
        (false, false, false) => (1.0, "s"),
        (false, false, true) => (1.0, "秒"),
    }
}

/// One chart under construction.
pub struct Plot {
    x: (f64, f64),
    y: (f64, f64),
    body: String,
    legend: Vec<(String, &'static str)>,
    kind: &'static str,
    title: String,
    points: usize,
}

impl Plot {
    /// A chart of kind `kind` over the data ranges, with axis titles (units included).
    pub fn new(
        kind: &'static str,
        title: &str,
        x: (f64, f64),
        y: (f64, f64),
        xlabel: &str,
        ylabel: &str,
    ) -> Self {
        let widen = |(lo, hi): (f64, f64)| {
            if hi - lo > f64::EPSILON * hi.abs().max(1.0) {
                (lo, hi)
            } else {
                (lo - 0.5, hi + 0.5)
            }
        };
        let mut p = Self {
            x: widen(x),
            y: widen(y),
            body: String::new(),
            legend: Vec::new(),
            kind,
            title: title.to_owned(),
            points: 0,
        };
        p.axes(xlabel, ylabel);
        p
    }

    fn px(&self, x: f64) -> f64 {
        ML + (x - self.x.0) / (self.x.1 - self.x.0) * (W - ML - MR)
    }
    fn py(&self, y: f64) -> f64 {
        H - MB - (y - self.y.0) / (self.y.1 - self.y.0) * (H - MT - MB)
    }

    fn axes(&mut self, xlabel: &str, ylabel: &str) {
        let (x0, x1, y0, y1) = (ML, W - MR, H - MB, MT);
        let mut grid = String::new();
        let mut lines = String::new();
        let mut labels = String::new();
        for t in ticks(self.x.0, self.x.1) {
            let x = self.px(t);
            let _ = write!(grid, "M{x:.0} {y0}v4");
            let _ = write!(
                labels,
                r#"<text class="tm" x="{x:.0}" y="{:.0}">{}</text>"#,
                y0 + 15.0,
                short(t)
            );
        }
        // a time line of events has no y scale
        let yt = if ylabel.is_empty() {
            Vec::new()
        } else {
            ticks(self.y.0, self.y.1)
        };
        for t in yt {
            let y = self.py(t);
            let _ = write!(grid, "M{x0} {y:.0}h-4");
            let _ = write!(
                labels,
                r#"<text class="te" x="{:.0}" y="{:.0}">{}</text>"#,
                x0 - 6.0,
                y + 4.0,
                short(t)
            );
            let _ = write!(lines, "M{x0} {y:.0}H{x1}");
        }
        let _ = write!(
            self.body,
            r#"<path class="grid" d="{lines}"/><path class="axis" d="M{x0} {y1}V{y0}H{x1}{grid}"/>{labels}<text class="atitle tm" x="{:.0}" y="{:.0}">{}</text><text class="atitle tm" transform="translate(14 {:.0}) rotate(-90)">{}</text>"#,
            (x0 + x1) / 2.0,
            H - 6.0,
            esc(xlabel),
            (y0 + y1) / 2.0,
            esc(ylabel)
        );
    }

    /// Points as filled circles (`open` = open squares), one path.
    pub fn dots(&mut self, pts: &[(f64, f64)], open: bool, legend: Option<&str>) {
        let mut d = String::with_capacity(pts.len() * 16);
        for &(x, y) in pts {
            let (x, y) = (self.px(x), self.py(y));
            if open {
                let _ = write!(d, "M{:.0} {:.0}h6v6h-6z", x - 3.0, y - 3.0);
            } else {
                let _ = write!(d, "M{x:.0} {y:.0}h0");
            }
        }
        let class = if open { "sq" } else { "dot" };
        let _ = write!(
            self.body,
            r#"<path class="{class}" data-n="{}" d="{d}"/>"#,
            pts.len()
        );
        self.points += pts.len();
        if let Some(l) = legend {
            self.legend.push((l.to_owned(), class));
        }
    }

    /// Vertical ticks at each x (a time line of events).
    pub fn events(&mut self, xs: &[f64]) {
        let (top, bottom) = (self.py(self.y.1 * 0.8 + self.y.0 * 0.2), self.py(self.y.0));
        let mut d = String::with_capacity(xs.len() * 14);
        for &x in xs {
            let _ = write!(d, "M{:.0} {bottom:.0}V{top:.0}", self.px(x));
        }
        let _ = write!(
            self.body,
            r#"<path class="ev" data-n="{}" d="{d}"/>"#,
            xs.len()
        );
        self.points += xs.len();
    }

    /// Bars: (left, right, height).
    pub fn bars(&mut self, bins: &[(f64, f64, f64)], points: usize) {
        let mut d = String::new();
        let base = self.py(self.y.0);
        for &(l, r, h) in bins.iter().filter(|b| b.2 > 0.0) {
            let (x0, x1, y) = (self.px(l), self.px(r), self.py(h));
            let _ = write!(
                d,
                "M{:.0} {base:.0}V{y:.0}H{:.0}V{base:.0}z",
                x0 + 0.5,
                (x1 - 0.5).max(x0 + 1.0)
            );
        }
        let _ = write!(
            self.body,
            r#"<path class="bar" data-n="{}" d="{d}"/>"#,
            bins.len()
        );
        self.points += points;
    }

    /// A polyline through the points (`dashed` for a reference line).
    pub fn line(&mut self, pts: &[(f64, f64)], dashed: bool, legend: Option<&str>, count: bool) {
        let mut d = String::new();
        for (i, &(x, y)) in pts.iter().enumerate() {
            let _ = write!(
                d,
                "{}{:.0} {:.0}",
                if i == 0 { 'M' } else { 'L' },
                self.px(x),
                self.py(y.min(self.y.1))
            );
        }
        let class = if dashed { "ref" } else { "ln" };
        let _ = write!(
            self.body,
            r#"<path class="{class}" data-n="{}" d="{d}"/>"#,
            pts.len()
        );
        if count {
            self.points += pts.len();
            self.dots(pts, false, None);
            self.points -= pts.len();
        }
        if let Some(l) = legend {
            self.legend.push((l.to_owned(), class));
        }
    }

    /// A marked vertical line with a label (the fitted period) at the top,
    /// or at the bottom (`low`).
    pub fn vline(&mut self, x: f64, label: &str, low: bool) {
        let x = self.px(x);
        let _ = write!(
            self.body,
            r#"<path class="mark" data-mark="1" d="M{x:.0} {MT}V{:.0}"/><text class="mark-t{}" x="{:.0}" y="{:.0}">{}</text>"#,
            H - MB,
            // right of the line, or left of it in the right part of the chart
            if x > W * 0.6 { " te" } else { "" },
            if x > W * 0.6 { x - 4.0 } else { x + 4.0 },
            if low { H - MB - 6.0 } else { MT + 10.0 },
            esc(label)
        );
    }

    /// The finished `<figure>`.
    #[must_use]
    pub fn finish(self) -> String {
        let mut legend = String::new();
        if !self.legend.is_empty() {
            let wmax = self
                .legend
                .iter()
                .map(|(l, _)| l.chars().count())
                .max()
                .unwrap_or(0) as f64;
            let _ = write!(
                legend,
                r#"<rect class="lgbox" x="{:.0}" y="{:.0}" width="{:.0}" height="{:.0}"/>"#,
                ML + 4.0,
                MT - 2.0,
                wmax * 6.2 + 26.0,
                14.0 * self.legend.len() as f64 + 4.0
            );
        }
        for (i, (l, class)) in self.legend.iter().enumerate() {
            let y = MT + 6.0 + 14.0 * i as f64;
            let x = ML + 14.0;
            let mark = match *class {
                "sq" => format!(
                    r#"<path class="sq" d="M{:.0} {:.0}h6v6h-6z"/>"#,
                    x - 3.0,
                    y - 3.0
                ),
                "dot" => format!(r#"<path class="dot" d="M{x:.0} {y:.0}h0"/>"#),
                c => format!(r#"<path class="{c}" d="M{:.0} {y:.0}h16"/>"#, x - 8.0),
            };
            let _ = write!(
                legend,
                r#"{mark}<text x="{:.0}" y="{:.0}">{}</text>"#,
                x + 12.0,
                y + 4.0,
                esc(l)
            );
        }
        format!(
            r#"<figure class="chart"><figcaption>{t}</figcaption><svg viewBox="0 0 {W} {H}" role="img" aria-label="{t}" data-chart="{k}" data-points="{n}">{b}{legend}</svg></figure>"#,
            t = esc(&self.title),
            k = self.kind,
            n = self.points,
            b = self.body
        )
    }
}

/// Horizontal bars of alerts per detector, split by severity: hatched for
/// high, dotted for medium, plain for low, each segment labelled with its
/// count (readable without colour).
#[must_use]
pub fn severity_bars(rows: &[(String, [usize; 3])], sev_names: [&str; 3], title: &str) -> String {
    let h = 28.0 * rows.len() as f64 + 40.0;
    let max = rows
        .iter()
        .map(|(_, c)| c.iter().sum::<usize>())
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let mut b = String::new();
    let (x0, x1) = (130.0, W - 20.0);
    for (i, (name, counts)) in rows.iter().enumerate() {
        let y = 10.0 + 28.0 * i as f64;
        let _ = write!(
            b,
            r#"<text class="te" x="{:.0}" y="{:.0}">{}</text>"#,
            x0 - 6.0,
            y + 14.0,
            esc(name)
        );
        let mut x = x0;
        for (s, &c) in counts.iter().enumerate() {
            if c == 0 {
                continue;
            }
            let w = c as f64 / max * (x1 - x0);
            let _ = write!(
                b,
                r#"<rect class="sev{}" x="{x:.0}" y="{y:.0}" width="{w:.0}" height="20"/>"#,
                s + 1
            );
            if w > 18.0 {
                let _ = write!(
                    b,
                    r#"<text class="seg" x="{:.0}" y="{:.0}" text-anchor="middle">{c}</text>"#,
                    x + w / 2.0,
                    y + 14.0
                );
            }
            x += w;
        }
    }
    let ly = h - 14.0;
    for (s, n) in sev_names.iter().enumerate() {
        let x = x0 + 130.0 * s as f64;
        let _ = write!(
            b,
            r#"<rect class="sev{}" x="{x:.0}" y="{:.0}" width="14" height="14"/><text x="{:.0}" y="{:.0}">{}</text>"#,
            s + 1,
            ly - 11.0,
            x + 18.0,
            ly,
            esc(n)
        );
    }
    format!(
        r#"<figure class="chart"><figcaption>{t}</figcaption><svg viewBox="0 0 {W} {h:.0}" role="img" aria-label="{t}" data-chart="severity-bars" data-points="{}">{b}</svg></figure>"#,
        rows.len(),
        t = esc(title)
    )
}

/// Patterns the severity fills use (one hidden SVG per page).
pub const DEFS: &str = r##"<svg class="defs" width="0" height="0" aria-hidden="true"><defs><pattern id="p-sev1" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#c62828"/><path d="M0 0V6" stroke="#000" stroke-width="3"/></pattern><pattern id="p-sev2" width="6" height="6" patternUnits="userSpaceOnUse"><rect width="6" height="6" fill="#f9a825"/><circle cx="3" cy="3" r="1.4" fill="#000"/></pattern></defs></svg>"##;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round() {
        assert_eq!(ticks(0.0, 100.0), vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        assert_eq!(short(12_000.0), "12k");
        assert_eq!(short(2.5), "2.5");
    }

    #[test]
    fn chart_counts_points_and_escapes() {
        let mut p = Plot::new("t", "<x>", (0.0, 10.0), (0.0, 1.0), "a&b", "y");
        p.dots(&[(1.0, 0.5), (2.0, 0.5)], false, Some("\"q\""));
        let s = p.finish();
        assert!(s.contains(r#"data-points="2""#));
        assert!(s.contains("&lt;x&gt;") && s.contains("a&amp;b") && s.contains("&quot;q&quot;"));
        assert!(!s.contains("<x>"));
    }
}
