//! The report's words in English and Japanese: labels, number and time
//! formats, the evidence in sentences, and the alert's signature text.

use super::{Alert, Ns, SEC, parse_ts};
use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    En,
    Ja,
}

impl std::str::FromStr for Lang {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "en" => Ok(Self::En),
            "ja" | "jp" => Ok(Self::Ja),
            _ => Err(format!("{s:?}: expected en or ja")),
        }
    }
}

/// Fixed labels.
pub struct Labels {
    pub html_lang: &'static str,
    pub title: &'static str,
    pub source: &'static str,
    pub overview: &'static str,
    pub span: &'static str,
    pub hosts: &'static str,
    pub alerts: &'static str,
    pub flows: &'static str,
    pub skipped: &'static str,
    pub by_detector: &'static str,
    pub time: &'static str,
    pub severity: &'static str,
    pub detector: &'static str,
    pub host: &'static str,
    pub destination: &'static str,
    pub score: &'static str,
    pub signature: &'static str,
    pub sort_hint: &'static str,
    pub evidence: &'static str,
    pub raw_evidence: &'static str,
    pub drawn_above: &'static str,
    pub related_flows: &'static str,
    pub no_flows: &'static str,
    pub more_flows: &'static str,
    pub flow_start: &'static str,
    pub bytes_out: &'static str,
    pub bytes_in: &'static str,
    pub packets: &'static str,
    pub names: &'static str,
    pub back: &'static str,
    pub no_data: &'static str,
    pub beats_timeline: &'static str,
    pub interval_hist: &'static str,
    pub sizes: &'static str,
    pub period: &'static str,
    pub cumulative: &'static str,
    pub cumulative_legend: &'static str,
    pub baseline: &'static str,
    pub baseline_none: &'static str,
    pub first_sighting: &'static str,
    pub queries_time: &'static str,
    pub queries_total: &'static str,
    pub label_scatter: &'static str,
    pub count: &'static str,
    pub interval_axis: &'static str,
    pub time_axis: &'static str,
    pub bytes_axis: &'static str,
    pub queries_axis: &'static str,
    pub len_axis: &'static str,
    pub entropy_axis: &'static str,
    pub beat_axis: &'static str,
    pub out_legend: &'static str,
    pub in_legend: &'static str,
    pub flow_list: &'static str,
    pub none: &'static str,
    pub filter: &'static str,
    /// `{0}` alerts with a section, `{1}` without, `{2}` the summary's title.
    pub capped: &'static str,
    pub groups_title: &'static str,
    pub group_alerts: &'static str,
    pub max_score: &'static str,
    pub first_last: &'static str,
}

const EN: Labels = Labels {
    html_lang: "en",
    title: "deguchi alert report",
    source: "Source",
    overview: "Overview",
    span: "Capture span",
    hosts: "Internal hosts with alerts",
    alerts: "Alerts",
    flows: "Flows",
    skipped: "Lines skipped (not an alert or flow)",
    by_detector: "Alerts by detector and severity",
    time: "Time (UTC)",
    severity: "Severity",
    detector: "Detector",
    host: "Host",
    destination: "Destination",
    score: "Score",
    signature: "Signature",
    sort_hint: "Click a column heading to sort.",
    evidence: "Evidence",
    raw_evidence: "Evidence as recorded (JSON)",
    drawn_above: "series drawn above",
    related_flows: "Flows of this alert",
    no_flows: "No flow records given (run with --flows).",
    more_flows: "more flows not listed",
    flow_start: "Start",
    bytes_out: "Bytes out",
    bytes_in: "Bytes in",
    packets: "Packets",
    names: "Names",
    back: "back to the overview",
    no_data: "The alert carries no series for this chart.",
    beats_timeline: "Every beat on a time line",
    interval_hist: "Intervals between beats, with the fitted period",
    sizes: "Bytes out and in per beat",
    period: "period",
    cumulative: "Cumulative bytes out to the destination",
    cumulative_legend: "bytes out so far",
    baseline: "host's usual rate (p99 of 5-min windows)",
    baseline_none: "The host's baseline was not learned yet (no p99 to compare).",
    first_sighting: "Destination first seen",
    queries_time: "Queries over time (a tick per recent encoded name)",
    queries_total: "queries so far (at each alert)",
    label_scatter: "Query names: data length and entropy",
    count: "count",
    interval_axis: "interval (s)",
    time_axis: "time since first seen",
    bytes_axis: "bytes",
    queries_axis: "queries",
    len_axis: "data characters per name",
    entropy_axis: "entropy (bits/char)",
    beat_axis: "beat",
    out_legend: "out (filled circle)",
    in_legend: "in (open square)",
    flow_list: "Flow records linked from alerts",
    none: "none",
    filter: "Filter",
    capped: "Detailed sections (evidence, charts, flows) are given for the {0} most severe alerts (by severity, then score). The other {1} alerts are rows in the table below (their links lead to the summary) and are summarised by host and detector under “{2}”. For a section per alert, run deguchi report again with --max-sections 0 (slow to open beyond a few thousand alerts), or narrow the alerts with --host IP or --detector NAME.",
    groups_title: "Alerts without a detailed section, by host and detector",
    group_alerts: "Alerts",
    max_score: "Highest score",
    first_last: "First – last alert",
};

const JA: Labels = Labels {
    html_lang: "ja",
    title: "deguchi アラートレポート",
    source: "入力",
    overview: "概要",
    span: "キャプチャ期間",
    hosts: "アラートのある内部ホスト",
    alerts: "アラート",
    flows: "フロー",
    skipped: "読み飛ばした行（アラートでもフローでもない）",
    by_detector: "検知器・重大度別のアラート数",
    time: "時刻",
    severity: "重大度",
    detector: "検知器",
    host: "ホスト",
    destination: "宛先",
    score: "スコア",
    signature: "シグネチャ",
    sort_hint: "列見出しをクリックすると並べ替えられます。",
    evidence: "根拠",
    raw_evidence: "記録された根拠（JSON）",
    drawn_above: "系列は上のグラフに表示",
    related_flows: "このアラートのフロー",
    no_flows: "フロー記録が指定されていません（--flows を指定して実行）。",
    more_flows: "件のフローは省略",
    flow_start: "開始",
    bytes_out: "送信バイト",
    bytes_in: "受信バイト",
    packets: "パケット",
    names: "名前",
    back: "概要に戻る",
    no_data: "このアラートにはこのグラフ用の系列がありません。",
    beats_timeline: "全ビートの時系列",
    interval_hist: "ビート間隔の分布と推定周期",
    sizes: "ビートごとの送受信バイト数",
    period: "周期",
    cumulative: "宛先への累積送信バイト数",
    cumulative_legend: "累積送信量",
    baseline: "ホストの通常の送信ペース（5分間窓のp99）",
    baseline_none: "ホストのベースラインはまだ学習されていません（比較できる99パーセンタイルがありません）。",
    first_sighting: "宛先の初観測",
    queries_time: "クエリ数の推移（目盛りは最近のエンコード名1件ごと）",
    queries_total: "累計クエリ数（各アラート時点）",
    label_scatter: "クエリ名：データ長とエントロピー",
    count: "件数",
    interval_axis: "間隔（秒）",
    time_axis: "初観測からの経過時間",
    bytes_axis: "バイト",
    queries_axis: "クエリ数",
    len_axis: "名前あたりのデータ文字数",
    entropy_axis: "エントロピー（ビット/文字）",
    beat_axis: "ビート",
    out_legend: "送信（塗りつぶし円）",
    in_legend: "受信（白抜き四角）",
    flow_list: "アラートから参照されるフロー記録",
    none: "なし",
    filter: "絞り込み",
    capped: "詳細セクション（根拠・グラフ・フロー）は重大度、次にスコアの高い{0}件のアラートのみです。残り{1}件は下の表に1行ずつあり（リンク先は要約）、「{2}」にホスト・検知器ごとにまとめています。全アラートの詳細セクションは deguchi report を --max-sections 0 で再実行（数千件を超えると表示に時間がかかります）するか、--host IP または --detector NAME で絞り込んでください。",
    groups_title: "詳細セクションのないアラート（ホスト・検知器別）",
    group_alerts: "アラート数",
    max_score: "最高スコア",
    first_last: "最初～最後のアラート",
};

impl Lang {
    #[must_use]
    pub fn labels(self) -> &'static Labels {
        match self {
            Self::En => &EN,
            Self::Ja => &JA,
        }
    }

    #[must_use]
    pub fn severity(self, s: u8) -> &'static str {
        match (self, s) {
            (Self::En, 1) => "high",
            (Self::En, 2) => "medium",
            (Self::En, _) => "low",
            (Self::Ja, 1) => "高",
            (Self::Ja, 2) => "中",
            (Self::Ja, _) => "低",
        }
    }

    #[must_use]
    pub fn detector(self, d: &str) -> String {
        match (self, d) {
            (Self::En, "beacon") => "beacon".into(),
            (Self::En, "exfil") => "exfiltration".into(),
            (Self::En, "dns_tunnel") => "DNS tunnel".into(),
            (Self::Ja, "beacon") => "ビーコン".into(),
            (Self::Ja, "exfil") => "情報持ち出し".into(),
            (Self::Ja, "dns_tunnel") => "DNSトンネル".into(),
            (_, other) => other.to_owned(),
        }
    }

    /// An integer with thousands separators (both locales group by three).
    #[must_use]
    pub fn int(self, n: u64) -> String {
        let s = n.to_string();
        let mut out = String::with_capacity(s.len() + s.len() / 3);
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        out
    }

    /// A count of things: "12" / "12件".
    #[must_use]
    pub fn count(self, n: u64) -> String {
        match self {
            Self::En => self.int(n),
            Self::Ja => format!("{}件", self.int(n)),
        }
    }

    /// Bytes, binary units, with the exact count for small values.
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub fn bytes(self, b: u64) -> String {
        let unit = match self {
            Self::En => "bytes",
            Self::Ja => "バイト",
        };
        if b < 1024 {
            return format!("{} {unit}", self.int(b));
        }
        let (v, u) = [
            ("KiB", 1u64 << 10),
            ("MiB", 1 << 20),
            ("GiB", 1 << 30),
            ("TiB", 1 << 40),
        ]
        .iter()
        .rev()
        .find(|(_, m)| b >= *m)
        .map_or((b as f64, "B"), |(u, m)| (b as f64 / *m as f64, *u));
        format!("{v:.1} {u}")
    }

    /// A duration in seconds, in the largest fitting unit.
    #[must_use]
    pub fn dur(self, s: f64) -> String {
        let (v, en, ja) = if s >= 5400.0 {
            (s / 3600.0, "h", "時間")
        } else if s >= 90.0 {
            (s / 60.0, "min", "分")
        } else {
            (s, "s", "秒")
        };
        match self {
            Self::En => format!("{v:.1} {en}"),
            Self::Ja => format!("{v:.1}{ja}"),
        }
    }

    /// A time: UTC for `en`; JST with UTC beside it for `ja`.
    #[must_use]
    pub fn time(self, t: Option<Ns>) -> String {
        let Some(t) = t else {
            return "-".into();
        };
        let utc = chrono::DateTime::from_timestamp(t.div_euclid(SEC), 0).unwrap_or_default();
        match self {
            Self::En => utc.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            Self::Ja => {
                let jst = utc + chrono::Duration::hours(9);
                format!(
                    "{} JST（{} UTC）",
                    jst.format("%Y年%m月%d日 %H:%M:%S"),
                    utc.format("%H:%M:%S")
                )
            }
        }
    }

    /// A compact time: `03-02 09:11:00` (UTC) for `en`; for `ja` JST with
    /// UTC beside it.
    #[must_use]
    pub fn short_time(self, t: Option<Ns>) -> String {
        let Some(t) = t else {
            return "-".into();
        };
        let utc = chrono::DateTime::from_timestamp(t.div_euclid(SEC), 0).unwrap_or_default();
        match self {
            Self::En => utc.format("%m-%d %H:%M:%S").to_string(),
            Self::Ja => format!(
                "{} JST（{} UTC）",
                (utc + chrono::Duration::hours(9)).format("%m/%d %H:%M:%S"),
                utc.format("%H:%M")
            ),
        }
    }

    /// A decimal with locale grouping of the integer part.
    #[must_use]
    pub fn dec(self, x: f64, places: usize) -> String {
        let s = format!("{:.*}", places, x.abs());
        let (i, f) = s.split_once('.').unwrap_or((&s, ""));
        let sign = if x < 0.0 && s.bytes().any(|b| b.is_ascii_digit() && b != b'0') {
            "-"
        } else {
            ""
        };
        let int = self.int(i.parse().unwrap_or(0));
        if f.is_empty() {
            format!("{sign}{int}")
        } else {
            format!("{sign}{int}.{f}")
        }
    }
}

fn num(e: &serde_json::Map<String, Value>, k: &str) -> f64 {
    e.get(k).and_then(Value::as_f64).unwrap_or(0.0)
}
fn unum(e: &serde_json::Map<String, Value>, k: &str) -> u64 {
    e.get(k).and_then(Value::as_u64).unwrap_or(0)
}
fn text<'a>(e: &'a serde_json::Map<String, Value>, k: &str) -> Option<&'a str> {
    e.get(k).and_then(Value::as_str)
}

/// The destination as the host named it (name, else address) with the port.
#[must_use]
pub fn dest_label(a: &Alert) -> String {
    let name = text(&a.evidence, "dest_name")
        .or_else(|| text(&a.evidence, "domain"))
        .unwrap_or(&a.dest_ip);
    match a.dest_port {
        Some(p) => format!("{name}:{p}"),
        None => name.to_owned(),
    }
}

/// The signature text: as recorded for `en`, rebuilt from the evidence for `ja`.
#[must_use]
pub fn signature(a: &Alert, lang: Lang) -> String {
    if lang == Lang::En || a.signature.is_empty() && a.evidence.is_empty() {
        return a.signature.clone();
    }
    let e = &a.evidence;
    let dest = dest_label(a);
    match a.detector.as_str() {
        "beacon" => {
            let what = match (a.signature_id, a.proto.as_str()) {
                (9_100_002, _) => "長時間セッション内の定期的な通信",
                (9_100_003, _) | (_, "UDP") => "定期的なUDP通信",
                _ => "定期的な接続",
            };
            format!(
                "deguchi ビーコン：{dest} への{what}（約{}ごと）",
                lang.dur(num(e, "period_s"))
            )
        }
        "exfil" => {
            let what = match text(e, "kind").unwrap_or("") {
                "burst" => "大量の送信バースト",
                "low_and_slow" => "24時間にわたる少量ずつの送信",
                "producer_shift" => "受信中心のホストが送信を開始",
                "unusual_channel" => "通常と異なる経路での送信",
                _ => "外部への送信",
            };
            format!(
                "deguchi 情報持ち出し：{what}：{} を {dest} へ送信",
                lang.bytes(unum(e, "bytes_out_total"))
            )
        }
        "dns_tunnel" => format!(
            "deguchi DNSトンネル：{} へのエンコードされたクエリ：固有名 {}、名前部分 {}",
            text(e, "domain").unwrap_or("?"),
            lang.count(unum(e, "unique_subdomains_window")),
            lang.bytes(unum(e, "bytes_out_total"))
        ),
        _ => a.signature.clone(),
    }
}

/// `template` with `{0}`, `{1}`, ... replaced by `args`.
pub(super) fn fill(template: &str, args: &[&str]) -> String {
    let mut o = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        o.push_str(&rest[..i]);
        let tail = &rest[i + 1..];
        match tail
            .find('}')
            .and_then(|j| Some((j, tail[..j].parse::<usize>().ok()?)))
        {
            Some((j, n)) if n < args.len() => {
                o.push_str(args[n]);
                rest = &tail[j + 1..];
            }
            _ => {
                o.push('{');
                rest = tail;
            }
        }
    }
    o.push_str(rest);
    o
}

/// The evidence in plain sentences: one template per sentence and language,
/// the same arguments for both.
#[must_use]
pub fn sentences(a: &Alert, lang: Lang) -> Vec<String> {
    let e = &a.evidence;
    let mut v = Vec::new();
    let mut say = |en: &str, ja: &str, args: &[&str]| {
        v.push(fill(if lang == Lang::Ja { ja } else { en }, args));
    };
    let first = lang.time(text(e, "first_seen").and_then(parse_ts));
    let last = lang.time(text(e, "last_seen").and_then(parse_ts));
    let dest = dest_label(a);
    let host = a.src_ip.as_str();
    match a.detector.as_str() {
        "beacon" => {
            say(
                "{0} checked in with {1} {2} times, about every {3} (jitter ±{4}, ±{5} %).",
                "{0} から {1} へ、約{3}ごと（ゆらぎ ±{4}、±{5}%）のチェックインが{2}回ありました。",
                &[
                    host,
                    &dest,
                    &lang.int(unum(e, "beats")),
                    &lang.dur(num(e, "period_s")),
                    &lang.dur(num(e, "jitter_s")),
                    &lang.dec(num(e, "jitter") * 100.0, 0),
                ],
            );
            say(
                "Intervals: {0} regular, {1} with missed beats, {2} irregular, {3} long gaps.",
                "間隔の内訳：規則的 {0}、ビート欠落 {1}、不規則 {2}、長い空白 {3}。",
                &[
                    &unum(e, "regular_intervals").to_string(),
                    &unum(e, "missed_beat_intervals").to_string(),
                    &unum(e, "irregular_intervals").to_string(),
                    &unum(e, "gaps").to_string(),
                ],
            );
            say(
                "A beat sends {0} and receives {1} (medians); {2} % of beats are within ±10 % of the median size.",
                "ビートあたりの送信量の中央値は {0}、受信量は {1} で、{2}% のビートが中央値の ±10% に収まっています。",
                &[
                    &lang.bytes(unum(e, "median_bytes_out")),
                    &lang.bytes(unum(e, "median_bytes_in")),
                    &lang.dec(num(e, "size_regularity") * 100.0, 0),
                ],
            );
            say(
                "Periodicity evidence {0} nats (threshold {1}); {2} internal host(s) use this destination.",
                "周期性の証拠は {0} nat（しきい値 {1} nat）。この宛先を使う内部ホストは {2} 台です。",
                &[
                    &lang.dec(num(e, "evidence_nats"), 1),
                    &lang.dec(num(e, "threshold_nats"), 1),
                    &unum(e, "hosts_sharing_destination").to_string(),
                ],
            );
            if text(e, "channel") == Some("in_session") {
                say(
                    "The beats are bursts of activity inside one long-lived session.",
                    "通信は1本の長時間セッション内の活動の塊として観測されました。",
                    &[],
                );
            }
        }
        "exfil" => {
            let kinds: Vec<String> = e
                .get("kinds")
                .and_then(Value::as_array)
                .map(|k| {
                    k.iter()
                        .filter_map(Value::as_str)
                        .map(|k| kind_name(k, lang))
                        .collect()
                })
                .unwrap_or_default();
            say(
                "{0} sent {2} to {1} and received {3} (PCR {4}; +1 = only sending).",
                "{0} は {1} へ {2} を送信し、{3} を受信しました（送受信比 PCR {4}、+1 は送信のみ）。",
                &[
                    host,
                    &dest,
                    &lang.bytes(unum(e, "bytes_out_total")),
                    &lang.bytes(unum(e, "bytes_in_total")),
                    &lang.dec(num(e, "pcr"), 2),
                ],
            );
            let sep = if lang == Lang::Ja { "、" } else { ", " };
            say("Findings: {0}.", "判定：{0}。", &[&kinds.join(sep)]);
            if let Some(ch) = text(e, "channel") {
                say("Channel: {0}.", "経路：{0}。", &[ch]);
            }
            if let Some(w) = e.get("window_s").and_then(Value::as_u64) {
                say(
                    "In the last {0} it sent {1} there.",
                    "直近 {0} の送信量は {1}。",
                    &[
                        &lang.dur(w as f64),
                        &lang.bytes(unum(e, "bytes_out_window")),
                    ],
                );
            }
            if unum(e, "baseline_p99_bytes") > 0 {
                say(
                    "The host's whole window is {0}× its baseline (p99 {1}).",
                    "ホスト全体の同じ窓の送信量はベースライン（99パーセンタイル {1}）の {0} 倍です。",
                    &[
                        &lang.dec(num(e, "ratio"), 1),
                        &lang.bytes(unum(e, "baseline_p99_bytes")),
                    ],
                );
            }
            let new = e.get("dest_new_for_host").and_then(Value::as_bool) == Some(true);
            let (new_en, new_ja) = if new {
                ("new for this host", "このホストにとって新しいもの")
            } else {
                ("one it used before", "以前から使われているもの")
            };
            say(
                &format!(
                    "The host's usual PCR is {{0}}. The destination is {new_en}; {{1}} internal host(s) use it."
                ),
                &format!(
                    "このホストの通常の送受信比 PCR は {{0}}。宛先は{new_ja}、この宛先を使う内部ホストは {{1}} 台です。"
                ),
                &[
                    &lang.dec(num(e, "host_pcr"), 2),
                    &unum(e, "hosts_using_dest").to_string(),
                ],
            );
        }
        "dns_tunnel" => {
            say(
                "{0} asked {1} names under {2} in {3}, {4} of them unique ({5} queries and {6} in names in all).",
                "{0} は {2} 配下の名前を {3} で {1} 回問い合わせ、固有の名前は {4} 個でした（累計 {5} 回、名前部分 {6}）。",
                &[
                    host,
                    &lang.int(unum(e, "queries_window")),
                    text(e, "domain").unwrap_or("?"),
                    &lang.dur(num(e, "window_s")),
                    &lang.int(unum(e, "unique_subdomains_window")),
                    &lang.int(unum(e, "queries_total")),
                    &lang.bytes(unum(e, "bytes_out_total")),
                ],
            );
            say(
                "Data part: {0} characters on average, longest label {1}, entropy {2} bits/char; {3} % TXT/NULL-type queries.",
                "データ部分の平均長 {0} 文字、最長ラベル {1} 文字、平均エントロピー {2} ビット/文字、TXT/NULL 等の割合 {3}%。",
                &[
                    &lang.dec(num(e, "avg_subdomain_len"), 1),
                    &unum(e, "max_label_len").to_string(),
                    &lang.dec(num(e, "avg_entropy_bits"), 2),
                    &lang.dec(num(e, "txt_null_share") * 100.0, 0),
                ],
            );
            say(
                "Example query: {0}",
                "クエリの例：{0}",
                &[text(e, "example_query").unwrap_or("")],
            );
        }
        _ => return v,
    }
    say(
        "Seen from {0} to {1}.",
        "観測期間：{0} 〜 {1}。",
        &[&first, &last],
    );
    v
}

fn kind_name(k: &str, lang: Lang) -> String {
    match (lang, k) {
        (Lang::En, "burst") => "burst of outbound data".into(),
        (Lang::En, "low_and_slow") => "low-and-slow upload over 24 h".into(),
        (Lang::En, "producer_shift") => "consumer host started producing".into(),
        (Lang::En, "unusual_channel") => "upload over an unusual channel".into(),
        (Lang::Ja, "burst") => "大量送信バースト".into(),
        (Lang::Ja, "low_and_slow") => "24時間の少量継続送信".into(),
        (Lang::Ja, "producer_shift") => "受信中心ホストの送信開始".into(),
        (Lang::Ja, "unusual_channel") => "通常と異なる経路".into(),
        (_, o) => o.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(Lang::En.int(1_234_567), "1,234,567");
        assert_eq!(Lang::Ja.count(12), "12件");
        assert_eq!(Lang::En.bytes(40 << 20), "40.0 MiB");
        assert_eq!(Lang::Ja.bytes(100), "100 バイト");
        assert_eq!(Lang::En.dur(60.0), "60.0 s");
        assert_eq!(Lang::Ja.dur(600.0), "10.0分");
        assert_eq!(Lang::En.dec(-0.5, 2), "-0.50");
        assert_eq!(Lang::En.dec(12345.678, 1), "12,345.7");
        let t = crate::report::parse_ts("2026-03-02T09:11:00Z");
        assert_eq!(Lang::En.time(t), "2026-03-02 09:11:00 UTC");
        assert_eq!(
            Lang::Ja.time(t),
            "2026年03月02日 18:11:00 JST（09:11:00 UTC）"
        );
    }
}
