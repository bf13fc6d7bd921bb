//! The progress line `import` keeps on a terminal while it checks, stores or sends a file.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// A progress line on stderr, redrawn in place (`\r`) at most ten times a second, when stderr is
/// a terminal; nothing otherwise. Cleared when dropped, so the summary line that follows stands
/// alone.
pub(super) struct Progress {
    enabled: bool,
    label: String,
    last: Option<Instant>,
    width: usize,
}

impl Progress {
    pub(super) fn new(file: &Path) -> Self {
        Progress {
            enabled: std::io::stderr().is_terminal(),
            label: file.display().to_string(),
            last: None,
            width: 0,
        }
    }

    pub(super) fn show(&mut self, phase: &str, done: u64, total: u64) {
        if !self.enabled
            || (done < total
                && self
                    .last
                    .is_some_and(|last| last.elapsed() < Duration::from_millis(100)))
        {
            return;
        }
        self.last = Some(Instant::now());
        let percent = (done * 100).checked_div(total).unwrap_or(100);
        let line = format!(
            "{}: {phase} {done}/{total} metrics ({percent}%)",
            self.label
        );
        self.width = self.width.max(line.chars().count());
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, "\r{line:<width$}", width = self.width);
        let _ = stderr.flush();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if self.enabled && self.width > 0 {
            let mut stderr = std::io::stderr().lock();
            let _ = write!(stderr, "\r{:width$}\r", "", width = self.width);
            let _ = stderr.flush();
        }
    }
}
