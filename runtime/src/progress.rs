//! A terminal progress bar for the executors' phases (`veil client`): one bar per phase, the
//! step's layer and protocol beside it, cleared when the phase ends. Hidden under `--quiet` and
//! whenever standard error is not a terminal (indicatif draws nothing then).

use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::exec::Progress;

/// The bar; [`Progress`] for the executors.
#[derive(Debug)]
pub struct Bar {
    enabled: bool,
    current: Mutex<Option<(&'static str, ProgressBar)>>,
}

impl Bar {
    /// A bar on standard error (drawn only on a terminal), or none when `enabled` is false.
    pub fn new(enabled: bool) -> Bar {
        Bar { enabled, current: Mutex::new(None) }
    }

    fn start(&self, phase: &'static str, total: usize) -> ProgressBar {
        let target = if self.enabled { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
        let bar = ProgressBar::with_draw_target(Some(total as u64), target);
        let style = ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len} steps  {elapsed:>4}  {msg}")
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_prefix(phase);
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    }
}

impl Progress for Bar {
    fn step(&self, phase: &'static str, index: usize, total: usize, name: &str, protocol: &str) {
        let Ok(mut cur) = self.current.lock() else { return };
        if cur.as_ref().is_none_or(|(p, _)| *p != phase) {
            if let Some((_, old)) = cur.take() {
                old.finish_and_clear();
            }
            *cur = Some((phase, self.start(phase, total)));
        }
        if let Some((_, bar)) = cur.as_ref() {
            bar.set_position(index as u64);
            bar.set_message(format!("{name} ({protocol})"));
        }
    }

    fn done(&self, phase: &'static str) {
        let Ok(mut cur) = self.current.lock() else { return };
        if cur.as_ref().is_some_and(|(p, _)| *p == phase)
            && let Some((_, bar)) = cur.take()
        {
            bar.finish_and_clear();
        }
    }
}
