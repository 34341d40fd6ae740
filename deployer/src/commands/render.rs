//! `deployer render`: print the rotation template as `up` would send it.

use anyhow::Context;

use crate::artifacts;
use crate::aws::Clients;
use crate::config::Settings;
use crate::progress::LineReporter;
use crate::stack::Stacks;
use crate::template::{self, CodeLocation};

use super::{print_result, OutputFormat, RotatorSource};

/// Result of `render` in JSON: the template text.
#[derive(Debug, serde::Serialize)]
pub struct RenderResult {
    pub template: String,
}

/// Code location flags of `render`; whatever is missing is worked out as `up` would.
#[derive(Debug, Default, Clone)]
pub struct CodeOverrides {
    pub bucket: Option<String>,
    pub key: Option<String>,
}

/// Renders the template and prints it on stdout.
pub async fn run(
    settings: &Settings,
    source: &RotatorSource,
    overrides: CodeOverrides,
    format: OutputFormat,
) -> anyhow::Result<()> {
    let key = match overrides.key {
        Some(key) => key,
        None => source
            .package()
            .context("cannot package the rotator")?
            .key(),
    };
    let bucket = match overrides
        .bucket
        .or_else(|| settings.artifacts_bucket.clone())
    {
        Some(bucket) => bucket,
        None => lookup_bucket(settings).await?,
    };

    let rendered = template::render_rotation(settings, &CodeLocation { bucket, key })?;
    match format {
        OutputFormat::Text => print!("{rendered}"),
        OutputFormat::Json => print_result(format, &RenderResult { template: rendered }, |_| {
            String::new()
        }),
    }
    Ok(())
}

async fn lookup_bucket(settings: &Settings) -> anyhow::Result<String> {
    let clients = Clients::load(&settings.region).await;
    let reporter = LineReporter::new();
    let stacks = Stacks::new(&clients.cloudformation, &reporter);

    artifacts::existing_bucket(&stacks, &settings.artifacts_stack_name)
        .await?
        .with_context(|| {
            format!(
                "artifacts stack {} does not exist; pass --code-bucket, set `artifacts_bucket`, or run `deployer up` once",
                settings.artifacts_stack_name
            )
        })
}
