//! Confirmation of planned changes that widen access or replace the secret.

use std::io::{BufRead, IsTerminal, Write};

use crate::changes::PlannedChange;
use crate::stack::ChangeSetPlan;

/// Source of approval for changes that need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Approval {
    /// `--yes`: approved in advance, as a CI job does.
    Given,
    /// Ask on the terminal; fail when there is none.
    Ask,
}

/// Changes that needed confirmation and did not get it; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum NotConfirmed {
    #[error("stack {stack}: {} change(s) need confirmation and there is no terminal to ask on:{}\nnothing was changed; review them with `deployer diff`, then run `deployer up --yes`", .changes.len(), list(.changes))]
    NoTerminal { stack: String, changes: Vec<String> },

    #[error("stack {stack}: changes declined; nothing was changed")]
    Declined { stack: String },
}

fn list(changes: &[String]) -> String {
    changes
        .iter()
        .map(|change| format!("\n  {change}"))
        .collect()
}

/// Checks that the plan may run. Changes that widen access or replace the
/// secret of an existing stack need `--yes` or a "y" on the terminal.
pub async fn confirm(plan: &ChangeSetPlan, approval: Approval) -> Result<(), NotConfirmed> {
    let sensitive = sensitive_changes(plan);
    if sensitive.is_empty() || approval == Approval::Given {
        return Ok(());
    }

    let terminal = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if !terminal {
        return Err(NotConfirmed::NoTerminal {
            stack: plan.stack.clone(),
            changes: sensitive,
        });
    }

    let question = format!(
        "{} change(s) above widen access or replace the secret. Apply them to stack {}? [y/N] ",
        sensitive.len(),
        plan.stack
    );
    // The reply is read on a blocking thread, so that a signal handled by
    // the async runtime still ends the command while the prompt waits.
    let approved = tokio::task::spawn_blocking(move || ask(&question))
        .await
        .unwrap_or(false);
    match approved {
        true => Ok(()),
        false => Err(NotConfirmed::Declined {
            stack: plan.stack.clone(),
        }),
    }
}

/// Describes each change of the plan that needs confirmation. A stack being
/// created has nothing yet whose access could widen, so it needs none.
pub fn sensitive_changes(plan: &ChangeSetPlan) -> Vec<String> {
    if plan.creates_stack {
        return Vec::new();
    }
    plan.changes.iter().filter_map(describe).collect()
}

fn describe(change: &PlannedChange) -> Option<String> {
    let reason = change.confirmation_reason()?;
    Some(format!(
        "{} ({}): {reason}",
        change.logical_id, change.resource_type
    ))
}

/// Asks a yes/no question on stderr and reads the reply from stdin. Only
/// "y" or "yes" approves.
fn ask(question: &str) -> bool {
    // The lock on stderr is released before the read, so that other threads
    // can report while the prompt waits.
    {
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, "{question}");
        let _ = stderr.flush();
    }

    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::changes::{Action, Replacement};

    fn plan(creates_stack: bool, resource_type: &str) -> ChangeSetPlan {
        ChangeSetPlan {
            stack: "tokens".into(),
            change_set: "deployer-1".into(),
            creates_stack,
            changes: vec![PlannedChange {
                action: Action::Modify,
                logical_id: "RotatorPolicy".into(),
                resource_type: resource_type.into(),
                replacement: Replacement::No,
                access_change: crate::changes::grants_access(resource_type),
            }],
        }
    }

    #[test]
    fn new_stack_needs_no_confirmation() {
        assert!(sensitive_changes(&plan(true, "AWS::IAM::Policy")).is_empty());
    }

    #[test]
    fn policy_update_needs_confirmation() {
        assert_eq!(
            sensitive_changes(&plan(false, "AWS::IAM::Policy")),
            ["RotatorPolicy (AWS::IAM::Policy): changes IAM or network access"]
        );
    }

    #[tokio::test]
    async fn yes_flag_approves_without_terminal() {
        let plan = plan(false, "AWS::IAM::Policy");

        assert!(confirm(&plan, Approval::Given).await.is_ok());
    }
}
