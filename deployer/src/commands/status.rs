//! `deployer status`: the stack, the secret's rotation, the current token's
//! lifetime and whether the deployed rotator matches a fresh package.

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use anyhow::Context;
use aws_sdk_secretsmanager::primitives::DateTimeFormat;
use serde::Serialize;

use crate::aws::{error_message, Clients};
use crate::config::Settings;
use crate::progress::LineReporter;
use crate::stack::Stacks;
use crate::token::{format_time, TokenLifetime};

use super::{print_result, OutputFormat, RotatorSource};

/// Result of `status`.
#[derive(Debug, Serialize)]
pub struct StatusResult {
    pub stack: String,
    pub stack_status: String,
    pub outputs: BTreeMap<String, String>,
    pub rotation: RotationStatus,
    pub token: TokenStatus,
    pub code: CodeStatus,
}

/// The secret's rotation settings and dates, as Secrets Manager reports them.
#[derive(Debug, Serialize)]
pub struct RotationStatus {
    pub enabled: bool,
    pub schedule: Option<String>,
    pub window: Option<String>,
    pub last_rotated: Option<String>,
    pub next_rotation: Option<String>,
    /// Version labelled AWSPENDING and not AWSCURRENT: a rotation that is
    /// running, or that stopped midway and blocks the next one.
    pub pending_version: Option<String>,
}

/// Password that the template writes into the secret until the first
/// rotation replaces it (templates/rotation.yaml).
const PLACEHOLDER_PASSWORD: &str = "pending-first-rotation";

/// The current token's lifetime, or why it could not be read.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum TokenStatus {
    Valid {
        signed_at: String,
        expires_at: String,
        lifetime_seconds: i64,
        expired: bool,
    },
    Unreadable {
        error: String,
    },
}

/// The deployed function's CodeSha256 against the package built now.
#[derive(Debug, Serialize)]
pub struct CodeStatus {
    pub deployed_sha256: String,
    pub packaged_sha256: String,
    pub matches: bool,
}

/// Reads the stack, the secret and the function, and prints what it found.
pub async fn run(
    settings: &Settings,
    source: &RotatorSource,
    format: OutputFormat,
) -> anyhow::Result<()> {
    let artifact = source.package().context("cannot package the rotator")?;
    let clients = Clients::load(&settings.region).await;
    let reporter = LineReporter::new();
    let stacks = Stacks::new(&clients.cloudformation, &reporter);

    let stack = &settings.stack_name;
    let state = stacks.describe_deployed(stack).await?;
    let secret = state.output("SecretArn")?;
    let function = state.output("FunctionName")?;
    let outputs: BTreeMap<String, String> = state.outputs.iter().cloned().collect();

    let result = StatusResult {
        stack: stack.clone(),
        stack_status: state.status.clone(),
        rotation: rotation_status(&clients.secrets, secret).await?,
        token: token_status(&clients.secrets, secret).await,
        code: code_status(&clients.lambda, function, artifact.code_sha256()).await?,
        outputs,
    };
    print_result(format, &result, describe);
    Ok(())
}

async fn rotation_status(
    secrets: &aws_sdk_secretsmanager::Client,
    secret: &str,
) -> anyhow::Result<RotationStatus> {
    let description = secrets
        .describe_secret()
        .secret_id(secret)
        .send()
        .await
        .map_err(|err| {
            anyhow::anyhow!("DescribeSecret on {secret} failed: {}", error_message(&err))
        })?;

    let rules = description.rotation_rules();
    let date = |time: Option<&aws_sdk_secretsmanager::primitives::DateTime>| {
        time.and_then(|time| time.fmt(DateTimeFormat::DateTime).ok())
    };
    Ok(RotationStatus {
        enabled: description.rotation_enabled().unwrap_or(false),
        schedule: rules.and_then(|rules| rules.schedule_expression().map(str::to_string)),
        window: rules.and_then(|rules| rules.duration().map(str::to_string)),
        last_rotated: date(description.last_rotated_date()),
        next_rotation: date(description.next_rotation_date()),
        pending_version: pending_version(description.version_ids_to_stages()),
    })
}

/// Returns the version that carries AWSPENDING without AWSCURRENT, if any.
fn pending_version(stages: Option<&HashMap<String, Vec<String>>>) -> Option<String> {
    let has = |labels: &[String], label: &str| labels.iter().any(|name| name == label);
    stages?
        .iter()
        .find(|(_, labels)| has(labels, "AWSPENDING") && !has(labels, "AWSCURRENT"))
        .map(|(version, _)| version.clone())
}

/// Reads the AWSCURRENT token's lifetime. A failure is reported in the
/// result, not raised, because the secret's resource policy may deny its
/// value to the identity that runs the deployer.
async fn token_status(secrets: &aws_sdk_secretsmanager::Client, secret: &str) -> TokenStatus {
    match current_lifetime(secrets, secret).await {
        Ok(lifetime) => {
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|elapsed| elapsed.as_secs() as i64)
                .unwrap_or_default();
            TokenStatus::Valid {
                signed_at: format_time(lifetime.signed_at),
                expires_at: format_time(lifetime.expires_at()),
                lifetime_seconds: lifetime.expires_in,
                expired: lifetime.expires_at() <= now,
            }
        }
        Err(err) => TokenStatus::Unreadable {
            error: format!("{err:#}"),
        },
    }
}

async fn current_lifetime(
    secrets: &aws_sdk_secretsmanager::Client,
    secret: &str,
) -> anyhow::Result<TokenLifetime> {
    let value = secrets
        .get_secret_value()
        .secret_id(secret)
        .send()
        .await
        .map_err(|err| {
            anyhow::anyhow!("GetSecretValue on {secret} failed: {}", error_message(&err))
        })?;
    let fields: serde_json::Value = serde_json::from_str(value.secret_string().unwrap_or("{}"))
        .context("the secret's value is not JSON")?;
    let password = fields
        .get("password")
        .and_then(serde_json::Value::as_str)
        .context("the secret has no password field")?;
    if password == PLACEHOLDER_PASSWORD {
        anyhow::bail!("the secret still contains the placeholder that the stack wrote, so the first rotation has not finished; check the rotator's log group, then run `deployer rotate`");
    }
    Ok(TokenLifetime::parse(password)?)
}

async fn code_status(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    packaged: String,
) -> anyhow::Result<CodeStatus> {
    let configuration = lambda
        .get_function_configuration()
        .function_name(function)
        .send()
        .await
        .with_context(|| format!("cannot read the configuration of function {function}"))?;
    let deployed = configuration.code_sha256().unwrap_or_default().to_string();

    Ok(CodeStatus {
        matches: deployed == packaged,
        deployed_sha256: deployed,
        packaged_sha256: packaged,
    })
}

fn describe(result: &StatusResult) -> String {
    let mut lines = vec![format!("stack {}: {}", result.stack, result.stack_status)];
    for (key, value) in &result.outputs {
        lines.push(format!("  {key:<14} {value}"));
    }

    let rotation = &result.rotation;
    let unknown = |value: &Option<String>| value.clone().unwrap_or_else(|| "-".into());
    lines.push(format!(
        "rotation: {}, schedule {}, window {}",
        if rotation.enabled {
            "enabled"
        } else {
            "disabled"
        },
        unknown(&rotation.schedule),
        unknown(&rotation.window)
    ));
    lines.push(format!(
        "  last rotated   {}",
        unknown(&rotation.last_rotated)
    ));
    lines.push(format!(
        "  next rotation  {}",
        unknown(&rotation.next_rotation)
    ));
    if let Some(version) = &rotation.pending_version {
        lines.push(format!("  pending        version {version} is AWSPENDING: a rotation is running or stopped midway; Secrets Manager retries it, and the rotator's log group says why it failed"));
    }

    lines.push(match &result.token {
        TokenStatus::Valid {
            signed_at,
            expires_at,
            expired,
            ..
        } => format!(
            "token: signed {signed_at}, expires {expires_at}{}",
            if *expired { " (expired)" } else { "" }
        ),
        TokenStatus::Unreadable { error } => format!("token: unreadable: {error}"),
    });

    lines.push(match result.code.matches {
        true => "code: the deployed rotator matches a fresh package".to_string(),
        false => format!(
            "code: the deployed rotator ({}) differs from a fresh package ({}); run `deployer up`",
            result.code.deployed_sha256, result.code.packaged_sha256
        ),
    });
    lines.join("\n")
}
