//! Progress on stderr: an indicatif bar on a terminal, plain periodic lines otherwise (CodeBuild
//! and CI logs), nothing with --quiet or --no-progress.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    Bar,
    Lines,
    Off,
}

impl ProgressMode {
    pub fn detect(quiet: bool, no_progress: bool) -> Self {
        if quiet || no_progress {
            ProgressMode::Off
        } else if std::io::stderr().is_terminal() {
            ProgressMode::Bar
        } else {
            ProgressMode::Lines
        }
    }
}

const LINE_INTERVAL: Duration = Duration::from_secs(10);

/// Counts finished targets (account-regions) and repositories of one phase.
#[derive(Debug)]
pub struct Progress {
    phase: &'static str,
    unit: &'static str,
    mode: ProgressMode,
    bar: Option<ProgressBar>,
    total: u64,
    done: AtomicU64,
    items: AtomicU64,
    last_line: Mutex<Instant>,
}

impl Progress {
    pub fn new(mode: ProgressMode, phase: &'static str, unit: &'static str, total: u64) -> Self {
        let bar = (mode == ProgressMode::Bar).then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:>9} [{bar:30}] {pos}/{len} {msg} ({elapsed})",
                )
                .expect("static template")
                .progress_chars("=> "),
            );
            bar.set_prefix(phase);
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress {
            phase,
            unit,
            mode,
            bar,
            total,
            done: AtomicU64::new(0),
            items: AtomicU64::new(0),
            last_line: Mutex::new(Instant::now()),
        }
    }

    /// One repository handled.
    pub fn item(&self) {
        let n = self.items.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{n} repositories"));
        }
        self.maybe_line();
    }

    /// One target (account-region, or write) finished.
    pub fn step(&self) {
        self.done.fetch_add(1, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
        self.maybe_line();
    }

    fn maybe_line(&self) {
        if self.mode != ProgressMode::Lines {
            return;
        }
        let mut last = self.last_line.lock().expect("progress lock");
        if last.elapsed() >= LINE_INTERVAL {
            *last = Instant::now();
            eprintln!("{}", self.line());
        }
    }

    fn line(&self) -> String {
        let mut line = format!(
            "ecr-fleet: {}: {}/{} {}",
            self.phase,
            self.done.load(Ordering::Relaxed),
            self.total,
            self.unit
        );
        let items = self.items.load(Ordering::Relaxed);
        if items > 0 {
            line.push_str(&format!(", {items} repositories"));
        }
        line
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if self.mode == ProgressMode::Lines && self.total > 0 {
            eprintln!("{} (done)", self.line());
        }
    }
}
