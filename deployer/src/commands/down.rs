//! `deployer down`: delete the rotation stack, and the artifacts on request.

use anyhow::bail;
use serde::Serialize;

use crate::artifacts;
use crate::aws::Clients;
use crate::config::Settings;
use crate::progress::{LineReporter, Reporter};
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
/// artifacts bucket and deletes its stack, unless other stacks still use
/// the bucket. Running it again is harmless.
pub async fn run(
    settings: &Settings,
    with_artifacts: bool,
    format: OutputFormat,
) -> anyhow::Result<()> {
    let clients = Clients::load(&settings.region).await;
    let reporter = LineReporter::new();
    let stacks = Stacks::new(&clients.cloudformation, &reporter);

    if with_artifacts {
        check_artifacts_unused(settings, &stacks).await?;
    }

    let outcome = stacks.delete(&settings.stack_name).await?;
    let artifacts_deleted = match with_artifacts {
        true => delete_artifacts(settings, &clients, &stacks, &reporter).await?,
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

/// Fails, before anything is deleted, when stacks other than this one run
/// code from the artifacts stack's bucket, since their next update or
/// rollback would need it.
async fn check_artifacts_unused(settings: &Settings, stacks: &Stacks<'_>) -> anyhow::Result<()> {
    if settings.artifacts_bucket.is_some() {
        return Ok(());
    }
    let artifacts_stack = &settings.artifacts_stack_name;
    let Some(bucket) = artifacts::existing_bucket(stacks, artifacts_stack).await? else {
        return Ok(());
    };

    let users: Vec<String> = stacks
        .stacks_with_parameter("CodeBucket", &bucket)
        .await?
        .into_iter()
        .filter(|name| name != &settings.stack_name)
        .collect();
    if !users.is_empty() {
        bail!(
            "bucket {bucket} of artifacts stack {artifacts_stack} still contains the rotator code of stack(s) {}; nothing was deleted; remove those stacks first, or run `deployer down` without --artifacts",
            users.join(", ")
        );
    }
    Ok(())
}

/// Empties the bucket and deletes the artifacts stack. Returns `None` when
/// the settings name a bucket of their own, which the deployer leaves alone.
async fn delete_artifacts(
    settings: &Settings,
    clients: &Clients,
    stacks: &Stacks<'_>,
    reporter: &dyn Reporter,
) -> anyhow::Result<Option<bool>> {
    if let Some(bucket) = &settings.artifacts_bucket {
        reporter.note(&format!("artifacts_bucket is set, so there is no artifacts stack to delete; bucket {bucket} is left as it is"));
        return Ok(None);
    }

    let artifacts_stack = &settings.artifacts_stack_name;
    if let Some(bucket) = artifacts::existing_bucket(stacks, artifacts_stack).await? {
        let removed = artifacts::empty_bucket(&clients.s3, &bucket).await?;
        tracing::info!(bucket, objects = removed, "emptied the artifacts bucket");
    }

    let outcome = stacks.delete(artifacts_stack).await?;
    Ok(Some(outcome == DeleteOutcome::Deleted))
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
