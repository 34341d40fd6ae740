//! Deployment settings: read from a YAML file, overridden by flags, validated
//! in full before the first AWS call.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::schedule::{self, Schedule};

mod access;
mod network;
mod yaml;

pub use access::KmsKey;
pub use network::{validate_service_name, VpcSettings};

/// Maximum lifetime that DSQL accepts for an auth token, in seconds.
pub const MAX_TOKEN_LIFETIME_SECONDS: u64 = 604_800;

/// Maximum rotation period (schedule interval plus window), in seconds: 84
/// hours, because a token must outlive two periods and lives at most 7 days.
pub const MAX_ROTATION_PERIOD_SECONDS: u64 = MAX_TOKEN_LIFETIME_SECONDS / 2;

/// Retention periods, in days, that CloudWatch Logs accepts for a log group.
pub const LOG_RETENTION_DAYS: [u32; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// Hostnames accepted as the cluster endpoint when `allow_local_endpoint` is set.
const LOCAL_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// Cluster id used for the IAM policy when the endpoint is a local stand-in.
const LOCAL_CLUSTER_ID: &str = "local";

/// An invalid or missing setting, with the field, the value and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("settings file {path} not found. Create it with `deployer init --config {path}`, or fix the path")]
    NotFound { path: String },

    // The underlying errors are part of the message and not error sources,
    // so that printing the source chain does not repeat them.
    #[error("cannot read settings file {path}: {reason}")]
    Read {
        path: String,
        reason: std::io::Error,
    },

    #[error("settings file {path} is not valid YAML: {reason}")]
    Parse {
        path: String,
        reason: serde_yaml::Error,
    },

    #[error("settings file {path} must be a mapping of setting names to values, such as `stack_name: dsql-tokens`, but its top level is {found}")]
    NotMapping { path: String, found: &'static str },

    #[error("invalid `{setting}` {found} in {path}: {fix}")]
    WrongType {
        path: String,
        /// The setting's name, followed by `[index]` for an item of a list.
        setting: String,
        found: String,
        fix: String,
    },

    #[error("unknown setting `{key}` in {path}{hint}")]
    UnknownKey {
        path: String,
        key: String,
        hint: String,
    },

    #[error("missing setting `{field}`: {fix}")]
    Missing { field: &'static str, fix: String },

    #[error("invalid `{field}` {value:?}: {fix}")]
    Invalid {
        field: &'static str,
        value: String,
        fix: String,
    },
}

/// Settings as written in the YAML file or given as flags, before validation.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSettings {
    pub stack_name: Option<String>,
    pub region: Option<String>,
    pub cluster_endpoint: Option<String>,
    pub cluster_id: Option<String>,
    pub database_user: Option<String>,
    pub database_name: Option<String>,
    pub database_port: Option<u16>,
    pub secret_name: Option<String>,
    pub rotation_schedule: Option<String>,
    pub rotation_window_hours: Option<u32>,
    pub rotation_period_hours: Option<u32>,
    pub token_lifetime_seconds: Option<u64>,
    pub log_retention_days: Option<u32>,
    pub function_memory_mb: Option<u32>,
    pub function_timeout_seconds: Option<u32>,
    pub artifacts_bucket: Option<String>,
    pub artifacts_stack_name: Option<String>,
    pub allow_local_endpoint: Option<bool>,
    pub application_role_arns: Option<Vec<String>>,
    pub kms_key: Option<String>,
    pub encrypt_logs: Option<bool>,
    pub vpc_id: Option<String>,
    pub vpc_cidr: Option<String>,
    pub subnet_ids: Option<Vec<String>>,
    pub secretsmanager_endpoint_id: Option<String>,
    pub dsql_endpoint_id: Option<String>,
    pub dsql_service_name: Option<String>,
    pub alarm_email: Option<String>,
    pub function_reserved_concurrency: Option<u32>,
    pub connect_host: Option<String>,
}

/// Names of every setting the file may contain, for unknown-key hints.
pub const SETTING_NAMES: [&str; 30] = [
    "stack_name",
    "region",
    "cluster_endpoint",
    "cluster_id",
    "database_user",
    "database_name",
    "database_port",
    "secret_name",
    "rotation_schedule",
    "rotation_window_hours",
    "rotation_period_hours",
    "token_lifetime_seconds",
    "log_retention_days",
    "function_memory_mb",
    "function_timeout_seconds",
    "artifacts_bucket",
    "artifacts_stack_name",
    "allow_local_endpoint",
    "application_role_arns",
    "kms_key",
    "encrypt_logs",
    "vpc_id",
    "vpc_cidr",
    "subnet_ids",
    "secretsmanager_endpoint_id",
    "dsql_endpoint_id",
    "dsql_service_name",
    "alarm_email",
    "function_reserved_concurrency",
    "connect_host",
];

/// Validated settings that every command works from.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub stack_name: String,
    pub region: String,
    pub cluster_endpoint: String,
    pub cluster_id: String,
    pub database_user: String,
    pub database_name: String,
    pub database_port: u16,
    pub secret_name: String,
    pub schedule: Schedule,
    pub rotation_window_hours: u32,
    pub token_lifetime_seconds: u64,
    pub log_retention_days: u32,
    pub function_memory_mb: u32,
    pub function_timeout_seconds: u32,
    pub artifacts_bucket: Option<String>,
    pub artifacts_stack_name: String,
    /// IAM roles that may read the secret, besides the rotator's own role.
    pub application_role_arns: Vec<String>,
    pub kms_key: KmsKey,
    /// Whether the log group is encrypted with the customer managed key.
    pub encrypt_logs: bool,
    /// The VPC that the function runs in, or `None` to run it outside any VPC.
    pub vpc: Option<VpcSettings>,
    pub alarm_email: Option<String>,
    pub function_reserved_concurrency: u32,
    /// Hostname stored in the secret in place of the cluster endpoint or,
    /// in a VPC, the cluster's PrivateLink name.
    pub connect_host: Option<String>,
}

impl Settings {
    /// Seconds from one rotation to the latest start of the next: interval plus window.
    pub fn rotation_period_seconds(&self) -> u64 {
        self.schedule.interval_seconds() + u64::from(self.rotation_window_hours) * 3600
    }
}

impl RawSettings {
    /// Reads a settings file; a missing file at the default path counts as empty.
    pub fn from_file(path: &Path, required: bool) -> Result<Self, ConfigError> {
        let display = path.display().to_string();
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && !required => {
                return Ok(Self::default());
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(ConfigError::NotFound { path: display });
            }
            Err(reason) => {
                return Err(ConfigError::Read {
                    path: display,
                    reason,
                })
            }
        };

        Self::from_yaml(&text, &display)
    }

    /// Parses settings from YAML text; `origin` names the source in errors.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let value: serde_yaml::Value =
            serde_yaml::from_str(text).map_err(|reason| ConfigError::Parse {
                path: origin.to_string(),
                reason,
            })?;
        if value.is_null() {
            return Ok(Self::default());
        }
        if !value.is_mapping() {
            return Err(ConfigError::NotMapping {
                path: origin.to_string(),
                found: yaml::describe_kind(&value),
            });
        }

        reject_unknown_keys(&value, origin)?;
        serde_path_to_error::deserialize(&value)
            .map_err(|err| yaml::wrong_type(&value, origin, err))
    }

    /// Overlays every field that `other` sets on top of `self`.
    pub fn overlay(self, other: RawSettings) -> RawSettings {
        RawSettings {
            stack_name: other.stack_name.or(self.stack_name),
            region: other.region.or(self.region),
            cluster_endpoint: other.cluster_endpoint.or(self.cluster_endpoint),
            cluster_id: other.cluster_id.or(self.cluster_id),
            database_user: other.database_user.or(self.database_user),
            database_name: other.database_name.or(self.database_name),
            database_port: other.database_port.or(self.database_port),
            secret_name: other.secret_name.or(self.secret_name),
            rotation_schedule: other.rotation_schedule.or(self.rotation_schedule),
            rotation_window_hours: other.rotation_window_hours.or(self.rotation_window_hours),
            rotation_period_hours: other.rotation_period_hours.or(self.rotation_period_hours),
            token_lifetime_seconds: other.token_lifetime_seconds.or(self.token_lifetime_seconds),
            log_retention_days: other.log_retention_days.or(self.log_retention_days),
            function_memory_mb: other.function_memory_mb.or(self.function_memory_mb),
            function_timeout_seconds: other
                .function_timeout_seconds
                .or(self.function_timeout_seconds),
            artifacts_bucket: other.artifacts_bucket.or(self.artifacts_bucket),
            artifacts_stack_name: other.artifacts_stack_name.or(self.artifacts_stack_name),
            allow_local_endpoint: other.allow_local_endpoint.or(self.allow_local_endpoint),
            application_role_arns: other.application_role_arns.or(self.application_role_arns),
            kms_key: other.kms_key.or(self.kms_key),
            encrypt_logs: other.encrypt_logs.or(self.encrypt_logs),
            vpc_id: other.vpc_id.or(self.vpc_id),
            vpc_cidr: other.vpc_cidr.or(self.vpc_cidr),
            subnet_ids: other.subnet_ids.or(self.subnet_ids),
            secretsmanager_endpoint_id: other
                .secretsmanager_endpoint_id
                .or(self.secretsmanager_endpoint_id),
            dsql_endpoint_id: other.dsql_endpoint_id.or(self.dsql_endpoint_id),
            dsql_service_name: other.dsql_service_name.or(self.dsql_service_name),
            alarm_email: other.alarm_email.or(self.alarm_email),
            function_reserved_concurrency: other
                .function_reserved_concurrency
                .or(self.function_reserved_concurrency),
            connect_host: other.connect_host.or(self.connect_host),
        }
    }

    /// Validates every field and fills in defaults. `env_region` is the
    /// region from the environment (`AWS_REGION`), used only when neither
    /// the file nor a flag sets one.
    pub fn validate(self, env_region: Option<String>) -> Result<Settings, ConfigError> {
        let stack_name = required(
            "stack_name",
            self.stack_name,
            "set `stack_name` in the settings file or pass --stack-name",
        )?;
        validate_stack_name(&stack_name)?;

        let region = self
            .region
            .or(env_region)
            .ok_or_else(|| ConfigError::Missing {
                field: "region",
                fix: "set `region` in the settings file, pass --region, or set AWS_REGION".into(),
            })?;
        validate_region(&region)?;

        let endpoint = required(
            "cluster_endpoint",
            self.cluster_endpoint,
            "set `cluster_endpoint` to the cluster's hostname, <cluster-id>.dsql.<region>.on.aws",
        )?;
        let allow_local = self.allow_local_endpoint.unwrap_or(false);
        let endpoint_cluster_id = validate_endpoint(&endpoint, &region, allow_local)?;
        let cluster_id = resolve_cluster_id(self.cluster_id, &endpoint, endpoint_cluster_id)?;

        let database_user =
            validate_database_user(self.database_user.unwrap_or_else(|| "admin".into()))?;
        let database_name =
            validate_database_name(self.database_name.unwrap_or_else(|| "postgres".into()))?;
        let database_port = validate_port(self.database_port.unwrap_or(5432))?;

        let secret_name = match self.secret_name {
            Some(name) => validate_secret_name(name)?,
            None => format!("{stack_name}/dsql-auth-token"),
        };

        let schedule_text = self
            .rotation_schedule
            .unwrap_or_else(|| "rate(4 hours)".into());
        let schedule = schedule::parse(&schedule_text, self.rotation_period_hours)?;
        let rotation_window_hours =
            validate_window(self.rotation_window_hours.unwrap_or(1), &schedule)?;
        let period = validate_period(&schedule, rotation_window_hours)?;
        let token_lifetime_seconds = validate_lifetime(self.token_lifetime_seconds, period)?;

        let log_retention_days = validate_retention(self.log_retention_days.unwrap_or(30))?;
        let function_memory_mb = validate_range(
            "function_memory_mb",
            self.function_memory_mb.unwrap_or(128),
            128,
            10_240,
        )?;
        let function_timeout_seconds = validate_range(
            "function_timeout_seconds",
            self.function_timeout_seconds.unwrap_or(30),
            5,
            900,
        )?;

        let artifacts_bucket = self.artifacts_bucket.map(validate_bucket).transpose()?;
        let artifacts_stack_name = self
            .artifacts_stack_name
            .unwrap_or_else(|| "dsql-token-rotation-artifacts".into());
        validate_artifacts_stack_name(&artifacts_stack_name, &stack_name)?;

        let application_role_arns =
            access::validate_role_arns(self.application_role_arns.unwrap_or_default(), &region)?;
        let kms_key = access::validate_kms_key(self.kms_key, &region)?;
        let encrypt_logs = self.encrypt_logs.unwrap_or(false);
        if encrypt_logs && kms_key == KmsKey::AwsManaged {
            return Err(invalid("encrypt_logs", true, "set `kms_key` to create or to a key ARN: CloudWatch Logs encrypts only with a customer managed key"));
        }
        let vpc = network::RawVpc {
            vpc_id: self.vpc_id,
            vpc_cidr: self.vpc_cidr,
            subnet_ids: self.subnet_ids,
            secretsmanager_endpoint_id: self.secretsmanager_endpoint_id,
            dsql_endpoint_id: self.dsql_endpoint_id,
            dsql_service_name: self.dsql_service_name,
        }
        .validate(&region)?;
        let alarm_email = self
            .alarm_email
            .map(access::validate_alarm_email)
            .transpose()?;
        let connect_host = self
            .connect_host
            .map(|host| validate_connect_host(host, allow_local))
            .transpose()?;
        let function_reserved_concurrency = validate_range(
            "function_reserved_concurrency",
            self.function_reserved_concurrency.unwrap_or(2),
            1,
            1000,
        )?;

        Ok(Settings {
            stack_name,
            region,
            cluster_endpoint: endpoint,
            cluster_id,
            database_user,
            database_name,
            database_port,
            secret_name,
            schedule,
            rotation_window_hours,
            token_lifetime_seconds,
            log_retention_days,
            function_memory_mb,
            function_timeout_seconds,
            artifacts_bucket,
            artifacts_stack_name,
            application_role_arns,
            kms_key,
            encrypt_logs,
            vpc,
            alarm_email,
            function_reserved_concurrency,
            connect_host,
        })
    }
}

/// Returns the cluster id: `configured`, or the one in the endpoint. A
/// local endpoint contains no cluster id, so there `cluster_id` names the
/// cluster for the IAM policy and the PrivateLink lookup. A DSQL endpoint
/// already names it, and a different id would grant the wrong cluster.
fn resolve_cluster_id(
    configured: Option<String>,
    endpoint: &str,
    endpoint_cluster_id: String,
) -> Result<String, ConfigError> {
    let Some(id) = configured else {
        return Ok(endpoint_cluster_id);
    };

    let id = validate_cluster_id(id)?;
    if !LOCAL_HOSTS.contains(&endpoint) && id != endpoint_cluster_id {
        let fix = format!("remove `cluster_id` or set it to {endpoint_cluster_id}, the cluster id in `cluster_endpoint` {endpoint}, so the IAM policy names the cluster that the endpoint reaches");
        return Err(invalid("cluster_id", id, fix));
    }
    Ok(id)
}

fn validate_artifacts_stack_name(name: &str, stack_name: &str) -> Result<(), ConfigError> {
    validate_stack_name_field("artifacts_stack_name", name)?;
    if name == stack_name {
        let fix = format!("use a name other than `stack_name` {stack_name}, because the artifacts bucket has a stack of its own and `up` would replace it with the rotation stack");
        return Err(invalid("artifacts_stack_name", name, fix));
    }
    Ok(())
}

fn reject_unknown_keys(value: &serde_yaml::Value, origin: &str) -> Result<(), ConfigError> {
    let Some(mapping) = value.as_mapping() else {
        return Ok(());
    };

    for key in mapping.keys() {
        let key = key.as_str().unwrap_or_default();
        if SETTING_NAMES.contains(&key) {
            continue;
        }

        let hint = match nearest_setting(key) {
            Some(name) => format!("; did you mean `{name}`?"),
            None => format!("; valid settings are: {}", SETTING_NAMES.join(", ")),
        };
        return Err(ConfigError::UnknownKey {
            path: origin.to_string(),
            key: key.to_string(),
            hint,
        });
    }
    Ok(())
}

/// Returns the setting name closest to `key`, if one is close enough to be a typo.
pub fn nearest_setting(key: &str) -> Option<&'static str> {
    let mut distances: BTreeMap<usize, &'static str> = BTreeMap::new();
    for name in SETTING_NAMES {
        distances.entry(edit_distance(key, name)).or_insert(name);
    }

    let (distance, name) = distances.into_iter().next()?;
    let limit = (key.len() / 3).max(2);
    (distance <= limit).then_some(name)
}

/// Levenshtein distance between two strings, counted in characters.
fn edit_distance(left: &str, right: &str) -> usize {
    let right: Vec<char> = right.chars().collect();
    let mut previous: Vec<usize> = (0..=right.len()).collect();

    for (i, left_char) in left.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, right_char) in right.iter().enumerate() {
            let substitution = previous[j] + usize::from(left_char != *right_char);
            let insertion = current[j] + 1;
            let deletion = previous[j + 1] + 1;
            current.push(substitution.min(insertion).min(deletion));
        }
        previous = current;
    }
    previous[right.len()]
}

fn required(field: &'static str, value: Option<String>, fix: &str) -> Result<String, ConfigError> {
    match value {
        Some(value) if !value.trim().is_empty() => Ok(value),
        _ => Err(ConfigError::Missing {
            field,
            fix: fix.to_string(),
        }),
    }
}

fn invalid(field: &'static str, value: impl ToString, fix: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field,
        value: value.to_string(),
        fix: fix.into(),
    }
}

fn validate_stack_name(name: &str) -> Result<(), ConfigError> {
    validate_stack_name_field("stack_name", name)?;

    // The function is named `<stack_name>-rotator`, and Lambda names stop at 64 characters.
    if name.len() > 56 {
        return Err(invalid("stack_name", name, "use at most 56 characters, because the rotation function is named <stack_name>-rotator"));
    }
    Ok(())
}

fn validate_stack_name_field(field: &'static str, name: &str) -> Result<(), ConfigError> {
    let mut chars = name.chars();
    let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let rest_valid = chars.all(|c| c.is_ascii_alphanumeric() || c == '-');

    if !starts_with_letter || !rest_valid || name.len() > 128 {
        return Err(invalid(field, name, "use a CloudFormation stack name: a letter, then letters, digits and hyphens, at most 128 characters"));
    }
    Ok(())
}

fn validate_region(region: &str) -> Result<(), ConfigError> {
    let parts: Vec<&str> = region.split('-').collect();
    let shaped = parts.len() >= 3
        && parts.iter().all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|last| last.chars().all(|c| c.is_ascii_digit()));

    if !shaped {
        return Err(invalid(
            "region",
            region,
            "use an AWS region code such as us-east-1",
        ));
    }
    Ok(())
}

/// Checks the endpoint's shape and returns the cluster id it names.
fn validate_endpoint(
    endpoint: &str,
    region: &str,
    allow_local: bool,
) -> Result<String, ConfigError> {
    if LOCAL_HOSTS.contains(&endpoint) {
        if allow_local {
            return Ok(LOCAL_CLUSTER_ID.to_string());
        }
        return Err(invalid("cluster_endpoint", endpoint, "use the cluster's hostname, <cluster-id>.dsql.<region>.on.aws; a local test server needs `allow_local_endpoint: true`"));
    }

    let expected_suffix = format!(".dsql.{region}.on.aws");
    let Some(cluster_id) = endpoint.strip_suffix(&expected_suffix) else {
        let fix = if endpoint.ends_with(".on.aws") && endpoint.contains(".dsql.") {
            format!("the endpoint is in another region than `region` {region}; use a cluster in {region} or change `region`")
        } else {
            format!("use the cluster's hostname, <cluster-id>{expected_suffix}, without scheme, port or path")
        };
        return Err(invalid("cluster_endpoint", endpoint, fix));
    };

    validate_cluster_id(cluster_id.to_string()).map_err(|_| {
        invalid(
            "cluster_endpoint",
            endpoint,
            "the cluster id before .dsql. must be lowercase letters and digits",
        )
    })
}

fn validate_connect_host(host: String, allow_local: bool) -> Result<String, ConfigError> {
    if LOCAL_HOSTS.contains(&host.as_str()) {
        if allow_local {
            return Ok(host);
        }
        return Err(invalid("connect_host", host, "use a hostname that resolves to the cluster; a local test server needs `allow_local_endpoint: true`"));
    }

    let valid_labels = host.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    });
    if !valid_labels || host.len() > 253 || !host.contains('.') {
        return Err(invalid("connect_host", host, "use a DNS hostname of lowercase letters, digits, hyphens and dots, without scheme or port"));
    }
    Ok(host)
}

fn validate_cluster_id(id: String) -> Result<String, ConfigError> {
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    {
        return Err(invalid(
            "cluster_id",
            id,
            "use the cluster identifier: lowercase letters and digits",
        ));
    }
    Ok(id)
}

fn validate_database_user(user: String) -> Result<String, ConfigError> {
    if user.eq_ignore_ascii_case("admin") {
        return Ok("admin".into());
    }

    let mut chars = user.chars();
    let first_valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let rest_valid = chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if !first_valid || !rest_valid || user.len() > 63 {
        return Err(invalid("database_user", user, "use a PostgreSQL role name: a letter or underscore, then letters, digits, _ or $, at most 63 characters"));
    }
    Ok(user)
}

fn validate_database_name(name: String) -> Result<String, ConfigError> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(invalid("database_name", name, "use a database name of letters, digits and _, at most 63 characters (DSQL has one database, postgres)"));
    }
    Ok(name)
}

fn validate_port(port: u16) -> Result<u16, ConfigError> {
    if port == 0 {
        return Err(invalid(
            "database_port",
            port,
            "use a TCP port from 1 to 65535; DSQL listens on 5432",
        ));
    }
    Ok(port)
}

fn validate_secret_name(name: String) -> Result<String, ConfigError> {
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c));
    // Secrets Manager appends -<6 characters> to ARNs, so a name ending in
    // that shape makes partial-ARN lookups ambiguous.
    let ends_like_suffix = name.len() > 7 && name.as_bytes()[name.len() - 7] == b'-';

    if name.is_empty() || name.len() > 512 || !valid_chars || ends_like_suffix {
        return Err(invalid("secret_name", name, "use 1 to 512 characters of letters, digits and /_+=.@-, not ending in a hyphen followed by six characters"));
    }
    Ok(name)
}

fn validate_window(hours: u32, schedule: &Schedule) -> Result<u32, ConfigError> {
    let interval_hours = schedule.interval_seconds() / 3600;
    if hours == 0 || hours > 24 || u64::from(hours) >= interval_hours {
        return Err(invalid("rotation_window_hours", hours, format!("use a whole number of hours from 1 to 24 that is shorter than the schedule's interval of {interval_hours} hours")));
    }
    Ok(hours)
}

/// Computes the rotation period in seconds (interval plus window) and rejects
/// a period whose double exceeds the maximum token lifetime.
fn validate_period(schedule: &Schedule, window_hours: u32) -> Result<u64, ConfigError> {
    let interval_hours = schedule.interval_seconds() / 3600;
    let period = schedule
        .interval_seconds()
        .saturating_add(u64::from(window_hours) * 3600);
    if period <= MAX_ROTATION_PERIOD_SECONDS {
        return Ok(period);
    }

    let max_period_hours = MAX_ROTATION_PERIOD_SECONDS / 3600;
    let max_interval_hours = max_period_hours - u64::from(window_hours);
    let reason = format!(
        "the rotation period, {} hours ({interval_hours}-hour interval plus {window_hours}-hour window), \
         is longer than {max_period_hours} hours. A token lives at most 7 days ({MAX_TOKEN_LIFETIME_SECONDS} s) \
         and must outlive two periods",
        period / 3600
    );
    match schedule {
        Schedule::Rate { expression, .. } => {
            let days = max_interval_hours / 24;
            let fix = format!(
                "{reason}, so with this window use rate({max_interval_hours} hours) or shorter, \
                 such as rate({days} days), or shorten `rotation_window_hours`"
            );
            Err(invalid("rotation_schedule", expression, fix))
        }
        Schedule::Cron { period_hours, .. } => {
            let fix = format!(
                "{reason}, so with this window use a cron schedule whose runs are at most \
                 {max_interval_hours} hours apart, or shorten `rotation_window_hours`"
            );
            Err(invalid("rotation_period_hours", period_hours, fix))
        }
    }
}

/// Validates the token lifetime, or defaults it to two rotation periods.
///
/// `period` has passed `validate_period`, so two periods never exceed
/// `MAX_TOKEN_LIFETIME_SECONDS`. The shortest period, a 4-hour interval plus
/// a 1-hour window, already gives 36000 s, so the default needs no floor.
fn validate_lifetime(requested: Option<u64>, period: u64) -> Result<u64, ConfigError> {
    let minimum = 2 * period;
    let Some(lifetime) = requested else {
        return Ok(minimum);
    };

    if lifetime > MAX_TOKEN_LIFETIME_SECONDS {
        return Err(invalid("token_lifetime_seconds", lifetime, format!("use at most {MAX_TOKEN_LIFETIME_SECONDS} seconds (7 days), the longest DSQL accepts")));
    }
    if lifetime < minimum {
        return Err(invalid("token_lifetime_seconds", lifetime, format!("use at least {minimum} seconds, twice the rotation period (schedule interval plus rotation window), so a token outlives a missed rotation")));
    }
    Ok(lifetime)
}

fn validate_retention(days: u32) -> Result<u32, ConfigError> {
    if !LOG_RETENTION_DAYS.contains(&days) {
        let allowed: Vec<String> = LOG_RETENTION_DAYS.iter().map(u32::to_string).collect();
        return Err(invalid(
            "log_retention_days",
            days,
            format!(
                "use one of the values CloudWatch Logs accepts: {}",
                allowed.join(", ")
            ),
        ));
    }
    Ok(days)
}

fn validate_range(field: &'static str, value: u32, min: u32, max: u32) -> Result<u32, ConfigError> {
    if !(min..=max).contains(&value) {
        return Err(invalid(
            field,
            value,
            format!("use a value from {min} to {max}"),
        ));
    }
    Ok(value)
}

/// Prefixes that S3 reserves and rejects in general purpose bucket names.
const RESERVED_BUCKET_PREFIXES: [&str; 3] = ["xn--", "sthree-", "amzn-s3-demo-"];

/// Suffixes that S3 reserves for access point aliases, Multi-Region Access
/// Points, directory buckets and table buckets.
const RESERVED_BUCKET_SUFFIXES: [&str; 5] =
    ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"];

/// Validates a general purpose bucket name against the naming rules in the
/// Amazon S3 User Guide ("General purpose bucket naming rules").
fn validate_bucket(bucket: String) -> Result<String, ConfigError> {
    let valid_chars = bucket
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    let valid_ends = bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
        && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());

    if !(3..=63).contains(&bucket.len()) || !valid_chars || !valid_ends {
        return Err(invalid("artifacts_bucket", bucket, "use an S3 bucket name: 3 to 63 lowercase letters, digits, hyphens and dots, starting and ending with a letter or digit"));
    }
    if bucket.contains("..") {
        return Err(invalid(
            "artifacts_bucket",
            bucket,
            "use a bucket name without two adjacent dots, which S3 rejects",
        ));
    }
    // NOTE: S3 does not define "formatted as an IP address", so any four
    // dot-separated groups of digits count, including 999.0.0.1 and 01.2.3.4.
    let labels: Vec<&str> = bucket.split('.').collect();
    let looks_like_ip = labels.len() == 4
        && labels
            .iter()
            .all(|label| !label.is_empty() && label.chars().all(|c| c.is_ascii_digit()));
    if looks_like_ip {
        return Err(invalid(
            "artifacts_bucket",
            bucket,
            "use a bucket name that is not formatted as an IP address, which S3 rejects",
        ));
    }
    if let Some(prefix) = RESERVED_BUCKET_PREFIXES
        .iter()
        .find(|prefix| bucket.starts_with(*prefix))
    {
        let fix = format!(
            "use a bucket name that does not start with {prefix}, a prefix that S3 reserves"
        );
        return Err(invalid("artifacts_bucket", bucket, fix));
    }
    if let Some(suffix) = RESERVED_BUCKET_SUFFIXES
        .iter()
        .find(|suffix| bucket.ends_with(*suffix))
    {
        let fix =
            format!("use a bucket name that does not end with {suffix}, a suffix that S3 reserves");
        return Err(invalid("artifacts_bucket", bucket, fix));
    }
    Ok(bucket)
}

#[cfg(test)]
mod tests;
