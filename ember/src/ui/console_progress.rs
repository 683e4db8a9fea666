//! Spark's console progress bar: one line on stderr, rewritten in place, showing the running
//! stages as `[Stage 1:=====>           (12 + 2) / 40]`.
//!
//! Like Spark's, it appears only for stages that have run longer than 500 ms (short jobs print
//! nothing), redraws at most every 200 ms, shows at most 3 stages side by side in the terminal's
//! width, and is erased when a job ends so job output does not mix with it.

use std::io::{IsTerminal, Write};

/// A stage is shown only after running this long, so quick stages do not flicker.
const FIRST_DELAY_MS: u64 = 500;
/// Minimum time between two redraws (Spark's `spark.ui.consoleProgress.update.interval`).
const UPDATE_PERIOD_MS: u64 = 200;
/// Redraw an unchanged bar after this long anyway: an idle ssh session may otherwise close.
const REFRESH_UNCHANGED_MS: u64 = 60_000;
/// More stages than this would leave no room for the bars.
const MAX_STAGES: usize = 3;
/// Width used when `COLUMNS` does not say, as in Spark.
const DEFAULT_WIDTH: usize = 80;

/// What the bar needs to know about one active stage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageProgress {
    /// The stage's id, shown in the bar.
    pub stage_id: usize,
    /// The stage attempt; not shown (Spark shows only the id), kept for callers' bookkeeping.
    pub stage_attempt: u32,
    /// Tasks in the stage.
    pub num_tasks: usize,
    /// Tasks finished successfully.
    pub completed: usize,
    /// Tasks running now.
    pub active: usize,
    /// When the stage was submitted, on the same clock as `update`'s `now_ms`.
    pub submitted_at_ms: u64,
}

/// Renders the bar line for up to three stages in `width` columns, each stage getting an equal
/// share: `[Stage 1:` + `=` for completed, `>` at the frontier, blanks + `(done + running) /
/// total]`. A share too narrow for any bar shows just the header and counts.
pub fn render(stages: &[StageProgress], width: usize) -> String {
    let stages = &stages[..stages.len().min(MAX_STAGES)];
    if stages.is_empty() {
        return String::new();
    }
    let share = width / stages.len();
    let mut line = String::with_capacity(width + 16);
    for s in stages {
        let header = format!("[Stage {}:", s.stage_id);
        let tailer = format!("({} + {}) / {}]", s.completed, s.active, s.num_tasks);
        line.push_str(&header);
        let w = share.saturating_sub(header.len() + tailer.len());
        if w > 0 {
            // A stage with no tasks, or more completions than tasks (resubmitted attempts),
            // shows as full rather than dividing by zero or overflowing.
            let done = (w * s.completed.min(s.num_tasks))
                .checked_div(s.num_tasks)
                .unwrap_or(w);
            for i in 0..w {
                line.push(match i.cmp(&done) {
                    std::cmp::Ordering::Less => '=',
                    std::cmp::Ordering::Equal => '>',
                    std::cmp::Ordering::Greater => ' ',
                });
            }
        }
        line.push_str(&tailer);
    }
    line
}

/// The progress bar's state between updates. Time comes from the caller (`now_ms`) so the
/// scheduler's injected clock drives it and tests are deterministic.
pub struct ConsoleProgressBar {
    enabled: bool,
    width: usize,
    /// Last bar written, empty when nothing is on screen.
    last_bar: String,
    last_write_ms: u64,
    last_refresh_ms: Option<u64>,
    /// Latest `now_ms` seen, standing in for the clock in `finish`.
    last_now_ms: u64,
    /// When the last job finished: nothing is drawn for 500 ms after, so a job's output is not
    /// immediately followed by the next job's bar.
    last_finish_ms: Option<u64>,
}

impl ConsoleProgressBar {
    /// A bar that draws only if `enabled` (see [`enabled_for_stderr`](Self::enabled_for_stderr)).
    /// The width is `COLUMNS` if set, else 80, as in Spark.
    pub fn new(enabled: bool) -> Self {
        let width = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.trim().parse::<usize>().ok())
            .filter(|&c| c > 0)
            .unwrap_or(DEFAULT_WIDTH);
        Self::with_width(enabled, width)
    }

    /// A bar with an explicit terminal width.
    pub fn with_width(enabled: bool, width: usize) -> Self {
        ConsoleProgressBar {
            enabled,
            width,
            last_bar: String::new(),
            last_write_ms: 0,
            last_refresh_ms: None,
            last_now_ms: 0,
            last_finish_ms: None,
        }
    }

    /// Whether to show the bar: the configuration asks for it (`ember.ui.showConsoleProgress`)
    /// and stderr is a terminal, since `\r` redraws would litter a log file or a pipe.
    pub fn enabled_for_stderr(conf_flag: bool) -> bool {
        conf_flag && std::io::stderr().is_terminal()
    }

    /// Takes the current active stages; call it as often as convenient (e.g. on every scheduler
    /// tick), it redraws at most every 200 ms and only stages running longer than 500 ms.
    pub fn update(&mut self, now_ms: u64, stages: &[StageProgress]) {
        self.last_now_ms = self.last_now_ms.max(now_ms);
        if !self.enabled {
            return;
        }
        if let Some(bar) = self.next_frame(now_ms, stages) {
            write_stderr(&format!("\r{bar}\r"));
        }
    }

    /// Decides what to draw at `now_ms`, updating the state; `None` means leave the screen as is.
    fn next_frame(&mut self, now_ms: u64, stages: &[StageProgress]) -> Option<String> {
        if let Some(last) = self.last_refresh_ms {
            if now_ms.saturating_sub(last) < UPDATE_PERIOD_MS {
                return None;
            }
        }
        self.last_refresh_ms = Some(now_ms);
        if let Some(finished) = self.last_finish_ms {
            if now_ms.saturating_sub(finished) < FIRST_DELAY_MS {
                return None;
            }
        }
        let mut shown: Vec<StageProgress> = stages
            .iter()
            .filter(|s| now_ms.saturating_sub(s.submitted_at_ms) > FIRST_DELAY_MS)
            .cloned()
            .collect();
        if shown.is_empty() {
            return None;
        }
        shown.sort_by_key(|s| (s.stage_id, s.stage_attempt));
        shown.truncate(MAX_STAGES);
        let bar = render(&shown, self.width);
        let changed = bar != self.last_bar;
        let stale = now_ms.saturating_sub(self.last_write_ms) > REFRESH_UNCHANGED_MS;
        if !changed && !stale {
            return None;
        }
        self.last_write_ms = now_ms;
        self.last_bar = bar.clone();
        Some(bar)
    }

    /// Erases the bar when a job ends, so the job's output starts on a clean line, and holds
    /// the next bar back for 500 ms (measured from the latest `update` time seen).
    pub fn finish(&mut self) {
        if let Some(clear) = self.clear_frame() {
            write_stderr(&clear);
        }
    }

    fn clear_frame(&mut self) -> Option<String> {
        self.last_finish_ms = Some(self.last_now_ms);
        if self.last_bar.is_empty() {
            return None;
        }
        self.last_bar.clear();
        Some(format!("\r{}\r", " ".repeat(self.width)))
    }
}

/// The running stages as the bus reports them: what the bar draws (Spark's bar reads the same
/// from the status store). A listener; share it through [`ProgressTracker::handle`].
#[derive(Clone, Default)]
pub struct ProgressTracker {
    inner: std::sync::Arc<parking_lot::Mutex<TrackerState>>,
}

#[derive(Default)]
struct TrackerState {
    stages: std::collections::BTreeMap<(usize, u32), StageProgress>,
    /// A job ended while no stage runs: the bar is to be erased.
    job_ended: bool,
}

impl ProgressTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Another handle on the same state (one goes to the bus, one to whoever draws).
    pub fn handle(&self) -> Self {
        self.clone()
    }

    /// The running stages, by id.
    pub fn stages(&self) -> Vec<StageProgress> {
        self.inner.lock().stages.values().cloned().collect()
    }

    /// Whether a job ended with no stage left running since the last call.
    fn take_job_ended(&self) -> bool {
        let mut st = self.inner.lock();
        std::mem::take(&mut st.job_ended) && st.stages.is_empty()
    }
}

impl crate::listener::Listener for ProgressTracker {
    fn on_stage_submitted(&mut self, e: &crate::listener::events::StageSubmitted) {
        let i = &e.stage_info;
        self.inner.lock().stages.insert(
            (i.stage_id, i.attempt_id),
            StageProgress {
                stage_id: i.stage_id,
                stage_attempt: i.attempt_id,
                num_tasks: i.num_tasks,
                completed: 0,
                active: 0,
                submitted_at_ms: i.submission_time.unwrap_or(0),
            },
        );
    }

    fn on_stage_completed(&mut self, e: &crate::listener::events::StageCompleted) {
        self.inner
            .lock()
            .stages
            .remove(&(e.stage_info.stage_id, e.stage_info.attempt_id));
    }

    fn on_task_start(&mut self, e: &crate::listener::events::TaskStart) {
        if let Some(s) = self
            .inner
            .lock()
            .stages
            .get_mut(&(e.stage_id, e.stage_attempt_id))
        {
            s.active += 1;
        }
    }

    fn on_task_end(&mut self, e: &crate::listener::events::TaskEnd) {
        use crate::listener::events::TaskEndReason;
        if e.reason == TaskEndReason::Resubmitted {
            return;
        }
        if let Some(s) = self
            .inner
            .lock()
            .stages
            .get_mut(&(e.stage_id, e.stage_attempt_id))
        {
            s.active = s.active.saturating_sub(1);
            if e.reason == TaskEndReason::Success {
                s.completed += 1;
            }
        }
    }

    fn on_job_end(&mut self, _e: &crate::listener::events::JobEnd) {
        self.inner.lock().job_ended = true;
    }
}

/// Draws the bar from a [`ProgressTracker`] every 200 ms on a thread of its own
/// (`refresh progress`, as Spark's timer), with times from `now_ms`; stops when dropped.
pub struct ProgressRefresher {
    stop: std::sync::Arc<(parking_lot::Mutex<bool>, parking_lot::Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ProgressRefresher {
    /// Starts drawing `tracker` with `bar`.
    pub fn start(
        tracker: ProgressTracker,
        mut bar: ConsoleProgressBar,
        now_ms: std::sync::Arc<dyn Fn() -> u64 + Send + Sync>,
    ) -> std::io::Result<Self> {
        let stop =
            std::sync::Arc::new((parking_lot::Mutex::new(false), parking_lot::Condvar::new()));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("refresh progress".into())
            .spawn(move || loop {
                {
                    let mut stopped = flag.0.lock();
                    if !*stopped {
                        flag.1.wait_for(
                            &mut stopped,
                            std::time::Duration::from_millis(UPDATE_PERIOD_MS),
                        );
                    }
                    if *stopped {
                        bar.finish();
                        return;
                    }
                }
                let now = now_ms();
                if tracker.take_job_ended() {
                    bar.update(now, &[]);
                    bar.finish();
                } else {
                    bar.update(now, &tracker.stages());
                }
            })?;
        Ok(ProgressRefresher {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for ProgressRefresher {
    fn drop(&mut self) {
        *self.stop.0.lock() = true;
        self.stop.1.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Best effort: a closed or broken stderr must not fail a job over a progress bar.
fn write_stderr(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(id: usize, total: usize, done: usize, active: usize, at: u64) -> StageProgress {
        StageProgress {
            stage_id: id,
            stage_attempt: 0,
            num_tasks: total,
            completed: done,
            active,
            submitted_at_ms: at,
        }
    }

    #[test]
    fn renders_like_spark() {
        let line = render(&[stage(1, 40, 12, 2, 0)], 80);
        // Header 9 + tailer 14 leaves 57 columns; 57 * 12 / 40 = 17 done.
        let want = format!(
            "[Stage 1:{}>{}(12 + 2) / 40]",
            "=".repeat(17),
            " ".repeat(39)
        );
        assert_eq!(line, want);
        assert_eq!(line.len(), 80);
    }

    #[test]
    fn empty_and_complete_bars() {
        let start = render(&[stage(0, 10, 0, 0, 0)], 40);
        assert_eq!(start, format!("[Stage 0:>{}(0 + 0) / 10]", " ".repeat(17)));
        let full = render(&[stage(0, 10, 10, 0, 0)], 40);
        assert_eq!(full, format!("[Stage 0:{}(10 + 0) / 10]", "=".repeat(17)));
        let no_tasks = render(&[stage(0, 0, 0, 0, 0)], 40);
        assert_eq!(no_tasks, format!("[Stage 0:{}(0 + 0) / 0]", "=".repeat(19)));
    }

    #[test]
    fn three_stages_share_the_width_and_a_fourth_is_dropped() {
        let stages = [
            stage(1, 4, 1, 1, 0),
            stage(2, 4, 2, 1, 0),
            stage(3, 4, 3, 1, 0),
            stage(4, 4, 0, 0, 0),
        ];
        let line = render(&stages, 90);
        assert_eq!(line.len(), 90);
        assert_eq!(line.matches("[Stage").count(), 3);
        assert!(!line.contains("Stage 4"));
        // Each share is 30 columns: header 9 + tailer 12 leaves 9.
        assert!(
            line.starts_with("[Stage 1:==>      (1 + 1) / 4][Stage 2:"),
            "{line}"
        );
    }

    #[test]
    fn narrow_share_shows_counts_only() {
        assert_eq!(
            render(&[stage(7, 1000, 5, 2, 0)], 10),
            "[Stage 7:(5 + 2) / 1000]"
        );
    }

    #[test]
    fn waits_for_stages_older_than_500ms() {
        let mut bar = ConsoleProgressBar::with_width(true, 80);
        let s = [stage(0, 8, 1, 2, 1_000)];
        assert_eq!(bar.next_frame(1_400, &s), None);
        assert_eq!(
            bar.next_frame(1_500, &s),
            None,
            "exactly 500 ms is not longer than 500 ms"
        );
        assert!(bar.next_frame(1_700, &s).unwrap().starts_with("[Stage 0:"));
    }

    #[test]
    fn redraws_at_most_every_200ms_and_only_on_change() {
        let mut bar = ConsoleProgressBar::with_width(true, 80);
        assert!(bar.next_frame(1_000, &[stage(0, 8, 1, 2, 0)]).is_some());
        assert_eq!(
            bar.next_frame(1_100, &[stage(0, 8, 5, 2, 0)]),
            None,
            "too soon"
        );
        assert!(bar.next_frame(1_200, &[stage(0, 8, 5, 2, 0)]).is_some());
        assert_eq!(
            bar.next_frame(1_400, &[stage(0, 8, 5, 2, 0)]),
            None,
            "unchanged"
        );
        assert!(
            bar.next_frame(61_400, &[stage(0, 8, 5, 2, 0)]).is_some(),
            "stale after a minute"
        );
    }

    #[test]
    fn stages_sorted_by_id() {
        let mut bar = ConsoleProgressBar::with_width(true, 120);
        let line = bar
            .next_frame(5_000, &[stage(9, 2, 0, 1, 0), stage(3, 2, 0, 1, 0)])
            .unwrap();
        assert!(line.starts_with("[Stage 3:"), "{line}");
    }

    #[test]
    fn finish_clears_and_holds_back_the_next_bar() {
        let mut bar = ConsoleProgressBar::with_width(true, 20);
        assert_eq!(bar.clear_frame(), None, "nothing shown, nothing to clear");
        bar.last_finish_ms = None;
        assert!(bar.next_frame(1_000, &[stage(0, 8, 1, 2, 0)]).is_some());
        bar.last_now_ms = 1_000;
        assert_eq!(bar.clear_frame(), Some(format!("\r{}\r", " ".repeat(20))));
        assert_eq!(
            bar.next_frame(1_300, &[stage(1, 8, 1, 2, 0)]),
            None,
            "within 500 ms of finish"
        );
        assert!(bar.next_frame(1_600, &[stage(1, 8, 1, 2, 0)]).is_some());
    }

    #[test]
    fn disabled_bar_draws_nothing() {
        let mut bar = ConsoleProgressBar::new(false);
        bar.update(10_000, &[stage(0, 8, 1, 2, 0)]);
        assert!(bar.last_bar.is_empty());
        bar.finish();
    }
}
