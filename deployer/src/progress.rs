//! Progress output: planned changes and stack events, drawn on stderr so
//! stdout carries only results.

use std::io::{IsTerminal, Write};

use crate::stack::{PlannedChange, ResourceEvent};

/// Receives what stack operations do, for showing to the user.
pub trait Reporter: Sync {
    /// A change set's changes, before they are executed.
    fn planned(&self, stack: &str, changes: &[PlannedChange]);

    /// A new stack event.
    fn event(&self, stack: &str, event: &ResourceEvent);

    /// A step worth telling the user about.
    fn note(&self, message: &str);
}

/// Writes one line per change or event to stderr, coloured on a terminal
/// unless `NO_COLOR` is set.
pub struct LineReporter {
    colour: bool,
}

impl LineReporter {
    pub fn new() -> Self {
        LineReporter {
            colour: colour_enabled(),
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
        let _ = writeln!(std::io::stderr().lock(), "{line}");
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
            let (marker, colour) = change_marker(change);
            let replacement = if change.replacement {
                " (replacement)"
            } else {
                ""
            };
            self.write(&format!(
                "  {} {} {}{replacement}",
                self.paint(marker, colour),
                change.logical_id,
                change.resource_type
            ));
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
}

/// Whether stderr is a terminal and `NO_COLOR` is unset.
pub fn colour_enabled() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// Marks an added resource `+`, a modified one `~`, a replaced one `!` and a removed one `-`.
fn change_marker(change: &PlannedChange) -> (&'static str, &'static str) {
    match change.action.as_str() {
        "Add" => ("+", "32"),
        "Remove" => ("-", "31"),
        _ if change.replacement => ("!", "33"),
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

    fn change(action: &str, replacement: bool) -> PlannedChange {
        PlannedChange {
            action: action.into(),
            logical_id: "TokenSecret".into(),
            resource_type: "AWS::SecretsManager::Secret".into(),
            replacement,
        }
    }

    #[test]
    fn markers_by_action() {
        assert_eq!(change_marker(&change("Add", false)).0, "+");
        assert_eq!(change_marker(&change("Remove", false)).0, "-");
        assert_eq!(change_marker(&change("Modify", false)).0, "~");
        assert_eq!(change_marker(&change("Modify", true)).0, "!");
    }

    #[test]
    fn statuses_fold_into_three_colours() {
        assert_eq!(status_colour("CREATE_COMPLETE"), "32");
        assert_eq!(status_colour("CREATE_FAILED"), "31");
        assert_eq!(status_colour("UPDATE_ROLLBACK_COMPLETE"), "31");
        assert_eq!(status_colour("CREATE_IN_PROGRESS"), "33");
    }
}
