//! The live view on the terminal while a pipeline runs: a progress bar with an estimate for
//! each bounded source (a generator's count, a file's size), and, redrawn twice a second,
//! every component's records per second and totals, the dead letters, the watermark and the
//! last checkpoint. Only when standard error is a terminal and `--quiet` is not given; it is
//! cleared before the end-of-run table. Log lines are written above it.

use ecomflow_core::{ComponentTelemetry, Kind};
use ecomflow_runtime::RunTelemetry;
use ecomflow_runtime::telemetry::now_millis;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The width of one component's cell.
const CELL: usize = 60;

/// How often the view is redrawn.
const EVERY: Duration = Duration::from_millis(500);

/// The terminal's bars, once a view is shown: log lines are written above them.
static BARS: OnceLock<MultiProgress> = OnceLock::new();

/// Standard error for the logs: above the live view while one is shown.
pub struct LogWriter;

impl Write for LogWriter {
    /// Never fails: a log line standard error cannot take (a full disk) is lost, and the run
    /// goes on.
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = match BARS.get() {
            Some(bars) => bars.suspend(|| std::io::stderr().write_all(buf)),
            None => std::io::stderr().write_all(buf),
        };
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

/// A live view being drawn.
pub struct LiveView {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl LiveView {
    /// Starts drawing `run` on standard error, unless it is not a terminal or `quiet`.
    pub fn start(run: Arc<RunTelemetry>, quiet: bool) -> Option<LiveView> {
        if quiet || !std::io::stderr().is_terminal() {
            return None;
        }
        let bars = BARS
            .get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(4)))
            .clone();
        let stop = CancellationToken::new();
        let task = tokio::spawn(draw(bars, run, stop.clone()));
        Some(LiveView { stop, task })
    }

    /// Stops drawing and clears the view.
    pub async fn finish(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

async fn draw(bars: MultiProgress, run: Arc<RunTelemetry>, stop: CancellationToken) {
    let summary = bars.add(ProgressBar::new_spinner());
    summary.set_style(
        ProgressStyle::with_template("{msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    // A source says how much it will read once it runs: its bar comes then.
    let mut progress: Vec<(Arc<ComponentTelemetry>, ProgressBar)> = Vec::new();
    let mut rates = Rates::default();
    loop {
        for c in run.components.iter().filter(|c| c.kind == Kind::Source) {
            if progress.iter().all(|(p, _)| !Arc::ptr_eq(p, c))
                && let Some(bar) = bounded_bar(c)
            {
                progress.push((c.clone(), bars.insert_before(&summary, bar)));
            }
        }
        for (c, bar) in &progress {
            bar.set_position(done(c).min(bar.length().unwrap_or(u64::MAX)));
        }
        summary.set_message(rates.describe(&run));
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = stop.cancelled() => break,
        }
    }
    for (_, bar) in &progress {
        bar.finish_and_clear();
    }
    summary.finish_and_clear();
    let _ = bars.clear();
}

/// A source's progress bar, when it knows how much it will read.
fn bounded_bar(c: &ComponentTelemetry) -> Option<ProgressBar> {
    let (total, unit) = match (
        c.expected_records.load(Ordering::Relaxed),
        c.expected_bytes.load(Ordering::Relaxed),
    ) {
        (0, 0) => return None,
        (0, bytes) => (bytes, "{bytes}/{total_bytes}"),
        (records, _) => (records, "{human_pos}/{human_len} records"),
    };
    let template = format!("{{prefix:<28}} [{{bar:32}}] {unit}  {{percent}}%  eta {{eta}}");
    let style = ProgressStyle::with_template(&template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    Some(
        ProgressBar::new(total)
            .with_style(style)
            .with_prefix(c.path.to_string()),
    )
}

/// How far a bounded source is: records sent, or bytes read.
fn done(c: &ComponentTelemetry) -> u64 {
    if c.expected_records.load(Ordering::Relaxed) > 0 {
        c.counters.sent.load(Ordering::Relaxed)
    } else {
        c.bytes_read.load(Ordering::Relaxed)
    }
}

/// Records per second of each component, from one redraw to the next.
#[derive(Default)]
struct Rates {
    last: Option<Instant>,
    sent: HashMap<Arc<str>, u64>,
}

impl Rates {
    /// The view's text: two columns of components, then the time and checkpoint line.
    fn describe(&mut self, run: &RunTelemetry) -> String {
        let now = Instant::now();
        let seconds = self.last.map_or(0.0, |l| (now - l).as_secs_f64());
        self.last = Some(now);
        let cells: Vec<String> = run
            .components
            .iter()
            .map(|c| {
                let sent = c.counters.sent.load(Ordering::Relaxed);
                let before = self.sent.insert(c.path.clone(), sent).unwrap_or(sent);
                let rate = if seconds > 0.0 {
                    (sent - before.min(sent)) as f64 / seconds
                } else {
                    0.0
                };
                let dead = c.counters.dead_lettered.load(Ordering::Relaxed);
                let dead = if dead > 0 {
                    format!(" dl {}", compact(dead as f64))
                } else {
                    String::new()
                };
                format!(
                    "{:<30} {:>7}/s {:>7}{dead}",
                    clip(&c.path, 30),
                    compact(rate),
                    compact(sent as f64)
                )
            })
            .collect();
        // Two columns when the terminal is wide enough.
        let width = usize::from(console::Term::stderr().size().1);
        let mut lines: Vec<String> = if width >= 2 * CELL + 2 {
            let half = cells.len().div_ceil(2);
            (0..half)
                .map(|i| match cells.get(i + half) {
                    Some(right) => format!("{:<CELL$}  {right}", cells[i]),
                    None => cells[i].clone(),
                })
                .collect()
        } else {
            cells
        };
        lines.push(footer(run));
        lines.join("\n")
    }
}

/// The state, the lowest source watermark, and the last checkpoint.
fn footer(run: &RunTelemetry) -> String {
    let watermark = run
        .components
        .iter()
        .filter(|c| c.kind == Kind::Source)
        .filter_map(|c| c.low_watermark())
        .min()
        .and_then(chrono::DateTime::from_timestamp_micros)
        .map_or("none".to_string(), |t| {
            t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
        });
    let checkpoint = match run.checkpoints.last() {
        Some(last) => format!(
            "#{} {:.0}s ago ({} ms)",
            last.id,
            (now_millis() - last.completed_at).max(0) as f64 / 1000.0,
            last.duration.as_millis()
        ),
        None => "none".into(),
    };
    let waiting = run.not_ready();
    let state = if waiting.is_empty() {
        run.state().name().to_string()
    } else {
        format!("not ready: {}", waiting.join("; "))
    };
    format!("{state} · watermark {watermark} · checkpoint {checkpoint}")
}

fn clip(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else {
        let kept: String = s.chars().take(width - 1).collect();
        format!("{kept}…")
    }
}

/// 1234 as 1.2k, 5600000 as 5.6M.
fn compact(n: f64) -> String {
    match n {
        n if n >= 1e9 => format!("{:.1}G", n / 1e9),
        n if n >= 1e6 => format!("{:.1}M", n / 1e6),
        n if n >= 1e3 => format!("{:.1}k", n / 1e3),
        n => format!("{n:.0}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_compact_and_paths_fit_their_column() {
        assert_eq!(compact(999.0), "999");
        assert_eq!(compact(12_345.0), "12.3k");
        assert_eq!(compact(5_600_000.0), "5.6M");
        assert_eq!(
            clip("sinks.sales_per_category_chart_and_more", 12),
            "sinks.sales…"
        );
        assert_eq!(clip("short", 12), "short");
    }
}
