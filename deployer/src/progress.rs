//! Progress output: planned changes and stack events, drawn on stderr so
//! stdout carries only results.

use std::io::{IsTerminal, Write};

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
    fn statuses_fold_into_three_colours() {
        assert_eq!(status_colour("CREATE_COMPLETE"), "32");
        assert_eq!(status_colour("CREATE_FAILED"), "31");
        assert_eq!(status_colour("UPDATE_ROLLBACK_COMPLETE"), "31");
        assert_eq!(status_colour("CREATE_IN_PROGRESS"), "33");
    }
}
