//! `deployer diff`: preview what `up` would change, through a change set
//! that is deleted afterwards.

use anyhow::Context;
use serde::Serialize;

use crate::artifacts;
use crate::aws::Clients;
use crate::changes::PlannedChange;
use crate::config::Settings;
use crate::progress::{change_line, LineReporter};
use crate::stack::{Recovery, Stacks};
use crate::template::{self, CodeLocation};

use super::confirm::sensitive_changes;
use super::{print_result, OutputFormat, RotatorSource};

/// Bucket name put in the previewed template when the artifacts stack does
/// not exist yet; `up` creates that stack and uses its real bucket.
const BUCKET_NOT_CREATED: &str = "artifacts-bucket-not-created-yet";

/// Result of `diff`: the changes `up` would make.
#[derive(Debug, Serialize)]
pub struct DiffResult {
    pub stack: String,
    pub creates_stack: bool,
    pub changes: Vec<PlannedChange>,
    /// Changes for which `up` asks, or requires `--yes` without a terminal.
    pub needs_confirmation: Vec<String>,
}

/// Creates a change set for the rendered template, prints its changes and
/// deletes it, together with the empty stack a new stack's change set makes.
pub async fn run(
    settings: &Settings,
    source: &RotatorSource,
    format: OutputFormat,
) -> anyhow::Result<()> {
    let artifact = source.package().context("cannot package the rotator")?;

    let clients = Clients::load(&settings.region).await;
    let reporter = LineReporter::new();
    let stacks = Stacks::new(&clients.cloudformation, &reporter);

    let bucket = match &settings.artifacts_bucket {
        Some(bucket) => bucket.clone(),
        None => artifacts::existing_bucket(&stacks, &settings.artifacts_stack_name)
            .await?
            .unwrap_or_else(|| BUCKET_NOT_CREATED.to_string()),
    };
    let code = CodeLocation {
        bucket,
        key: artifact.key(),
    };
    let rendered = template::render_rotation(settings, &code)?;

    let plan = stacks
        .plan(&settings.stack_name, &rendered, Recovery::Refuse)
        .await?;
    let result = match plan {
        None => DiffResult {
            stack: settings.stack_name.clone(),
            creates_stack: false,
            changes: Vec::new(),
            needs_confirmation: Vec::new(),
        },
        Some(plan) => {
            stacks.discard(&plan).await?;
            DiffResult {
                stack: settings.stack_name.clone(),
                creates_stack: plan.creates_stack,
                needs_confirmation: sensitive_changes(&plan),
                changes: plan.changes,
            }
        }
    };

    print_result(format, &result, describe);
    Ok(())
}

fn describe(result: &DiffResult) -> String {
    if result.changes.is_empty() {
        return format!("stack {}: no changes", result.stack);
    }

    let verb = match result.creates_stack {
        true => "would be created with",
        false => "would get",
    };
    let mut lines = vec![format!(
        "stack {} {verb} {} change(s):",
        result.stack,
        result.changes.len()
    )];
    lines.extend(
        result
            .changes
            .iter()
            .map(|change| change_line(change, false)),
    );
    if !result.needs_confirmation.is_empty() {
        lines.push(String::new());
        lines.push(format!(
            "`deployer up` asks before applying {} of them, or needs --yes without a terminal",
            result.needs_confirmation.len()
        ));
    }
    lines.join("\n")
}
