//! The figures of one `kcptun bench tunnel` measurement and how they are shown: percentiles,
//! the table with one column per implementation and the ours/Go ratio, and JSON.

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::Impl;
use crate::cmd::bench::{num, table};

pub(super) fn percentile(sorted: &[f64], p: usize) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    Some(sorted[(sorted.len() * p / 100).min(sorted.len() - 1)])
}

pub(super) fn sorted_ms(v: &[Duration]) -> Vec<f64> {
    let mut ms: Vec<f64> = v.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    ms
}

/// Figures of one measurement; `None` where it could not be taken.
#[derive(Debug, Default, Clone)]
pub(super) struct Metrics {
    pub(super) up_mbps: f64,
    pub(super) down_mbps: f64,
    pub(super) cpu_up: Option<f64>,
    pub(super) cpu_down: Option<f64>,
    pub(super) rss_idle_client: Option<f64>,
    pub(super) rss_idle_server: Option<f64>,
    pub(super) rss_peak_client: Option<f64>,
    pub(super) rss_peak_server: Option<f64>,
    pub(super) rtt_idle_p50: Option<f64>,
    pub(super) rtt_idle_p99: Option<f64>,
    pub(super) rtt_load_p50: Option<f64>,
    pub(super) rtt_load_p99: Option<f64>,
    /// Round trips measured under load (few on a long path: its p99 is close to the maximum).
    pub(super) rtt_load_n: Option<f64>,
    pub(super) restart_s: Option<f64>,
    pub(super) restart_asked: bool,
}

impl Metrics {
    /// `(json key, table label, value)` of every figure, in table order.
    pub(super) fn figures(&self) -> Vec<(&'static str, &'static str, Option<f64>)> {
        let mut v = vec![
            ("up_MBps", "goodput up (MB/s)", Some(self.up_mbps)),
            ("down_MBps", "goodput down (MB/s)", Some(self.down_mbps)),
            (
                "cpu_s_per_GB_up",
                "CPU s/GB up (client+server)",
                self.cpu_up,
            ),
            (
                "cpu_s_per_GB_down",
                "CPU s/GB down (client+server)",
                self.cpu_down,
            ),
            (
                "rss_idle_client_MiB",
                "RSS idle client (MiB)",
                self.rss_idle_client,
            ),
            (
                "rss_idle_server_MiB",
                "RSS idle server (MiB)",
                self.rss_idle_server,
            ),
            (
                "rss_peak_client_MiB",
                "RSS peak client (MiB)",
                self.rss_peak_client,
            ),
            (
                "rss_peak_server_MiB",
                "RSS peak server (MiB)",
                self.rss_peak_server,
            ),
            ("rtt_idle_p50_ms", "RTT idle p50 (ms)", self.rtt_idle_p50),
            ("rtt_idle_p99_ms", "RTT idle p99 (ms)", self.rtt_idle_p99),
            (
                "rtt_load_p50_ms",
                "RTT under load p50 (ms)",
                self.rtt_load_p50,
            ),
            (
                "rtt_load_p99_ms",
                "RTT under load p99 (ms)",
                self.rtt_load_p99,
            ),
            (
                "rtt_load_samples",
                "RTT under load samples",
                self.rtt_load_n,
            ),
        ];
        if self.restart_asked {
            v.push(("restart_s", "server restart → answer (s)", self.restart_s));
        }
        v
    }

    pub(super) fn to_json(&self) -> Value {
        let mut m = Map::new();
        for (k, _, v) in self.figures() {
            m.insert(k.into(), v.map_or(Value::Null, |x| json!(x)));
        }
        Value::Object(m)
    }
}

pub(super) fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

pub(super) fn ratio_json(ours: &Metrics, go: &Metrics) -> Value {
    let mut m = Map::new();
    for ((k, _, a), (_, _, b)) in ours.figures().into_iter().zip(go.figures()) {
        m.insert(k.into(), ratio(a, b).map_or(Value::Null, |x| json!(x)));
    }
    Value::Object(m)
}

/// A ratio with two significant digits at least (0.0013, 0.20, 3.94, 12.5).
pub(super) fn ratio_str(x: f64) -> String {
    if x >= 10.0 {
        format!("{x:.1}")
    } else if x >= 0.1 || x <= 0.0 {
        format!("{x:.2}")
    } else {
        let decimals = (1.0 - x.log10().floor()).min(9.0) as usize;
        format!("{x:.decimals$}")
    }
}

/// The table: one row per figure, one column per implementation, then ours/Go.
pub(super) fn render(imps: &[Impl], results: &[Metrics]) -> String {
    let mut header = vec!["figure"];
    header.extend(imps.iter().map(|i| i.name));
    // The ratio compares ours with Go (the first two columns; mixed pairs follow them).
    if results.len() >= 2 {
        header.push("ours/Go");
    }
    let figs: Vec<_> = results.iter().map(Metrics::figures).collect();
    // Counts are whole numbers; everything else gets `num`'s precision.
    let show = |key: &str, v: Option<f64>| match v {
        None => "n/a".to_string(),
        Some(x) if key.ends_with("_samples") => format!("{x:.0}"),
        Some(x) => num(x),
    };
    let rows: Vec<Vec<String>> = (0..figs[0].len())
        .map(|i| {
            let mut r = vec![figs[0][i].1.to_string()];
            r.extend(figs.iter().map(|f| show(f[i].0, f[i].2)));
            if figs.len() >= 2 {
                r.push(ratio(figs[0][i].2, figs[1][i].2).map_or("n/a".into(), ratio_str));
            }
            r
        })
        .collect();
    table(&header, &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let v: Vec<f64> = (1..=200).map(f64::from).collect();
        assert_eq!(percentile(&v, 50), Some(101.0));
        assert_eq!(percentile(&v, 99), Some(199.0));
        assert_eq!(percentile(&[], 50), None);
    }

    #[test]
    fn comparison_table_and_ratios() {
        let ours = Metrics {
            up_mbps: 200.0,
            down_mbps: 100.0,
            restart_asked: true,
            restart_s: Some(1.0),
            ..Metrics::default()
        };
        let go = Metrics {
            up_mbps: 50.0,
            down_mbps: 100.0,
            restart_asked: true,
            ..Metrics::default()
        };
        let imps = [Impl::ours().unwrap(), {
            let mut g = Impl::ours().unwrap();
            g.name = "Go";
            g
        }];
        let t = render(&imps, &[ours.clone(), go.clone()]);
        let lines: Vec<Vec<&str>> = t
            .lines()
            .map(|l| {
                l.split("  ")
                    .filter(|c| !c.is_empty())
                    .map(str::trim)
                    .collect()
            })
            .collect();
        assert_eq!(lines[0], ["figure", "ours", "Go", "ours/Go"]);
        assert_eq!(lines[2], ["goodput up (MB/s)", "200", "50.0", "4.00"]);
        assert_eq!(lines[3], ["goodput down (MB/s)", "100", "100", "1.00"]);
        assert_eq!(
            lines[4],
            ["CPU s/GB up (client+server)", "n/a", "n/a", "n/a"]
        );
        assert_eq!(
            lines.last().unwrap(),
            &["server restart → answer (s)", "1.00", "n/a", "n/a"]
        );
        let r = ratio_json(&ours, &go);
        assert_eq!(r["up_MBps"], 4.0);
        assert_eq!(r["restart_s"], Value::Null);
        assert_eq!(ours.to_json()["restart_s"], 1.0);
        assert!(Metrics::default().to_json().get("restart_s").is_none());
    }

    #[test]
    fn ratio_strings() {
        assert_eq!(ratio_str(12.345), "12.3");
        assert_eq!(ratio_str(3.944), "3.94");
        assert_eq!(ratio_str(0.2), "0.20");
        assert_eq!(ratio_str(0.0013), "0.0013");
        assert_eq!(ratio_str(0.05), "0.050");
        assert_eq!(ratio_str(0.0), "0.00");
    }
}
