//! The progress bar both binaries draw on a terminal (indicatif); elsewhere
//! they log plain lines instead.

use crate::Progress;

/// A bar of `unit`s (features, tiles) per stage, with the rate and time left.
#[derive(Clone)]
pub struct TerminalProgress {
    bar: indicatif::ProgressBar,
    unit: &'static str,
}

impl TerminalProgress {
    #[must_use]
    pub fn new(unit: &'static str) -> Self {
        Self {
            bar: indicatif::ProgressBar::new_spinner(),
            unit,
        }
    }

    /// Removes the bar, before the final report is printed.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for TerminalProgress {
    fn stage(&self, name: &'static str, total: Option<u64>) {
        let unit = self.unit;
        let template = if total.is_some() {
            format!("{{msg:>9}} [{{bar:40}}] {{human_pos}}/{{human_len}} {unit}, {{per_sec}}, {{eta}} left")
        } else {
            format!("{{msg:>9}} {{spinner}} {{human_pos}} {unit}, {{per_sec}}")
        };
        if let Ok(style) = indicatif::ProgressStyle::with_template(&template) {
            self.bar.set_style(style.progress_chars("=> "));
        }
        self.bar.set_message(name);
        self.bar.set_length(total.unwrap_or(0));
        if total.is_none() {
            self.bar.unset_length();
        }
        self.bar.reset();
        self.bar
            .enable_steady_tick(std::time::Duration::from_millis(200));
    }

    fn advance(&self, count: u64) {
        self.bar.inc(count);
    }
}
