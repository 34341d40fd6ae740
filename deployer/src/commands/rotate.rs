//! `deployer rotate`: start a rotation and wait until the new version is
//! AWSCURRENT, or until the wait times out with the version still pending.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;

use crate::aws::{error_message, Clients};
use crate::config::Settings;
use crate::progress::{LineReporter, Reporter};
use crate::stack::Stacks;

use super::{print_result, OutputFormat};

/// Pause between two reads of the secret's version stages.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Result of a rotation that finished.
#[derive(Debug, Serialize)]
pub struct RotateResult {
    pub stack: String,
    pub secret_arn: String,
    pub version_id: String,
    pub previous_version_id: Option<String>,
    pub seconds: u64,
}

/// Rotates the stack's secret and waits for the outcome.
pub async fn run(
    settings: &Settings,
    timeout: Duration,
    format: OutputFormat,
) -> anyhow::Result<()> {
    let clients = Clients::load(&settings.region).await;
    let reporter = LineReporter::new();
    let stacks = Stacks::new(&clients.cloudformation, &reporter);

    let stack = &settings.stack_name;
    let state = stacks.describe_deployed(stack).await?;
    let secret = state.output("SecretArn")?;
    let function = state.output("FunctionName").unwrap_or_default();

    let previous = current_version(&clients.secrets, secret).await?;
    let started = Instant::now();
    let version = start_or_join(&clients.secrets, secret, timeout, &reporter).await?;

    wait_until_current(&clients.secrets, secret, &version, timeout, function).await?;
    let result = RotateResult {
        stack: stack.clone(),
        secret_arn: secret.to_string(),
        version_id: version,
        previous_version_id: previous,
        seconds: started.elapsed().as_secs(),
    };
    print_result(format, &result, |result| {
        format!(
            "secret {}: rotated in {} s; version {} is AWSCURRENT",
            result.secret_arn, result.seconds, result.version_id
        )
    });
    Ok(())
}

/// Starts a rotation and returns its new version. When a version is already
/// AWSPENDING, Secrets Manager rejects a new rotation because it takes the
/// pending one to be still running, so this returns that version to wait for.
async fn start_or_join(
    secrets: &aws_sdk_secretsmanager::Client,
    secret: &str,
    timeout: Duration,
    reporter: &dyn Reporter,
) -> anyhow::Result<String> {
    let joined = |version: &str| {
        format!(
            "secret {secret}: version {version} is already AWSPENDING from a rotation that is running or stopped midway; waiting up to {} s for it to become AWSCURRENT instead of starting another",
            timeout.as_secs()
        )
    };
    if let Some(version) = pending_version(secrets, secret).await? {
        reporter.note(&joined(&version));
        return Ok(version);
    }

    let started = match start_rotation(secrets, secret).await {
        Ok(version) => version,
        // Another rotation may have started between the check and the call.
        Err(err) => match pending_version(secrets, secret).await? {
            Some(version) => {
                reporter.note(&joined(&version));
                return Ok(version);
            }
            None => return Err(err),
        },
    };
    reporter.note(&format!(
        "secret {secret}: rotation started, new version {started}; waiting up to {} s for it to become AWSCURRENT",
        timeout.as_secs()
    ));
    Ok(started)
}

/// Returns the version labelled AWSPENDING and not AWSCURRENT, if any.
async fn pending_version(
    secrets: &aws_sdk_secretsmanager::Client,
    secret: &str,
) -> anyhow::Result<Option<String>> {
    let stages = version_stages(secrets, secret).await?;
    let has = |labels: &[String], label: &str| labels.iter().any(|name| name == label);
    Ok(stages
        .into_iter()
        .find(|(_, labels)| has(labels, "AWSPENDING") && !has(labels, "AWSCURRENT"))
        .map(|(version, _)| version))
}

async fn start_rotation(
    secrets: &aws_sdk_secretsmanager::Client,
    secret: &str,
) -> anyhow::Result<String> {
    let response = secrets
        .rotate_secret()
        .secret_id(secret)
        .send()
        .await
        .map_err(|err| {
            anyhow::anyhow!(
                "RotateSecret on {secret} failed: {}; when a rotation is still running or an earlier one stopped midway with an AWSPENDING version, wait for it or read the rotator's log group, then run `deployer rotate` again",
                error_message(&err)
            )
        })?;
    response
        .version_id()
        .map(str::to_string)
        .context("RotateSecret returned no version id")
}

/// Returns the version that has the AWSCURRENT label.
async fn current_version(
    secrets: &aws_sdk_secretsmanager::Client,
    secret: &str,
) -> anyhow::Result<Option<String>> {
    let stages = version_stages(secrets, secret).await?;
    Ok(stages
        .into_iter()
        .find(|(_, labels)| labels.iter().any(|label| label == "AWSCURRENT"))
        .map(|(version, _)| version))
}

async fn version_stages(
    secrets: &aws_sdk_secretsmanager::Client,
    secret: &str,
) -> anyhow::Result<Vec<(String, Vec<String>)>> {
    let description = secrets
        .describe_secret()
        .secret_id(secret)
        .send()
        .await
        .map_err(|err| {
            anyhow::anyhow!("DescribeSecret on {secret} failed: {}", error_message(&err))
        })?;
    Ok(description
        .version_ids_to_stages()
        .map(|stages| {
            stages
                .iter()
                .map(|(version, labels)| (version.clone(), labels.clone()))
                .collect()
        })
        .unwrap_or_default())
}

/// Waits until `version` has AWSCURRENT. The rotation counts as failed when
/// the timeout passes while the version is still only AWSPENDING, because
/// the function promotes it only after every step succeeded.
async fn wait_until_current(
    secrets: &aws_sdk_secretsmanager::Client,
    secret: &str,
    version: &str,
    timeout: Duration,
    function: &str,
) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let stages = version_stages(secrets, secret).await?;
        let labels = stages
            .iter()
            .find(|(id, _)| id == version)
            .map(|(_, labels)| labels.clone())
            .unwrap_or_default();
        if labels.iter().any(|label| label == "AWSCURRENT") {
            return Ok(());
        }

        if started.elapsed() >= timeout {
            let state = match labels.is_empty() {
                true => "has no label".to_string(),
                false => format!("is still {}", labels.join(", ")),
            };
            bail!(
                "rotation of {secret} failed: after {} s version {version} {state} and was not promoted to AWSCURRENT; the rotation function's errors are in log group /aws/lambda/{function}",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}
