//! `deployer init`: write a commented starter settings file.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use super::{print_result, BadInput, OutputFormat};

/// Starter settings: the three required settings with placeholders, then
/// every optional one commented out with its default.
pub const STARTER: &str = r#"# Settings of `deployer` for one rotation stack. Flags with the same name
# (for example --stack-name) override these values; environment variables
# override none of them, except that AWS_REGION gives the region when
# neither this file nor --region does.

# CloudFormation stack name: letters, digits and hyphens, starting with a letter.
stack_name: dsql-tokens

# AWS region of the stack and the cluster.
region: us-east-1

# DSQL cluster hostname, <cluster-id>.dsql.<region>.on.aws. Replace it.
cluster_endpoint: <cluster-id>.dsql.us-east-1.on.aws

# --- Database ----------------------------------------------------------------

# Database role the token logs in as. `admin` signs with dsql:DbConnectAdmin,
# any other role with dsql:DbConnect and must be linked to the rotator's IAM
# role in SQL: AWS IAM GRANT <role> TO '<RoleArn output of up>';
# database_user: admin

# Database name and port stored in the secret.
# database_name: postgres
# database_port: 5432

# DSQL cluster id for the IAM policy; default: the first label of
# cluster_endpoint, which it must match unless the endpoint is local.
# cluster_id: <cluster-id>

# For local test servers only: accept localhost, 127.0.0.1 or ::1 as
# cluster_endpoint and connect_host. Never set it for a real cluster.
# allow_local_endpoint: false

# Hostname stored in the secret; default: the cluster endpoint, or in a VPC
# the cluster's PrivateLink name.
# connect_host: <hostname>

# --- Secret and rotation -----------------------------------------------------

# Name of the secret; default: <stack_name>/dsql-auth-token.
# secret_name: dsql-tokens/dsql-auth-token

# rate(N hours) with N >= 4, rate(N days) or cron(...). The rotation period,
# the interval plus rotation_window_hours, must be at most 84 hours, because
# a token lives at most 7 days and must outlive two periods.
# rotation_schedule: rate(4 hours)

# Hours in which each rotation may start.
# rotation_window_hours: 1

# For a cron(...) schedule only: the maximum gap in hours between two runs.
# rotation_period_hours: 24

# Lifetime of each token in seconds, from twice the rotation period to
# 604800; default: twice the rotation period.
# token_lifetime_seconds: 36000

# IAM role ARNs that may read the secret, besides the rotator.
# application_role_arns:
#   - arn:aws:iam::123456789012:role/app

# Key that encrypts the secret: aws-managed, create, or a KMS key ARN.
# kms_key: aws-managed

# E-mail address that receives rotation alarms; default: none.
# alarm_email: ops@example.com

# --- Rotation function ---------------------------------------------------------

# log_retention_days: 30
# encrypt_logs: false
# function_memory_mb: 128
# function_timeout_seconds: 30
# function_reserved_concurrency: 2

# --- VPC: leave out to run the function outside a VPC ----------------------------

# vpc_id: vpc-0123456789abcdef0
# vpc_cidr: 10.0.0.0/16
# subnet_ids:
#   - subnet-0123456789abcdef0
#   - subnet-0123456789abcdef1
# PrivateLink service name of the cluster; default: looked up with the DSQL
# API's GetVpcEndpointServiceName, which the deployer's credentials must allow.
# dsql_service_name: com.amazonaws.us-east-1.dsql-abcd
# Existing interface endpoints to reuse; default: the stack creates them.
# secretsmanager_endpoint_id: vpce-0123456789abcdef0
# dsql_endpoint_id: vpce-0123456789abcdef1

# --- Artifacts -------------------------------------------------------------------

# Existing S3 bucket for the rotator's zip; default: a bucket in a stack of its own.
# artifacts_bucket: my-artifacts-bucket
# artifacts_stack_name: dsql-token-rotation-artifacts
"#;

/// Region of the starter's examples when the environment names none.
const EXAMPLE_REGION: &str = "us-east-1";

/// Returns the region from AWS_REGION or AWS_DEFAULT_REGION, when it has
/// the form of a region name, for the starter's region and examples.
fn environment_region() -> Option<String> {
    let region = std::env::var("AWS_REGION")
        .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
        .ok()?;
    let plausible = !region.is_empty()
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    plausible.then_some(region)
}

/// Returns the starter text with `region` in place of the example region.
fn starter_for_region(region: Option<&str>) -> String {
    match region {
        Some(region) => STARTER.replace(EXAMPLE_REGION, region),
        None => STARTER.to_string(),
    }
}

/// Result of `init`: the file written.
#[derive(Debug, Serialize)]
pub struct InitResult {
    pub path: String,
}

/// Writes the starter file to `path`; an existing file is kept unless `force`.
pub fn run(path: &Path, force: bool, format: OutputFormat) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    match force {
        true => options.create(true).truncate(true),
        false => options.create_new(true),
    };

    let mut file = match options.open(path) {
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            let message = format!(
                "{} already exists; edit it, or pass --force to replace it",
                path.display()
            );
            return Err(BadInput(message).into());
        }
        other => other.with_context(|| format!("cannot create {}", path.display()))?,
    };
    let text = starter_for_region(environment_region().as_deref());
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;

    let result = InitResult {
        path: path.display().to_string(),
    };
    print_result(format, &result, |result| {
        format!(
            "wrote {}; set cluster_endpoint, then run `deployer diff` and `deployer up`",
            result.path
        )
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{RawSettings, SETTING_NAMES};

    #[test]
    fn starter_uses_given_region() {
        let text = starter_for_region(Some("eu-west-1"));

        assert!(text.contains("\nregion: eu-west-1\n"), "{text}");
        assert!(text.contains("<cluster-id>.dsql.eu-west-1.on.aws"));
        assert!(!text.contains(EXAMPLE_REGION));
    }

    /// Returns the starter text with every commented `key: value` line and
    /// list item uncommented.
    fn uncommented() -> String {
        STARTER
            .lines()
            .map(|line| {
                let rest = line.strip_prefix("# ").unwrap_or(line);
                let is_setting = rest.starts_with("  - ")
                    || rest.split_once(':').is_some_and(|(key, _)| {
                        key.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                    });
                if is_setting {
                    rest
                } else {
                    line
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn starter_validates_once_endpoint_set() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("deploy.yaml");
        let text = STARTER.replace("<cluster-id>.dsql", "abcdefghijklmnopqrstuvwxyz.dsql");
        std::fs::write(&path, text).unwrap();

        let settings = RawSettings::from_file(&path, true)
            .unwrap()
            .validate(None)
            .unwrap();

        assert_eq!(settings.stack_name, "dsql-tokens");
        assert_eq!(settings.region, "us-east-1");
    }

    #[test]
    fn starter_placeholder_endpoint_is_rejected() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("deploy.yaml");
        std::fs::write(&path, STARTER).unwrap();

        let error = RawSettings::from_file(&path, true)
            .unwrap()
            .validate(None)
            .unwrap_err();

        assert!(error.to_string().contains("cluster_endpoint"), "{error}");
    }

    #[test]
    fn every_commented_key_is_a_setting() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("deploy.yaml");
        std::fs::write(&path, uncommented()).unwrap();

        let parsed = RawSettings::from_file(&path, true);

        assert!(parsed.is_ok(), "{:?}", parsed.err());
    }

    #[test]
    fn starter_lists_every_setting() {
        for name in SETTING_NAMES {
            let listed = STARTER.lines().any(|line| {
                line.trim_start_matches("# ")
                    .starts_with(&format!("{name}:"))
            });

            assert!(listed, "{name} is missing from the starter file");
        }
    }

    #[test]
    fn existing_file_is_kept() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("deploy.yaml");
        std::fs::write(&path, "stack_name: mine\n").unwrap();

        let error = run(&path, false, OutputFormat::Json).unwrap_err();

        assert!(error.to_string().contains("already exists"), "{error}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "stack_name: mine\n"
        );
    }

    #[test]
    fn force_replaces_file() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("deploy.yaml");
        std::fs::write(&path, "stack_name: mine\n").unwrap();

        run(&path, true, OutputFormat::Json).unwrap();

        assert_eq!(std::fs::read_to_string(&path).unwrap(), STARTER);
    }
}
