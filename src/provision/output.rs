//! How provision talks: progress bars on a terminal, plain lines on stderr otherwise, and with
//! `--json` one JSON object per line on stdout. Everything that may echo step output has
//! already been through the secrets redactor.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

pub struct Output {
    json: bool,
    multi: Option<MultiProgress>,
}

impl Output {
    pub fn new(json: bool) -> Self {
        let tty = !json && std::io::stderr().is_terminal();
        Output {
            json,
            multi: tty.then(MultiProgress::new),
        }
    }

    pub fn is_json(&self) -> bool {
        self.json
    }

    /// One machine-readable event (only with `--json`).
    pub fn event(&self, value: &impl serde::Serialize) {
        if self.json {
            let line = serde_json::to_string(value).expect("events serialize");
            let mut stdout = std::io::stdout().lock();
            // A closed stdout (a reader that went away) is not a reason to abort provisioning.
            let _ = writeln!(stdout, "{line}");
            let _ = stdout.flush();
        }
    }

    /// A progress line for people, on stderr (above the bars on a terminal).
    pub fn info(&self, text: &str) {
        if self.json {
            return;
        }
        self.stderr_line(text);
    }

    /// One line of a step's output, prefixed with its name. Also in `--json` mode, on stderr,
    /// so stdout stays parseable.
    pub fn step_line(&self, step: &str, line: &str) {
        self.stderr_line(&format!("[{step}] {line}"));
    }

    fn stderr_line(&self, text: &str) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(text);
            }
            None => {
                let _ = writeln!(std::io::stderr().lock(), "{text}");
            }
        }
    }

    /// A transfer bar for one clone or fetch (terminal only).
    pub fn transfer_bar(&self, repo: &str) -> Option<ProgressBar> {
        let m = self.multi.as_ref()?;
        let style =
            ProgressStyle::with_template("{prefix:.bold} [{bar:30}] {pos}/{len} objects {msg}")
                .expect("valid template")
                .progress_chars("=> ");
        let bar = m.add(ProgressBar::new(0).with_style(style));
        bar.set_prefix(repo.to_string());
        Some(bar)
    }

    /// A spinner while a step runs (terminal only).
    pub fn step_spinner(&self, step: &str) -> Option<ProgressBar> {
        let m = self.multi.as_ref()?;
        let bar = m.add(ProgressBar::new_spinner());
        bar.set_message(format!("running {step}"));
        bar.enable_steady_tick(Duration::from_millis(120));
        Some(bar)
    }
}
