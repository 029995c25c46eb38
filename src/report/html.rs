//! The page: overview, one section per alert with its charts (the most
//! severe alerts, up to `--max-sections`; the rest summarised by host and
//! detector), the flows the alerts link to. Plain HTML with inline CSS and SVG; a few lines of
//! script only sort the overview table (without script it stays in time
//! order).

use super::i18n::{self, Lang};
use super::svg::{self, Plot};
use super::{Alert, Flow, FlowIndex, Ns, Options, Report, entropy_bits, parse_ts, secs, subdomain};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

/// Flows listed under one alert at most (the rest are counted).
const FLOWS_LISTED: usize = 50;
/// Rows of the alert table (and lines of the summary) per chunk: each
/// chunk is laid out only when on screen (`content-visibility`), which
/// keeps a page of 10,000 rows quick to open.
const CHUNK: usize = 250;
/// Histogram bins of the interval chart.
const BINS: usize = 24;

/// HTML-escapes text for element content and quoted attributes.
#[must_use]
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => o.push('\u{fffd}'),
            c => o.push(c),
        }
    }
    o
}

const CSS: &str = r"
:root{--fg:#111;--muted:#555;--line:#bbb}
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI','Hiragino Sans','Noto Sans CJK JP','Yu Gothic','IPAGothic',sans-serif;color:var(--fg);margin:0 auto;max-width:1100px;padding:0 16px 40px}
h1{font-size:22px;margin:18px 0 4px}h2{font-size:18px;margin:0 0 6px}h3{font-size:15px;margin:12px 0 4px}
.meta{color:var(--muted);margin:0 0 10px}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border-bottom:1px solid var(--line);padding:3px 6px;text-align:left;vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
th{background:#eee}
html[data-js] table.sortable th{cursor:pointer}
html[data-js] table.sortable th::after{content:' \2195';color:var(--muted)}
.wrap{overflow-wrap:anywhere;word-break:break-word}
section.alert{border:1px solid var(--line);border-left:6px solid #777;padding:10px 14px;margin:14px 0;content-visibility:auto;contain-intrinsic-size:auto 900px}
section.sev1{border-left:6px double #000}section.sev2{border-left:6px dashed #333}section.sev3{border-left:6px dotted #666}
.sev{display:inline-block;padding:0 6px;border-radius:3px;font-weight:600;white-space:nowrap}
.sev.s1{background:#c62828;color:#fff;border:2px solid #000}
.sev.s2{background:#fff3c4;color:#000;border:2px dashed #000}
.sev.s3{background:#fff;color:#000;border:2px dotted #000}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:6px 0}
dl.kv dt{color:var(--muted)}dl.kv dd{margin:0}
.charts{display:flex;flex-wrap:wrap;gap:8px}
figure.chart{margin:4px 0;flex:1 1 430px;max-width:560px}
figure.chart figcaption{font-size:12px;font-weight:600}
figure.chart svg{width:100%;height:auto;font-size:10px;font-family:inherit}
svg .axis{fill:none;stroke:#000;stroke-width:1}
svg .grid{stroke:#ddd;stroke-width:1}
svg .atitle{font-size:11px;fill:#333}
svg .tm{text-anchor:middle}svg .te{text-anchor:end}
svg .dot{stroke:#1565c0;stroke-width:6;stroke-linecap:round;fill:none}
svg .sq{stroke:#000;stroke-width:1.2;fill:#fff}
svg .ev{stroke:#1565c0;stroke-width:1.5}
svg .bar{fill:#90caf9;stroke:#0d47a1;stroke-width:1}
svg .ln{fill:none;stroke:#1565c0;stroke-width:2}
svg .ref{fill:none;stroke:#000;stroke-width:1.5;stroke-dasharray:6 4}
svg .mark{stroke:#b71c1c;stroke-width:2;stroke-dasharray:2 3}
svg .mark-t{fill:#b71c1c;font-weight:600}
svg .lgbox{fill:#fff;fill-opacity:.85;stroke:#ccc}
svg .seg{fill:#fff;font-weight:700;paint-order:stroke;stroke:#000;stroke-width:2px}
svg rect.sev1{fill:url(#p-sev1);stroke:#000}svg rect.sev2{fill:url(#p-sev2);stroke:#000}svg rect.sev3{fill:#fff;stroke:#000}
svg.defs{position:absolute}
.note{color:var(--muted);font-style:italic}
ul.ev{margin:4px 0 8px 18px;padding:0}
ul.flows{columns:2 26em;font-size:12px;margin:4px 0;padding-left:18px}
details pre{white-space:pre-wrap;font-size:12px;background:#f6f6f6;padding:6px}
nav.toc a{margin-right:12px}
div.chunk{content-visibility:auto;contain-intrinsic-size:auto 6000px}
ul.groups{content-visibility:auto;contain-intrinsic-size:auto 5000px}
table.alerts{table-layout:fixed}
table.alerts td{overflow-wrap:anywhere}
table.alerts td:nth-child(7){text-align:right;font-variant-numeric:tabular-nums}
td.s1,td.s2,td.s3{font-weight:600;white-space:nowrap}
td.s1{background:#c62828;color:#fff;outline:2px solid #000;outline-offset:-3px}
td.s2{background:#fff3c4;outline:2px dashed #000;outline-offset:-3px}
td.s3{outline:2px dotted #000;outline-offset:-3px}
p.capped{border:2px solid #000;padding:6px 10px;background:#fffde7}
ul.groups{list-style:none;padding:0;margin:4px 0;font-size:13px;overflow-wrap:anywhere}
ul.groups li{padding:1px 4px;border-bottom:1px solid #e4e4e4}
ul.groups li:target{background:#fffde7;outline:2px solid #000}
@media print{
 body{max-width:none;padding:0;font-size:11px}
 div.chunk,ul.groups{content-visibility:visible}
 section.alert{content-visibility:visible;break-inside:avoid;page-break-inside:avoid}
 nav.toc,.noprint,a.back{display:none}
 a{color:inherit;text-decoration:none}
 details{display:none}
 figure.chart{break-inside:avoid}
}
";

/// Sorts the overview table by the clicked column (cells carry `data-v`,
/// else their text sorts); a table with `data-group="C"` sorts the rows of
/// every `table.C` (the chunks of the alert table) as one and deals them
/// back, as many to each as it had; `#sort=N` (`#sort=N-`: descending) in
/// the address sorts by column N on load; marks `<html data-js>` once set
/// up (the sort cues show only then).
const JS: &str = r"(function(){var d=document;
var ts=d.querySelectorAll('table.sortable');for(var k=0;k<ts.length;k++)(function(t){var hs=t.tHead.rows[0].cells,g=t.getAttribute('data-group'),
bs=g?[].slice.call(d.querySelectorAll('table.'+g+'>tbody')):[t.tBodies[0]];
for(var i=0;i<hs.length;i++)(function(h,i){h.tabIndex=0;function go(){var r=[],n=[],dir=h.getAttribute('data-dir')==='a'?-1:1;
bs.forEach(function(b){n.push(b.rows.length);r.push.apply(r,[].slice.call(b.rows))});
h.setAttribute('data-dir',dir>0?'a':'d');r.sort(function(x,y){var p=x.cells[i].getAttribute('data-v')||x.cells[i].textContent,q=y.cells[i].getAttribute('data-v')||y.cells[i].textContent,
a=parseFloat(p),c=parseFloat(q);return dir*(isNaN(a)||isNaN(c)?p.localeCompare(q):a-c)});
var p=0;bs.forEach(function(b,j){var f=d.createDocumentFragment();for(var e=p+n[j];p<e;p++)f.appendChild(r[p]);b.appendChild(f)})}
h.addEventListener('click',go);h.addEventListener('keydown',function(e){if(e.key==='Enter')go()})})(hs[i],i)})(ts[k]);
var m=/^#sort=(\d+)(-?)$/.exec(location.hash),t=d.getElementById('alerts'),h=m&&t&&t.tHead.rows[0].cells[+m[1]];if(h){h.click();if(m[2])h.click()}
d.documentElement.setAttribute('data-js','1')})();";

fn sev_shape(s: u8) -> &'static str {
    match s {
        1 => "▲",
        2 => "◆",
        _ => "●",
    }
}

fn sev_badge(s: u8, lang: Lang) -> String {
    format!(
        r#"<span class="sev s{s}">{} {}</span>"#,
        sev_shape(s),
        esc(lang.severity(s))
    )
}

fn ev_num(a: &Alert, k: &str) -> Option<f64> {
    a.evidence.get(k).and_then(Value::as_f64)
}

fn ev_series(v: Option<&Value>, k: &str) -> Vec<f64> {
    v.and_then(|v| v.get(k))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default()
}

/// Three parallel arrays of a series object zipped (missing values 0).
fn ev_triples(v: Option<&Value>, keys: [&str; 3]) -> Vec<(f64, f64, f64)> {
    let [t, b, c] = keys.map(|k| ev_series(v, k));
    let at = |x: &[f64], i: usize| x.get(i).copied().unwrap_or(0.0);
    (0..t.len()).map(|i| (t[i], at(&b, i), at(&c, i))).collect()
}

fn ev_time(a: &Alert, k: &str) -> Option<Ns> {
    a.evidence.get(k).and_then(Value::as_str).and_then(parse_ts)
}

/// (bytes the alert's host sent, bytes it received) on a flow.
fn oriented(f: &Flow, host: &str) -> (u64, u64) {
    if f.src_ip == host {
        (f.payload[0], f.payload[1])
    } else {
        (f.payload[1], f.payload[0])
    }
}

struct Ctx<'a> {
    r: &'a Report,
    lang: Lang,
    idx: FlowIndex,
    /// Flows some alert links to.
    linked: BTreeSet<usize>,
}

/// Which alerts get a full section, and the summary of the others.
struct Plan {
    /// By alert index: a full section.
    detailed: Vec<bool>,
    /// Alerts without a section by (host, detector), worst first.
    groups: Vec<Vec<usize>>,
    /// By alert index: its group (alerts without a section).
    group_of: HashMap<usize, usize>,
}

/// The `max` most severe alerts (severity, then score, then time) get a
/// section; 0: every alert.
fn plan(r: &Report, max: usize) -> Plan {
    let a = &r.alerts;
    let n = a.len();
    let mut rank: Vec<usize> = (0..n).collect();
    rank.sort_by(|&x, &y| {
        a[x].severity
            .cmp(&a[y].severity)
            .then(a[y].score.total_cmp(&a[x].score))
            .then((a[x].ts, x).cmp(&(a[y].ts, y)))
    });
    let cap = if max == 0 { n } else { max.min(n) };
    let mut detailed = vec![false; n];
    for &i in &rank[..cap] {
        detailed[i] = true;
    }
    // groups in rank order: the first member is the group's worst
    let mut key: HashMap<(&str, &str), usize> = HashMap::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut group_of = HashMap::new();
    for &i in &rank[cap..] {
        let k = (a[i].src_ip.as_str(), a[i].detector.as_str());
        let g = *key.entry(k).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(i);
        group_of.insert(i, g);
    }
    Plan {
        detailed,
        groups,
        group_of,
    }
}

/// The whole page.
pub fn page(r: &Report, opts: &Options) -> String {
    let lang = opts.lang;
    let l = lang.labels();
    let mut cx = Ctx {
        r,
        lang,
        idx: r.index(),
        linked: BTreeSet::new(),
    };
    let mut order: Vec<usize> = (0..r.alerts.len()).collect();
    order.sort_by_key(|&i| (r.alerts[i].ts, i));
    let plan = plan(r, opts.max_sections);
    let sections = plan.detailed.iter().filter(|d| **d).count();
    let mut o = String::with_capacity(4096 + sections * 6144 + r.alerts.len() * 400);
    let _ = write!(
        o,
        r#"<!DOCTYPE html><html lang="{}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><meta name="generator" content="deguchi report"><title>{}</title><style>{CSS}</style></head><body>{}"#,
        l.html_lang,
        esc(l.title),
        svg::DEFS
    );
    let _ = write!(
        o,
        r#"<header><h1>{}</h1><p class="meta">{}: <span class="wrap">{}</span></p>"#,
        esc(l.title),
        esc(l.source),
        esc(&r.source)
    );
    if !r.filter.is_empty() {
        let _ = write!(
            o,
            r#"<p class="meta">{}: <code data-filter="1">{}</code></p>"#,
            esc(l.filter),
            esc(&r.filter)
        );
    }
    o.push_str("</header>");
    overview(&mut o, r, lang, &order, &plan);
    let dets = ["beacon", "exfil", "dns_tunnel"];
    for pass in 0..2 {
        for &i in &order {
            let a = &r.alerts[i];
            let known = dets.contains(&a.detector.as_str());
            if (pass == 0) == known && plan.detailed[i] {
                section(&mut o, &mut cx, i);
            }
        }
    }
    groups(&mut o, r, lang, &plan);
    flows_appendix(&mut o, &cx);
    let _ = writeln!(o, "<script>{JS}</script></body></html>");
    o
}

fn overview(o: &mut String, r: &Report, lang: Lang, order: &[usize], plan: &Plan) {
    let l = lang.labels();
    let _ = write!(
        o,
        r#"<section id="overview"><h2>{}</h2><dl class="kv">"#,
        esc(l.overview)
    );
    let span = r.span();
    let span_txt = match span {
        Some((a, b)) => format!(
            "{} – {} ({})",
            lang.time(Some(a)),
            lang.time(Some(b)),
            lang.dur(secs(b.saturating_sub(a)))
        ),
        None => "-".into(),
    };
    let hosts = r.hosts();
    let host_txt: Vec<String> = hosts
        .iter()
        .take(20)
        .map(|(h, n)| format!("{} ({})", esc(h), lang.count(*n as u64)))
        .collect();
    let more = if hosts.len() > 20 {
        format!(" … +{}", lang.int((hosts.len() - 20) as u64))
    } else {
        String::new()
    };
    let _ = write!(
        o,
        r#"<dt>{}</dt><dd>{}</dd><dt>{}</dt><dd data-hosts="{}">{}{}{more}</dd><dt>{}</dt><dd data-alerts="{}">{}</dd><dt>{}</dt><dd>{}</dd>"#,
        esc(l.span),
        esc(&span_txt),
        esc(l.hosts),
        hosts.len(),
        lang.count(hosts.len() as u64),
        if host_txt.is_empty() {
            String::new()
        } else {
            format!(": {}", host_txt.join(", "))
        },
        esc(l.alerts),
        r.alerts.len(),
        lang.count(r.alerts.len() as u64),
        esc(l.flows),
        lang.count(r.flows.len() as u64),
    );
    if r.skipped > 0 {
        let _ = write!(
            o,
            "<dt>{}</dt><dd>{}</dd>",
            esc(l.skipped),
            lang.int(r.skipped as u64)
        );
    }
    o.push_str("</dl>");
    // counts by detector and severity
    let mut rows: Vec<(String, [usize; 3])> = Vec::new();
    let mut dets: Vec<&str> = r.alerts.iter().map(|a| a.detector.as_str()).collect();
    dets.sort_unstable();
    dets.dedup();
    for d in dets {
        let mut c = [0usize; 3];
        for a in r.alerts.iter().filter(|a| a.detector == d) {
            c[usize::from(a.severity.clamp(1, 3) - 1)] += 1;
        }
        rows.push((lang.detector(d), c));
    }
    let _ = write!(
        o,
        r#"<table class="counts"><thead><tr><th>{}</th><th class="n">{}</th><th class="n">{}</th><th class="n">{}</th></tr></thead><tbody>"#,
        esc(l.detector),
        sev_badge(1, lang),
        sev_badge(2, lang),
        sev_badge(3, lang)
    );
    for (d, c) in &rows {
        let _ = write!(
            o,
            r#"<tr><td>{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td></tr>"#,
            esc(d),
            c[0],
            c[1],
            c[2]
        );
    }
    o.push_str("</tbody></table>");
    o.push_str(&svg::severity_bars(
        &rows,
        [lang.severity(1), lang.severity(2), lang.severity(3)],
        l.by_detector,
    ));
    // how many alerts have no section, and how to get them
    let without: usize = plan.groups.iter().map(Vec::len).sum();
    if without > 0 {
        let with = r.alerts.len() - without;
        let _ = write!(
            o,
            r##"<p class="capped" id="capped" data-detailed="{with}" data-without="{without}">{} <a href="#rest">↓</a></p>"##,
            esc(&i18n::fill(
                l.capped,
                &[
                    lang.int(with as u64).as_str(),
                    lang.int(without as u64).as_str(),
                    l.groups_title
                ]
            ))
        );
    }
    let cols = format!(
        r#"<colgroup><col style="width:6%"><col style="width:{}%"><col style="width:9%"><col style="width:9%"><col style="width:10%"><col style="width:{}%"><col style="width:7%"><col></colgroup>"#,
        if lang == Lang::Ja { 16 } else { 11 },
        if lang == Lang::Ja { 18 } else { 22 },
    );
    // the alerts table: one light row per alert (severity as a cell class,
    // column styles from the CSS, the end tags HTML lets a parser imply
    // left out; the time column sorts by the rows' time order), fixed layout
    let _ = write!(
        o,
        r#"<h3>{}</h3><p class="meta noprint">{}</p><div class="chunk"><table class="sortable alerts" id="alerts" data-group="alerts">{cols}<thead><tr><th class="n">#</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th class="n">{}</th><th>{}</th></tr></thead><tbody>"#,
        esc(l.alerts),
        esc(l.sort_hint),
        esc(l.time),
        esc(l.severity),
        esc(l.detector),
        esc(l.host),
        esc(l.destination),
        esc(l.score),
        esc(l.signature)
    );
    let sev_txt = [1u8, 2, 3].map(|s| format!("{} {}", sev_shape(s), esc(lang.severity(s))));
    let det_txt: HashMap<&str, String> = r
        .alerts
        .iter()
        .map(|a| (a.detector.as_str(), esc(&lang.detector(&a.detector))))
        .collect();
    for (n, &i) in order.iter().enumerate() {
        if n > 0 && n % CHUNK == 0 {
            let _ = write!(
                o,
                r#"</tbody></table></div><div class="chunk"><table class="alerts">{cols}<tbody>"#
            );
        }
        let a = &r.alerts[i];
        let t = esc(&lang.short_time(a.ts));
        let s = a.severity.clamp(1, 3);
        let score = format!("{:.2}", a.score);
        let exact = if score.parse::<f64>().ok() == Some(a.score) {
            String::new()
        } else {
            format!(r#" data-v="{}""#, a.score)
        };
        let link = match plan.group_of.get(&i) {
            Some(g) => format!("g-{g}"),
            None => format!("a-{i}"),
        };
        let _ = write!(
            o,
            r##"<tr><td class="n"><a href="#{link}">{}</a><td data-v="{}">{t}<td class="s{s}" data-v="{s}">{}<td>{}<td>{}<td>{}<td{exact}>{score}<td>{}"##,
            n + 1,
            n + 1,
            sev_txt[usize::from(s - 1)],
            det_txt[a.detector.as_str()],
            esc(&a.src_ip),
            esc(&i18n::dest_label(a)),
            esc(&i18n::signature(a, lang))
        );
    }
    o.push_str("</tbody></table></div></section>");
}

fn section(o: &mut String, cx: &mut Ctx<'_>, i: usize) {
    let (r, lang) = (cx.r, cx.lang);
    let l = lang.labels();
    let a = &r.alerts[i];
    let flows = r.flows_of(&cx.idx, a);
    let _ = write!(
        o,
        r#"<section class="alert sev{s} det-{d}" id="a-{i}" data-detector="{d}" data-severity="{s}"><h2>{}. {} {}</h2><p class="wrap"><strong>{}</strong></p><dl class="kv"><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd class="wrap">{} ({} {})</dd><dt>{}</dt><dd>{:.2}</dd></dl>"#,
        i + 1,
        sev_badge(a.severity, lang),
        esc(&lang.detector(&a.detector)),
        esc(&i18n::signature(a, lang)),
        esc(l.time),
        esc(&lang.time(a.ts)),
        esc(l.host),
        esc(&a.src_ip),
        esc(l.destination),
        esc(&i18n::dest_label(a)),
        esc(&a.dest_ip),
        esc(&a.proto),
        esc(l.score),
        a.score,
        s = a.severity,
        d = esc(&a.detector),
    );
    let sentences = i18n::sentences(a, lang);
    if !sentences.is_empty() {
        let _ = write!(o, r#"<h3>{}</h3><ul class="ev">"#, esc(l.evidence));
        for s in &sentences {
            let _ = write!(o, r#"<li class="wrap">{}</li>"#, esc(s));
        }
        o.push_str("</ul>");
    }
    o.push_str(r#"<div class="charts">"#);
    match a.detector.as_str() {
        "beacon" => beacon_charts(o, cx, a, &flows),
        "exfil" => exfil_charts(o, cx, a, &flows),
        "dns_tunnel" => dns_charts(o, cx, a, &flows),
        _ => {}
    }
    o.push_str("</div>");
    flow_links(o, cx, &flows);
    // the series are drawn above; the rest as recorded
    let mut shown = a.evidence.clone();
    for k in ["beat_series", "out_curve", "query_series"] {
        if let Some(v) = shown.get_mut(k) {
            *v = Value::String(format!("({})", l.drawn_above));
        }
    }
    let raw = serde_json::to_string(&shown).unwrap_or_default();
    let _ = write!(
        o,
        r##"<details><summary>{}</summary><pre class="wrap">{}</pre></details><p><a class="back" href="#overview">↑ {}</a></p></section>"##,
        esc(l.raw_evidence),
        esc(&raw),
        esc(l.back)
    );
}

/// The alerts without a section: one line of text per (host, detector),
/// worst first, no charts (a line is one element: light to load).
fn groups(o: &mut String, r: &Report, lang: Lang, plan: &Plan) {
    if plan.groups.is_empty() {
        return;
    }
    let l = lang.labels();
    let _ = write!(
        o,
        r#"<section id="rest"><h2>{}</h2><p class="meta">{}</p><ul class="groups">"#,
        esc(l.groups_title),
        esc(&[
            l.host,
            l.detector,
            l.group_alerts,
            l.max_score,
            l.first_last,
            l.destination
        ]
        .join(" · ")),
    );
    for (g, members) in plan.groups.iter().enumerate() {
        if g > 0 && g % CHUNK == 0 {
            o.push_str(r#"</ul><ul class="groups">"#);
        }
        let first = &r.alerts[members[0]];
        let mut sev = [0usize; 3];
        let mut dests: Vec<String> = Vec::new();
        let (mut lo, mut hi) = (None::<Ns>, None::<Ns>);
        let mut top = f64::NEG_INFINITY;
        for &i in members {
            let a = &r.alerts[i];
            top = top.max(a.score);
            sev[usize::from(a.severity.clamp(1, 3) - 1)] += 1;
            if let Some(t) = a.ts {
                lo = Some(lo.map_or(t, |x| x.min(t)));
                hi = Some(hi.map_or(t, |x| x.max(t)));
            }
            if dests.len() <= 3 {
                let d = i18n::dest_label(a);
                if !dests.contains(&d) {
                    dests.push(d);
                }
            }
        }
        let sev_txt: Vec<String> = (1u8..=3)
            .filter(|s| sev[usize::from(s - 1)] > 0)
            .map(|s| format!("{}{}", sev_shape(s), sev[usize::from(s - 1)]))
            .collect();
        let more = dests.len() > 3;
        dests.truncate(3);
        let when = if lo == hi {
            lang.short_time(lo)
        } else {
            format!("{} – {}", lang.short_time(lo), lang.short_time(hi))
        };
        let _ = write!(
            o,
            r#"<li id="g-{g}"><b>{}</b> · {} · {} ({}) · {top:.2} · {} · {}{}"#,
            esc(&first.src_ip),
            esc(&lang.detector(&first.detector)),
            members.len(),
            sev_txt.join(" "),
            esc(&when),
            esc(&dests.join(", ")),
            if more { ", …" } else { "" }
        );
    }
    o.push_str("</ul></section>");
}

fn flow_links(o: &mut String, cx: &mut Ctx<'_>, flows: &[usize]) {
    let (r, lang) = (cx.r, cx.lang);
    let l = lang.labels();
    let _ = write!(
        o,
        r#"<div class="flowsec"><h3>{}</h3>"#,
        esc(l.related_flows)
    );
    if r.flows.is_empty() || flows.is_empty() {
        let note = if r.flows.is_empty() {
            l.no_flows
        } else {
            l.none
        };
        let _ = write!(o, r#"<p class="note">{}</p></div>"#, esc(note));
        return;
    }
    o.push_str(r#"<ul class="flows">"#);
    for &f in flows.iter().take(FLOWS_LISTED) {
        cx.linked.insert(f);
        let fl = &r.flows[f];
        let _ = write!(
            o,
            r##"<li><a class="flow-link" href="#f-{f}">{}</a> {} → {}, {} / {}</li>"##,
            esc(&lang.short_time(fl.start)),
            esc(&fl.src_ip),
            esc(&fl.dest_ip),
            esc(&lang.bytes(fl.payload[0])),
            esc(&lang.bytes(fl.payload[1]))
        );
    }
    o.push_str("</ul>");
    if flows.len() > FLOWS_LISTED {
        let _ = write!(
            o,
            r#"<p class="note">{} {}</p>"#,
            lang.int((flows.len() - FLOWS_LISTED) as u64),
            esc(l.more_flows)
        );
    }
    o.push_str("</div>");
}

fn flows_appendix(o: &mut String, cx: &Ctx<'_>) {
    if cx.linked.is_empty() {
        return;
    }
    let (r, lang) = (cx.r, cx.lang);
    let l = lang.labels();
    let _ = write!(
        o,
        r#"<section id="flows"><h2>{}</h2><table><thead><tr><th>flow_id</th><th>{}</th><th>src</th><th>dest</th><th>proto</th><th class="n">{}</th><th class="n">{}</th><th class="n">{}</th><th>{}</th></tr></thead><tbody>"#,
        esc(l.flow_list),
        esc(l.flow_start),
        esc(l.bytes_out),
        esc(l.bytes_in),
        esc(l.packets),
        esc(l.names)
    );
    for &f in &cx.linked {
        let fl = &r.flows[f];
        let port = |p: Option<u64>| p.map_or(String::new(), |p| format!(":{p}"));
        let mut names: Vec<&str> = fl.name.iter().map(String::as_str).collect();
        names.extend(fl.queries.iter().map(String::as_str));
        let _ = write!(
            o,
            r#"<tr id="f-{f}" class="flow"><td>{}</td><td>{}</td><td>{}{}</td><td>{}{}</td><td>{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="wrap">{}</td></tr>"#,
            fl.flow_id.map_or(String::new(), |x| x.to_string()),
            esc(&lang.time(fl.start)),
            esc(&fl.src_ip),
            port(fl.src_port),
            esc(&fl.dest_ip),
            port(fl.dest_port),
            esc(&fl.proto),
            lang.int(fl.payload[0]),
            lang.int(fl.payload[1]),
            lang.int(fl.pkts[0] + fl.pkts[1]),
            esc(&names.join(" "))
        );
    }
    o.push_str("</tbody></table></section>");
}

fn no_data(o: &mut String, title: &str, lang: Lang) {
    let _ = write!(
        o,
        r#"<figure class="chart"><figcaption>{}</figcaption><p class="note" data-chart-missing="1">{}</p></figure>"#,
        esc(title),
        esc(lang.labels().no_data)
    );
}

/// Beat times (seconds since the series' first beat) and bytes out/in:
/// from the evidence's `beat_series`, else from the alert's flows.
fn beats_of(a: &Alert, r: &Report, flows: &[usize]) -> Vec<(f64, f64, f64)> {
    let v = ev_triples(a.evidence.get("beat_series"), ["t_s", "out", "in"]);
    if !v.is_empty() {
        return v;
    }
    let mut v: Vec<(Ns, f64, f64)> = flows
        .iter()
        .filter_map(|&f| {
            let fl = &r.flows[f];
            let (o, i) = oriented(fl, &a.src_ip);
            fl.start.map(|s| (s, o as f64, i as f64))
        })
        .collect();
    v.sort_by_key(|x| x.0);
    let t0 = ev_time(a, "first_seen")
        .or(v.first().map(|x| x.0))
        .unwrap_or(0);
    v.into_iter()
        .map(|(s, o, i)| (secs(s.saturating_sub(t0)).max(0.0), o, i))
        .collect()
}

fn beacon_charts(o: &mut String, cx: &Ctx<'_>, a: &Alert, flows: &[usize]) {
    let (lang, l) = (cx.lang, cx.lang.labels());
    let ja = lang == Lang::Ja;
    let beats = beats_of(a, cx.r, flows);
    if beats.is_empty() {
        no_data(o, l.beats_timeline, lang);
        return;
    }
    let tmax = beats.iter().map(|b| b.0).fold(0.0, f64::max);
    let (div, unit) = svg::time_unit(tmax, ja);
    let xs: Vec<f64> = beats.iter().map(|b| b.0 / div).collect();
    let mut p = Plot::new(
        "beacon-timeline",
        l.beats_timeline,
        (0.0, (tmax / div).max(1e-3) * 1.02),
        (0.0, 1.0),
        &format!("{} ({unit})", l.time_axis),
        "",
    );
    p.events(&xs);
    o.push_str(&p.finish());

    // intervals
    let iv: Vec<f64> = beats.windows(2).map(|w| w[1].0 - w[0].0).collect();
    let period = ev_num(a, "period_s").unwrap_or(0.0);
    if iv.is_empty() {
        no_data(o, l.interval_hist, lang);
    } else {
        let hi = iv.iter().copied().fold(period, f64::max).max(1e-3) * 1.05;
        let (div, unit) = svg::time_unit(hi, ja);
        let w = hi / BINS as f64;
        let mut counts = [0usize; BINS];
        for x in &iv {
            counts[((x / w) as usize).min(BINS - 1)] += 1;
        }
        let bins: Vec<(f64, f64, f64)> = counts
            .iter()
            .enumerate()
            .map(|(k, &c)| (k as f64 * w / div, (k + 1) as f64 * w / div, c as f64))
            .collect();
        let ymax = counts.iter().copied().max().unwrap_or(1) as f64;
        let axis = if ja {
            format!("間隔（{unit}）")
        } else {
            format!("interval ({unit})")
        };
        let mut p = Plot::new(
            "beacon-intervals",
            l.interval_hist,
            (0.0, hi / div),
            (0.0, ymax * 1.15),
            &axis,
            l.count,
        );
        p.bars(&bins, iv.len());
        if period > 0.0 {
            p.vline(
                period / div,
                &format!("{} {}", l.period, lang.dur(period)),
                false,
            );
        }
        o.push_str(&p.finish());
    }

    // sizes per beat
    let out: Vec<(f64, f64)> = beats
        .iter()
        .enumerate()
        .map(|(k, b)| ((k + 1) as f64, b.1))
        .collect();
    let inb: Vec<(f64, f64)> = beats
        .iter()
        .enumerate()
        .map(|(k, b)| ((k + 1) as f64, b.2))
        .collect();
    let ymax = beats
        .iter()
        .map(|b| b.1.max(b.2))
        .fold(0.0, f64::max)
        .max(1.0);
    let mut p = Plot::new(
        "beacon-sizes",
        l.sizes,
        (0.5, beats.len() as f64 + 0.5),
        (0.0, ymax * 1.45),
        l.beat_axis,
        l.bytes_axis,
    );
    p.dots(&out, false, Some(l.out_legend));
    p.dots(&inb, true, Some(l.in_legend));
    o.push_str(&p.finish());
}

fn exfil_charts(o: &mut String, cx: &Ctx<'_>, a: &Alert, flows: &[usize]) {
    let (r, lang, l) = (cx.r, cx.lang, cx.lang.labels());
    let ja = lang == Lang::Ja;
    let first = ev_time(a, "first_seen");
    // the curve: from the flows, else the evidence's out_curve, else the
    // first sighting and the alert's total
    let mut fl: Vec<(Ns, Ns, u64)> = flows
        .iter()
        .filter_map(|&f| {
            let x = &r.flows[f];
            let (out, _) = oriented(x, &a.src_ip);
            Some((x.start?, x.end.or(x.start)?, out))
        })
        .filter(|x| x.2 > 0)
        .collect();
    fl.sort_by_key(|x| x.1);
    let curve_ev = a.evidence.get("out_curve");
    // time 0: the first sighting, or an earlier flow's start (the pair is
    // first seen when its first flow is accounted, often at its end)
    let t0 = first
        .into_iter()
        .chain(fl.iter().map(|x| x.0))
        .min()
        .or(a.ts)
        .unwrap_or(0);
    let pts: Vec<(f64, f64)> = if !fl.is_empty() {
        let start = fl.iter().map(|x| x.0).min().unwrap_or(t0);
        let mut cum = 0u64;
        let mut v = vec![(secs(start.saturating_sub(t0)).max(0.0), 0.0)];
        for (_, end, out) in &fl {
            cum = cum.saturating_add(*out);
            v.push((secs(end.saturating_sub(t0)).max(0.0), cum as f64));
        }
        v
    } else if !ev_series(curve_ev, "t_s").is_empty() {
        let t = ev_series(curve_ev, "t_s");
        let b = ev_series(curve_ev, "bytes_out");
        t.into_iter().zip(b).collect()
    } else {
        let total = ev_num(a, "bytes_out_total").unwrap_or(0.0);
        let end = a.ts.map_or(0.0, |t| secs(t.saturating_sub(t0)).max(0.0));
        vec![(0.0, 0.0), (end, total)]
    };
    let tmax = pts.iter().map(|p| p.0).fold(0.0, f64::max).max(1.0);
    let ymax_data = pts.iter().map(|p| p.1).fold(0.0, f64::max).max(1.0);
    let (div, unit) = svg::time_unit(tmax, ja);
    let baseline = curve_ev
        .and_then(|c| c.get("baseline_5m_bytes"))
        .and_then(Value::as_f64)
        .filter(|b| *b > 0.0)
        .or_else(|| {
            (ev_num(a, "window_s") == Some(300.0))
                .then(|| ev_num(a, "baseline_p99_bytes"))
                .flatten()
                .filter(|b| *b > 0.0)
        });
    let ymax = ymax_data * 1.15;
    let mut p = Plot::new(
        "exfil-cumulative",
        l.cumulative,
        (0.0, tmax / div * 1.02),
        (0.0, ymax),
        &format!("{} ({unit})", l.time_axis),
        &format!("{} ({})", l.bytes_axis, l.bytes_out),
    );
    let scaled: Vec<(f64, f64)> = pts.iter().map(|&(t, b)| (t / div, b)).collect();
    p.line(&scaled, false, Some(l.cumulative_legend), true);
    if let Some(b) = baseline {
        // the host's usual 5-minute maximum as a rate from the first sighting
        let rate = b / 300.0;
        let tb = (ymax / rate).min(tmax);
        p.line(
            &[(0.0, 0.0), (tb / div, rate * tb)],
            true,
            Some(l.baseline),
            false,
        );
    }
    p.vline(
        first.map_or(0.0, |f| secs(f.saturating_sub(t0)).max(0.0) / div),
        &format!("{} {}", l.first_sighting, lang.short_time(first)),
        true,
    );
    o.push_str(&p.finish());
    let mut notes = format!(
        r#"<dl class="kv"><dt>{}</dt><dd>{}</dd>"#,
        esc(l.first_sighting),
        esc(&lang.time(first))
    );
    if baseline.is_none() {
        let _ = write!(
            notes,
            "<dt>{}</dt><dd>{}</dd>",
            esc(l.baseline),
            esc(l.baseline_none)
        );
    }
    notes.push_str("</dl>");
    o.push_str(&notes);
}

/// A DNS tunnel's queries as (seconds since the domain's first sighting,
/// data characters, entropy): the evidence's `query_series`, else the names
/// in the alert's flows.
fn queries_of(a: &Alert, r: &Report, flows: &[usize]) -> Vec<(f64, f64, f64)> {
    let v = ev_triples(a.evidence.get("query_series"), ["t_s", "len", "entropy"]);
    if !v.is_empty() {
        return v;
    }
    let domain = a
        .evidence
        .get("domain")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_ascii_lowercase();
    let mut v: Vec<(Ns, &str)> = Vec::new();
    for &f in flows {
        let x = &r.flows[f];
        for q in x.queries.iter().filter(|q| super::under_domain(q, &domain)) {
            v.push((x.start.unwrap_or(0), q));
        }
    }
    v.sort_by_key(|q| q.0);
    let t0 = ev_time(a, "first_seen")
        .or(v.first().map(|q| q.0))
        .unwrap_or(0);
    v.iter()
        .map(|(t, q)| {
            let s = subdomain(q, &domain);
            (
                secs(t.saturating_sub(t0)).max(0.0),
                s.bytes().filter(|b| *b != b'.').count() as f64,
                entropy_bits(s),
            )
        })
        .collect()
}

fn dns_charts(o: &mut String, cx: &Ctx<'_>, a: &Alert, flows: &[usize]) {
    let (r, lang, l) = (cx.r, cx.lang, cx.lang.labels());
    let ja = lang == Lang::Ja;
    let qs = queries_of(a, r, flows);
    let first = ev_time(a, "first_seen");
    // queries over time: the running totals of every alert of this domain
    // and client, and a tick per recorded query
    let t0 = first.or(a.ts).unwrap_or(0);
    let mut totals: Vec<(f64, f64)> = vec![(0.0, 0.0)];
    for b in r.alerts.iter().filter(|b| {
        b.detector == "dns_tunnel"
            && b.evidence.get("domain") == a.evidence.get("domain")
            && b.src_ip == a.src_ip
            && b.ts <= a.ts
    }) {
        if let (Some(t), Some(n)) = (b.ts, ev_num(b, "queries_total")) {
            totals.push((secs(t.saturating_sub(t0)).max(0.0), n));
        }
    }
    totals.sort_by(|x, y| x.0.total_cmp(&y.0));
    let tmax = totals
        .iter()
        .map(|p| p.0)
        .chain(qs.iter().map(|q| q.0))
        .fold(0.0, f64::max)
        .max(1.0);
    let (div, unit) = svg::time_unit(tmax, ja);
    let ymax = totals.iter().map(|p| p.1).fold(0.0, f64::max).max(1.0);
    let mut p = Plot::new(
        "dns-queries",
        l.queries_time,
        (0.0, tmax / div * 1.02),
        (0.0, ymax * 1.15),
        &format!("{} ({unit})", l.time_axis),
        l.queries_axis,
    );
    let scaled: Vec<(f64, f64)> = totals.iter().map(|&(t, n)| (t / div, n)).collect();
    p.line(&scaled, false, Some(l.queries_total), false);
    let ticks: Vec<f64> = qs.iter().map(|q| q.0 / div).collect();
    p.events(&ticks);
    o.push_str(&p.finish());
    if qs.is_empty() {
        no_data(o, l.label_scatter, lang);
        return;
    }
    let sc: Vec<(f64, f64)> = qs.iter().map(|q| (q.1, q.2)).collect();
    let xmax = sc.iter().map(|p| p.0).fold(10.0, f64::max);
    let ymax = sc.iter().map(|p| p.1).fold(4.0, f64::max);
    let mut p = Plot::new(
        "dns-labels",
        l.label_scatter,
        (0.0, xmax * 1.05),
        (0.0, ymax * 1.1),
        l.len_axis,
        l.entropy_axis,
    );
    p.dots(&sc, false, None);
    o.push_str(&p.finish());
}
