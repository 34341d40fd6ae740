//! `deployer up`: package the rotator, upload it, apply the stack and check
//! what was deployed.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context};
use aws_sdk_lambda::types::LastUpdateStatus;
use serde::Serialize;

use crate::artifacts::{self, UploadOutcome};
use crate::aws::Clients;
use crate::changes::PlannedChange;
use crate::config::Settings;
use crate::package::Artifact;
use crate::progress::{LineReporter, Reporter};
use crate::stack::{
    overtaken_note, ApplyOutcome, Recovery, StackError, StackState, Stacks, MAX_PLANS,
};
use crate::template::{self, CodeLocation};

use super::confirm::{self, Approval};
use super::{print_result, OutputFormat, RotatorSource};

/// Maximum wait for Lambda to finish applying a code update.
const FUNCTION_UPDATE_TIMEOUT: Duration = Duration::from_secs(120);

/// Result of `up`: the outcome and the stack's outputs.
#[derive(Debug, Serialize)]
pub struct UpResult {
    pub stack: String,
    pub outcome: &'static str,
    pub artifact_uploaded: bool,
    pub code_bucket: String,
    pub code_key: String,
    pub code_sha256: String,
    pub changes: Vec<PlannedChange>,
    pub outputs: BTreeMap<String, String>,
}

/// Stack statuses after which the stack runs exactly its last template.
const SETTLED_STATUSES: [&str; 2] = ["CREATE_COMPLETE", "UPDATE_COMPLETE"];

/// Runs the whole deployment and prints the stack's outputs.
pub async fn run(
    settings: &Settings,
    source: &RotatorSource,
    format: OutputFormat,
    approval: Approval,
) -> anyhow::Result<()> {
    let artifact = source.package().context("cannot package the rotator")?;

    let clients = Clients::load(&settings.region).await;
    let reporter = LineReporter::new();
    let stacks = Stacks::new(&clients.cloudformation, &reporter);

    let result = match unchanged_code_location(&stacks, settings, &artifact).await? {
        Some((code, state)) => {
            reporter.note(&format!("stack {}: no changes", settings.stack_name));
            let deployed = Deployed {
                outcome: ApplyOutcome::Unchanged,
                changes: Vec::new(),
                uploaded: false,
            };
            finish(
                &clients, &reporter, settings, &artifact, code, state, deployed,
            )
            .await?
        }
        None => deploy(&clients, &stacks, &reporter, settings, &artifact, approval).await?,
    };

    print_result(format, &result, describe);
    Ok(())
}

/// Outcome, planned changes and upload of one run of `up`.
struct Deployed {
    outcome: ApplyOutcome,
    changes: Vec<PlannedChange>,
    uploaded: bool,
}

/// Returns the code location and state of a settled stack whose deployed
/// template is exactly the one `up` would send, so that `up` can skip the
/// artifacts lookup, the upload and the change set. Two AWS calls.
async fn unchanged_code_location(
    stacks: &Stacks<'_>,
    settings: &Settings,
    artifact: &Artifact,
) -> anyhow::Result<Option<(CodeLocation, StackState)>> {
    let Some(state) = stacks.describe(&settings.stack_name).await? else {
        return Ok(None);
    };
    if !SETTLED_STATUSES.contains(&state.status.as_str()) {
        return Ok(None);
    }

    let deployed = stacks.deployed_template(&settings.stack_name).await?;
    // NOTE: without an artifacts_bucket setting, the bucket is the one that
    // the deployed template names. An artifacts stack deleted by hand shows
    // only when the rotator changes and the full run looks the bucket up.
    let bucket = match &settings.artifacts_bucket {
        Some(bucket) => bucket.clone(),
        None => match template::rendered_code_bucket(&deployed) {
            Some(bucket) => bucket,
            None => return Ok(None),
        },
    };
    let code = CodeLocation {
        bucket,
        key: artifact.key(),
    };

    let unchanged = template::render_rotation(settings, &code)? == deployed;
    Ok(unchanged.then_some((code, state)))
}

/// Uploads the rotator where needed, applies the change set and checks the
/// result: the full run of `up`.
async fn deploy(
    clients: &Clients,
    stacks: &Stacks<'_>,
    reporter: &dyn Reporter,
    settings: &Settings,
    artifact: &Artifact,
    approval: Approval,
) -> anyhow::Result<UpResult> {
    let bucket = artifacts::ensure_bucket(
        stacks,
        settings.artifacts_bucket.as_deref(),
        &settings.artifacts_stack_name,
    )
    .await?;
    let upload = artifacts::upload(&clients.s3, &bucket, artifact).await?;
    let code = CodeLocation {
        bucket,
        key: artifact.key(),
    };

    let rendered = template::render_rotation(settings, &code)?;
    let (outcome, changes) =
        apply_confirmed(stacks, reporter, &settings.stack_name, &rendered, approval).await?;

    let state = stacks
        .describe(&settings.stack_name)
        .await?
        .with_context(|| {
            format!(
                "stack {} disappeared after it was applied",
                settings.stack_name
            )
        })?;
    let deployed = Deployed {
        outcome,
        changes,
        uploaded: upload == UploadOutcome::Uploaded,
    };
    finish(clients, reporter, settings, artifact, code, state, deployed).await
}

/// Checks the deployed function's code against the zip and builds the result.
async fn finish(
    clients: &Clients,
    reporter: &dyn Reporter,
    settings: &Settings,
    artifact: &Artifact,
    code: CodeLocation,
    state: StackState,
    deployed: Deployed,
) -> anyhow::Result<UpResult> {
    let outputs: BTreeMap<String, String> = state.outputs.into_iter().collect();
    let function = outputs
        .get("FunctionName")
        .context("the stack has no FunctionName output")?;
    check_code_hash(&clients.lambda, function, &artifact.code_sha256(), reporter).await?;

    Ok(UpResult {
        stack: settings.stack_name.clone(),
        outcome: outcome_name(deployed.outcome),
        artifact_uploaded: deployed.uploaded,
        code_bucket: code.bucket,
        code_key: code.key,
        code_sha256: artifact.code_sha256(),
        changes: deployed.changes,
        outputs,
    })
}

/// Plans the change set, shows it, gets confirmation where a change needs
/// it, and executes it. An unconfirmed change set is deleted unexecuted.
/// When another deploy executes its change set first, this plans again.
async fn apply_confirmed(
    stacks: &Stacks<'_>,
    reporter: &dyn Reporter,
    stack: &str,
    template: &str,
    approval: Approval,
) -> anyhow::Result<(ApplyOutcome, Vec<PlannedChange>)> {
    let mut attempt = 1;
    loop {
        let result = plan_confirm_execute(stacks, reporter, stack, template, approval).await;
        let overtaken = matches!(
            result
                .as_ref()
                .map_err(|err| err.downcast_ref::<StackError>()),
            Err(Some(StackError::ChangeSetGone { .. }))
        );
        if !overtaken || attempt == MAX_PLANS {
            return result;
        }

        reporter.note(&overtaken_note(stack));
        attempt += 1;
    }
}

async fn plan_confirm_execute(
    stacks: &Stacks<'_>,
    reporter: &dyn Reporter,
    stack: &str,
    template: &str,
    approval: Approval,
) -> anyhow::Result<(ApplyOutcome, Vec<PlannedChange>)> {
    let Some(plan) = stacks.plan(stack, template, Recovery::Recreate).await? else {
        return Ok((ApplyOutcome::Unchanged, Vec::new()));
    };
    reporter.planned(stack, &plan.changes);

    if let Err(err) = confirm::confirm(&plan, approval).await {
        stacks.discard(&plan).await?;
        return Err(err.into());
    }
    let outcome = stacks.execute(&plan).await?;
    Ok((outcome, plan.changes))
}

/// Checks that the deployed function runs exactly the zip that was uploaded.
async fn check_code_hash(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    expected: &str,
    reporter: &dyn Reporter,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    loop {
        let configuration = lambda
            .get_function_configuration()
            .function_name(function)
            .send()
            .await
            .with_context(|| format!("cannot read the configuration of function {function}"))?;

        let updating = configuration.last_update_status() == Some(&LastUpdateStatus::InProgress);
        if updating && started.elapsed() < FUNCTION_UPDATE_TIMEOUT {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }

        let deployed = configuration.code_sha256().unwrap_or_default();
        if deployed != expected {
            bail!("function {function} runs code with CodeSha256 {deployed}, but the uploaded zip has {expected}; run `deployer up` again");
        }
        reporter.note(&format!(
            "function {function}: CodeSha256 matches the uploaded zip"
        ));
        return Ok(());
    }
}

fn outcome_name(outcome: ApplyOutcome) -> &'static str {
    match outcome {
        ApplyOutcome::Created => "created",
        ApplyOutcome::Updated => "updated",
        ApplyOutcome::Unchanged => "unchanged",
    }
}

fn describe(result: &UpResult) -> String {
    let mut lines = vec![format!("stack {}: {}", result.stack, result.outcome)];
    for (key, value) in &result.outputs {
        lines.push(format!("  {key:<14} {value}"));
    }
    lines.push(format!(
        "  {:<14} s3://{}/{}",
        "Code", result.code_bucket, result.code_key
    ));

    if let Some(secret) = result.outputs.get("SecretArn") {
        lines.push(String::new());
        lines.push(format!(
            "Applications read the credentials with GetSecretValue on {secret}"
        ));
    }
    lines.join("\n")
}
