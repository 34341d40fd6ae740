//! The deployer's commands, each in its own module.

pub mod confirm;
pub mod diff;
pub mod down;
pub mod init;
pub mod psql;
pub mod render;
pub mod rotate;
pub mod schema;
pub mod status;
pub mod up;
pub mod verify;

use std::path::PathBuf;

use serde::Serialize;

use crate::package::{self, Artifact, PackageError};
use crate::stack::ResourceFailure;

/// How results are printed on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Lines for people.
    Text,
    /// One JSON document.
    Json,
}

/// Prints a command's result on stdout in the chosen format.
pub fn print_result<T: Serialize>(
    format: OutputFormat,
    result: &T,
    text: impl FnOnce(&T) -> String,
) {
    match format {
        OutputFormat::Text => println!("{}", text(result)),
        OutputFormat::Json => match serde_json::to_string_pretty(result) {
            Ok(json) => println!("{json}"),
            Err(err) => tracing::error!(error = %err, "cannot encode the result as JSON"),
        },
    }
}

/// Error document printed on stdout with `--output json` when a command fails.
#[derive(Debug, Serialize)]
pub struct ErrorDocument {
    pub error: ErrorDetail,
}

/// What failed, with the exit code the process ends with.
#[derive(Debug, Serialize)]
pub struct ErrorDetail {
    pub kind: &'static str,
    pub exit_code: u8,
    pub message: String,
    /// Resources that failed in the stack operation, with CloudFormation's reasons.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed_resources: Vec<ResourceFailure>,
}

/// Input that a command rejects before any AWS call, such as a missing
/// file; it ends the command with the bad-input exit code.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// Where the rotator's binary comes from.
#[derive(Debug, Clone)]
pub enum RotatorSource {
    /// Build it from this workspace.
    Build { workspace: PathBuf },
    /// Use a binary built beforehand.
    Prebuilt { path: PathBuf },
}

impl RotatorSource {
    /// Builds the rotator if needed, checks the binary and zips it.
    pub fn package(&self) -> Result<Artifact, PackageError> {
        let path = match self {
            RotatorSource::Build { workspace } => return package::package_workspace(workspace),
            RotatorSource::Prebuilt { path } => path.clone(),
        };

        let binary = package::read_checked_binary(&path)?;
        let artifact = Artifact::from_binary(&binary)?;
        tracing::info!(path = %path.display(), zip_bytes = artifact.zip.len(), sha256 = %artifact.sha256_hex, "packaged the rotator");
        Ok(artifact)
    }
}
