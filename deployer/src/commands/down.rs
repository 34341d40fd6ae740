//! `deployer down`: delete the rotation stack, and the artifacts on request.

use serde::Serialize;

use crate::artifacts;
use crate::aws::Clients;
use crate::config::Settings;
use crate::progress::LineReporter;
use crate::stack::{DeleteOutcome, Stacks};

use super::{print_result, OutputFormat};

/// Result of `down`: which stacks it deleted.
#[derive(Debug, Serialize)]
pub struct DownResult {
    pub stack: String,
    pub stack_deleted: bool,
    pub artifacts_deleted: Option<bool>,
}

/// Deletes the stack and waits; with `with_artifacts`, also empties the
/// artifacts bucket and deletes its stack. Running it again is harmless.
pub async fn run(
    settings: &Settings,
    with_artifacts: bool,
    format: OutputFormat,
) -> anyhow::Result<()> {
    let clients = Clients::load(&settings.region).await;
    let reporter = LineReporter::new();
    let stacks = Stacks::new(&clients.cloudformation, &reporter);

    let outcome = stacks.delete(&settings.stack_name).await?;
    let artifacts_deleted = match with_artifacts {
        true => Some(delete_artifacts(settings, &clients, &stacks).await?),
        false => None,
    };

    let result = DownResult {
        stack: settings.stack_name.clone(),
        stack_deleted: outcome == DeleteOutcome::Deleted,
        artifacts_deleted,
    };
    print_result(format, &result, describe);
    Ok(())
}

async fn delete_artifacts(
    settings: &Settings,
    clients: &Clients,
    stacks: &Stacks<'_>,
) -> anyhow::Result<bool> {
    let artifacts_stack = &settings.artifacts_stack_name;
    if let Some(bucket) = artifacts::existing_bucket(stacks, artifacts_stack).await? {
        let removed = artifacts::empty_bucket(&clients.s3, &bucket).await?;
        tracing::info!(bucket, objects = removed, "emptied the artifacts bucket");
    }

    let outcome = stacks.delete(artifacts_stack).await?;
    Ok(outcome == DeleteOutcome::Deleted)
}

fn describe(result: &DownResult) -> String {
    let mut text = match result.stack_deleted {
        true => format!("stack {}: deleted", result.stack),
        false => format!("stack {}: already absent", result.stack),
    };
    match result.artifacts_deleted {
        Some(true) => text.push_str("\nartifacts stack: deleted"),
        Some(false) => text.push_str("\nartifacts stack: already absent"),
        None => {}
    }
    text
}
