//! Progress output: planned changes and stack events, drawn on stderr so
//! stdout carries only results.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::changes::{Action, PlannedChange, Replacement};
use crate::stack::ResourceEvent;

/// Receives what stack operations do, for showing to the user.
pub trait Reporter: Sync {
    /// A change set's changes, before they are executed.
    fn planned(&self, stack: &str, changes: &[PlannedChange]);

    /// A new stack event.
    fn event(&self, stack: &str, event: &ResourceEvent);

    /// A step worth telling the user about.
    fn note(&self, message: &str);

    /// Shows that `stack` is still in `status` after `elapsed`; called on
    /// every poll while an operation runs.
    fn waiting(&self, _stack: &str, _status: &str, _elapsed: Duration) {}

    /// Removes what `waiting` drew, once the stack settled.
    fn done_waiting(&self) {}
}

/// Frames of the spinner drawn while a stack operation runs.
const SPINNER: [&str; 4] = ["|", "/", "-", "\\"];

/// Writes one line per change or event to stderr, coloured on a terminal
/// unless `NO_COLOR` is set. On a terminal, a spinner line below the events
/// shows the stack's status and the time spent while an operation runs.
pub struct LineReporter {
    colour: bool,
    live: bool,
    spinner_drawn: AtomicBool,
    frame: AtomicUsize,
}

impl LineReporter {
    pub fn new() -> Self {
        LineReporter {
            colour: colour_enabled(),
            live: std::io::stderr().is_terminal(),
            spinner_drawn: AtomicBool::new(false),
            frame: AtomicUsize::new(0),
        }
    }

    fn paint(&self, text: &str, code: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn write(&self, line: &str) {
        let mut stderr = std::io::stderr().lock();
        if self.spinner_drawn.swap(false, Ordering::Relaxed) {
            let _ = write!(stderr, "\r\x1b[2K");
        }
        let _ = writeln!(stderr, "{line}");
    }
}

impl Default for LineReporter {
    fn default() -> Self {
        Self::new()
    }
}

impl Reporter for LineReporter {
    fn planned(&self, stack: &str, changes: &[PlannedChange]) {
        self.write(&format!("stack {stack}: {} change(s)", changes.len()));
        for change in changes {
            self.write(&change_line(change, self.colour));
        }
    }

    fn event(&self, _stack: &str, event: &ResourceEvent) {
        let colour = status_colour(&event.status);
        let status = format!("{:<20}", event.status);
        let mut line = format!(
            "  {} {} ({})",
            self.paint(&status, colour),
            event.logical_id,
            event.resource_type
        );
        if let Some(reason) = event.reason.as_deref().filter(|reason| !reason.is_empty()) {
            line.push_str(&format!(": {reason}"));
        }
        self.write(&line);
    }

    fn note(&self, message: &str) {
        self.write(message);
    }

    fn waiting(&self, stack: &str, status: &str, elapsed: Duration) {
        if !self.live {
            return;
        }
        let frame = self.frame.fetch_add(1, Ordering::Relaxed);
        let mut stderr = std::io::stderr().lock();
        let _ = write!(
            stderr,
            "\r\x1b[2K{}",
            spinner_line(frame, stack, status, elapsed)
        );
        let _ = stderr.flush();
        self.spinner_drawn.store(true, Ordering::Relaxed);
    }

    fn done_waiting(&self) {
        if self.spinner_drawn.swap(false, Ordering::Relaxed) {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
        }
    }
}

/// Formats the spinner line: a frame, the stack, its status and whole seconds spent.
fn spinner_line(frame: usize, stack: &str, status: &str, elapsed: Duration) -> String {
    format!(
        "{} stack {stack}: {status}, {} s",
        SPINNER[frame % SPINNER.len()],
        elapsed.as_secs()
    )
}

/// Whether stderr is a terminal and `NO_COLOR` is unset.
pub fn colour_enabled() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// Formats one planned change: marker, logical id, type, then notes on
/// replacement and on why it needs confirmation.
pub fn change_line(change: &PlannedChange, colour: bool) -> String {
    let (marker, code) = change_marker(change);
    let marker = match colour {
        true => format!("\x1b[{code}m{marker}\x1b[0m"),
        false => marker.to_string(),
    };
    let mut line = format!("  {marker} {} {}", change.logical_id, change.resource_type);
    if change.replaces() {
        line.push_str(match change.replacement {
            Replacement::Yes => " (replacement)",
            _ => " (may be replaced)",
        });
    }
    if let Some(reason) = change.confirmation_reason() {
        line.push_str(&format!(" [{reason}]"));
    }
    line
}

/// Marks an added resource `+`, a modified one `~`, a replaced one `!` and a removed one `-`.
fn change_marker(change: &PlannedChange) -> (&'static str, &'static str) {
    match change.action {
        Action::Add => ("+", "32"),
        Action::Remove => ("-", "31"),
        _ if change.replaces() => ("!", "33"),
        _ => ("~", "33"),
    }
}

/// Folds CloudFormation statuses into green (done), red (failed) and yellow (in progress).
fn status_colour(status: &str) -> &'static str {
    if status.ends_with("_FAILED") || status.contains("ROLLBACK") {
        "31"
    } else if status.ends_with("_COMPLETE") {
        "32"
    } else {
        "33"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(action: Action, replacement: Replacement) -> PlannedChange {
        PlannedChange {
            action,
            logical_id: "TokenSecret".into(),
            resource_type: "AWS::SecretsManager::Secret".into(),
            replacement,
            access_change: false,
        }
    }

    #[test]
    fn markers_by_action() {
        assert_eq!(change_marker(&change(Action::Add, Replacement::No)).0, "+");
        assert_eq!(
            change_marker(&change(Action::Remove, Replacement::No)).0,
            "-"
        );
        assert_eq!(
            change_marker(&change(Action::Modify, Replacement::No)).0,
            "~"
        );
        assert_eq!(
            change_marker(&change(Action::Modify, Replacement::Yes)).0,
            "!"
        );
        assert_eq!(
            change_marker(&change(Action::Modify, Replacement::Conditional)).0,
            "!"
        );
    }

    #[test]
    fn secret_replacement_line_names_reason() {
        let line = change_line(&change(Action::Modify, Replacement::Yes), false);

        assert_eq!(
            line,
            "  ! TokenSecret AWS::SecretsManager::Secret (replacement) [replaces or removes the secret, which changes its ARN]"
        );
    }

    #[test]
    fn spinner_line_shows_status_and_time() {
        let line = spinner_line(
            5,
            "tokens",
            "UPDATE_IN_PROGRESS",
            Duration::from_millis(12_400),
        );

        assert_eq!(line, "/ stack tokens: UPDATE_IN_PROGRESS, 12 s");
    }

    #[test]
    fn statuses_fold_into_three_colours() {
        assert_eq!(status_colour("CREATE_COMPLETE"), "32");
        assert_eq!(status_colour("CREATE_FAILED"), "31");
        assert_eq!(status_colour("UPDATE_ROLLBACK_COMPLETE"), "31");
        assert_eq!(status_colour("CREATE_IN_PROGRESS"), "33");
    }
}
