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
        // A local endpoint contains no cluster id, so there `cluster_id` names
        // the cluster for the IAM policy and the PrivateLink lookup. A DSQL
        // endpoint already names it, and a different id would grant the wrong cluster.
        let cluster_id = match self.cluster_id {
            None => endpoint_cluster_id,
            Some(id) => {
                let id = validate_cluster_id(id)?;
                if !LOCAL_HOSTS.contains(&endpoint.as_str()) && id != endpoint_cluster_id {
                    let fix = format!("remove `cluster_id` or set it to {endpoint_cluster_id}, the cluster id in `cluster_endpoint` {endpoint}, so the IAM policy names the cluster that the endpoint reaches");
                    return Err(invalid("cluster_id", id, fix));
                }
                id
            }
        };

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
        validate_stack_name_field("artifacts_stack_name", &artifacts_stack_name)?;
        if artifacts_stack_name == stack_name {
            let fix = format!("use a name other than `stack_name` {stack_name}, because the artifacts bucket has a stack of its own and `up` would replace it with the rotation stack");
            return Err(invalid("artifacts_stack_name", artifacts_stack_name, fix));
        }

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
mod tests {
    use super::*;

    const ENDPOINT: &str = "abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws";

    fn minimal() -> RawSettings {
        RawSettings {
            stack_name: Some("dsql-tokens".into()),
            region: Some("us-east-1".into()),
            cluster_endpoint: Some(ENDPOINT.into()),
            ..RawSettings::default()
        }
    }

    fn invalid_field(result: Result<Settings, ConfigError>) -> (&'static str, String, String) {
        match result {
            Err(ConfigError::Invalid { field, value, fix }) => (field, value, fix),
            other => panic!("expected an invalid-setting error, got {other:?}"),
        }
    }

    #[test]
    fn minimal_settings_get_defaults() {
        let settings = minimal().validate(None).unwrap();

        assert_eq!(settings.cluster_id, "abcdefghijklmnopqrstuvwxyz");
        assert_eq!(settings.database_user, "admin");
        assert_eq!(settings.database_name, "postgres");
        assert_eq!(settings.database_port, 5432);
        assert_eq!(settings.secret_name, "dsql-tokens/dsql-auth-token");
        assert_eq!(settings.schedule.expression(), "rate(4 hours)");
        assert_eq!(settings.rotation_period_seconds(), 5 * 3600);
        assert_eq!(settings.token_lifetime_seconds, 36_000);
        assert_eq!(settings.log_retention_days, 30);
    }

    #[test]
    fn missing_region_names_all_sources() {
        let raw = RawSettings {
            region: None,
            ..minimal()
        };

        let err = raw.validate(None).unwrap_err();

        let message = err.to_string();
        assert!(message.contains("`region`"), "{message}");
        assert!(message.contains("--region"), "{message}");
        assert!(message.contains("AWS_REGION"), "{message}");
    }

    #[test]
    fn region_from_environment_is_last_resort() {
        let from_env = RawSettings {
            region: None,
            ..minimal()
        }
        .validate(Some("us-east-1".into()));
        let file_wins = minimal().validate(Some("eu-west-1".into()));

        assert_eq!(from_env.unwrap().region, "us-east-1");
        assert_eq!(file_wins.unwrap().region, "us-east-1");
    }

    #[test]
    fn endpoint_that_is_not_dsql_is_rejected() {
        let raw = RawSettings {
            cluster_endpoint: Some("mydb.cluster-abc.us-east-1.rds.amazonaws.com".into()),
            ..minimal()
        };

        let (field, value, fix) = invalid_field(raw.validate(None));

        assert_eq!(field, "cluster_endpoint");
        assert_eq!(value, "mydb.cluster-abc.us-east-1.rds.amazonaws.com");
        assert!(fix.contains(".dsql.us-east-1.on.aws"), "{fix}");
    }

    #[test]
    fn endpoint_with_scheme_is_rejected() {
        let raw = RawSettings {
            cluster_endpoint: Some(format!("postgres://{ENDPOINT}:5432")),
            ..minimal()
        };

        let (field, _, fix) = invalid_field(raw.validate(None));

        assert_eq!(field, "cluster_endpoint");
        assert!(fix.contains("without scheme, port or path"), "{fix}");
    }

    #[test]
    fn endpoint_in_other_region_is_rejected() {
        let raw = RawSettings {
            cluster_endpoint: Some("abc.dsql.eu-west-1.on.aws".into()),
            ..minimal()
        };

        let (_, _, fix) = invalid_field(raw.validate(None));

        assert!(fix.contains("another region"), "{fix}");
    }

    #[test]
    fn local_endpoint_needs_explicit_allow() {
        let denied = RawSettings {
            cluster_endpoint: Some("localhost".into()),
            ..minimal()
        };
        let allowed = RawSettings {
            allow_local_endpoint: Some(true),
            ..denied.clone()
        };

        let (_, _, fix) = invalid_field(denied.validate(None));
        let settings = allowed.validate(None).unwrap();

        assert!(fix.contains("allow_local_endpoint"), "{fix}");
        assert_eq!(settings.cluster_endpoint, "localhost");
        assert_eq!(settings.cluster_id, "local");
    }

    #[test]
    fn cluster_id_other_than_endpoints_is_rejected() {
        let raw = RawSettings {
            cluster_id: Some("otherclusterid".into()),
            ..minimal()
        };

        let (field, value, fix) = invalid_field(raw.validate(None));

        assert_eq!(field, "cluster_id");
        assert_eq!(value, "otherclusterid");
        assert!(
            fix.contains("set it to abcdefghijklmnopqrstuvwxyz"),
            "{fix}"
        );
    }

    #[test]
    fn cluster_id_matching_endpoint_is_accepted() {
        let raw = RawSettings {
            cluster_id: Some("abcdefghijklmnopqrstuvwxyz".into()),
            ..minimal()
        };

        let settings = raw.validate(None).unwrap();

        assert_eq!(settings.cluster_id, "abcdefghijklmnopqrstuvwxyz");
    }

    #[test]
    fn cluster_id_names_local_endpoints_cluster() {
        let raw = RawSettings {
            cluster_endpoint: Some("127.0.0.1".into()),
            allow_local_endpoint: Some(true),
            cluster_id: Some("realclusterid".into()),
            ..minimal()
        };

        let settings = raw.validate(None).unwrap();

        assert_eq!(settings.cluster_id, "realclusterid");
    }

    #[test]
    fn missing_settings_file_names_fix_once() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("cfg.yaml");

        let error = RawSettings::from_file(&path, true).unwrap_err();

        let message = format!("{:#}", anyhow::Error::from(error));
        let expected = format!(
            "settings file {0} not found. Create it with `deployer init --config {0}`, or fix the path",
            path.display()
        );
        assert_eq!(message, expected);
    }

    #[test]
    fn missing_default_file_is_empty() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("deploy.yaml");

        let raw = RawSettings::from_file(&path, false).unwrap();

        assert_eq!(raw.stack_name, None);
    }

    #[test]
    fn unreadable_settings_file_says_why_once() {
        let directory = tempfile::tempdir().unwrap();

        let error = RawSettings::from_file(directory.path(), true).unwrap_err();

        let message = format!("{:#}", anyhow::Error::from(error));
        assert!(
            message.starts_with("cannot read settings file"),
            "{message}"
        );
        assert_eq!(message.matches("directory").count(), 1, "{message}");
    }

    #[test]
    fn unknown_key_suggests_nearest() {
        let err = RawSettings::from_yaml("stack_name: a\nregoin: us-east-1\n", "deploy.yaml")
            .unwrap_err();

        let message = err.to_string();
        assert!(message.contains("unknown setting `regoin`"), "{message}");
        assert!(message.contains("did you mean `region`?"), "{message}");
    }

    #[test]
    fn unknown_key_without_neighbour_lists_all() {
        let err = RawSettings::from_yaml("colour: blue\n", "deploy.yaml").unwrap_err();

        let message = err.to_string();
        assert!(
            message.contains("valid settings are: stack_name"),
            "{message}"
        );
    }

    #[test]
    fn invalid_stack_names_are_rejected() {
        for name in ["1stack", "my_stack", "stack name", "", &"a".repeat(57)] {
            let raw = RawSettings {
                stack_name: Some(name.to_string()),
                ..minimal()
            };

            let result = raw.validate(None);

            match result {
                Err(ConfigError::Invalid {
                    field: "stack_name",
                    ..
                })
                | Err(ConfigError::Missing {
                    field: "stack_name",
                    ..
                }) => {}
                other => panic!("stack name {name:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn admin_user_is_case_insensitive() {
        let raw = RawSettings {
            database_user: Some("ADMIN".into()),
            ..minimal()
        };

        let settings = raw.validate(None).unwrap();

        assert_eq!(settings.database_user, "admin");
    }

    #[test]
    fn token_lifetime_bounds_are_enforced() {
        let too_long = RawSettings {
            token_lifetime_seconds: Some(604_801),
            ..minimal()
        };
        let too_short = RawSettings {
            token_lifetime_seconds: Some(7200),
            ..minimal()
        };
        let at_max = RawSettings {
            token_lifetime_seconds: Some(604_800),
            ..minimal()
        };

        let (_, _, long_fix) = invalid_field(too_long.validate(None));
        let (_, _, short_fix) = invalid_field(too_short.validate(None));

        assert!(long_fix.contains("604800"), "{long_fix}");
        assert!(short_fix.contains("36000"), "{short_fix}");
        assert_eq!(
            at_max.validate(None).unwrap().token_lifetime_seconds,
            604_800
        );
    }

    #[test]
    fn log_retention_must_be_cloudwatch_value() {
        let raw = RawSettings {
            log_retention_days: Some(31),
            ..minimal()
        };

        let (field, value, fix) = invalid_field(raw.validate(None));

        assert_eq!(field, "log_retention_days");
        assert_eq!(value, "31");
        assert!(fix.contains("30, 60"), "{fix}");
    }

    #[test]
    fn flags_overlay_file() {
        let file =
            RawSettings::from_yaml("stack_name: from-file\nregion: eu-west-1\n", "deploy.yaml")
                .unwrap();
        let flags = RawSettings {
            stack_name: Some("from-flag".into()),
            ..RawSettings::default()
        };

        let merged = file.overlay(flags);

        assert_eq!(merged.stack_name.as_deref(), Some("from-flag"));
        assert_eq!(merged.region.as_deref(), Some("eu-west-1"));
    }

    const ROLE: &str = "arn:aws:iam::111122223333:role/app-reader";

    fn in_vpc() -> RawSettings {
        RawSettings {
            vpc_id: Some("vpc-0123456789abcdef0".into()),
            vpc_cidr: Some("10.0.0.0/16".into()),
            subnet_ids: Some(vec!["subnet-0123456789abcdef0".into()]),
            dsql_service_name: Some("com.amazonaws.us-east-1.dsql-a1b2".into()),
            ..minimal()
        }
    }

    #[test]
    fn schedule_under_four_hours_is_rejected() {
        let raw = RawSettings {
            rotation_schedule: Some("rate(2 hours)".into()),
            ..minimal()
        };

        let (field, value, fix) = invalid_field(raw.validate(None));

        assert_eq!(field, "rotation_schedule");
        assert_eq!(value, "rate(2 hours)");
        assert!(fix.contains("rate(4 hours)"), "{fix}");
    }

    #[test]
    fn token_lifetime_over_maximum_is_rejected() {
        let raw = RawSettings {
            token_lifetime_seconds: Some(604_801),
            ..minimal()
        };

        let (field, value, fix) = invalid_field(raw.validate(None));

        assert_eq!(field, "token_lifetime_seconds");
        assert_eq!(value, "604801");
        assert!(fix.contains("at most 604800 seconds"), "{fix}");
    }

    #[test]
    fn token_lifetime_under_two_periods_is_rejected() {
        let raw = RawSettings {
            rotation_schedule: Some("rate(12 hours)".into()),
            token_lifetime_seconds: Some(2 * 13 * 3600 - 1),
            ..minimal()
        };

        let (field, value, fix) = invalid_field(raw.validate(None));

        assert_eq!(field, "token_lifetime_seconds");
        assert_eq!(value, "93599");
        assert!(fix.contains("at least 93600 seconds"), "{fix}");
    }

    #[test]
    fn token_lifetime_of_two_periods_is_accepted() {
        let raw = RawSettings {
            rotation_schedule: Some("rate(12 hours)".into()),
            token_lifetime_seconds: Some(93_600),
            ..minimal()
        };

        let settings = raw.validate(None).unwrap();

        assert_eq!(settings.token_lifetime_seconds, 93_600);
    }

    #[test]
    fn token_lifetime_check_counts_window() {
        let raw = RawSettings {
            token_lifetime_seconds: Some(28_800),
            ..minimal()
        };

        let (field, value, fix) = invalid_field(raw.validate(None));

        assert_eq!(field, "token_lifetime_seconds");
        assert_eq!(value, "28800");
        assert!(fix.contains("at least 36000 seconds"), "{fix}");
    }

    #[test]
    fn default_lifetime_is_two_periods() {
        let raw = RawSettings {
            rotation_schedule: Some("rate(1 day)".into()),
            rotation_window_hours: Some(2),
            ..minimal()
        };

        let settings = raw.validate(None).unwrap();

        assert_eq!(settings.rotation_period_seconds(), 26 * 3600);
        assert_eq!(settings.token_lifetime_seconds, 2 * 26 * 3600);
    }

    #[test]
    fn long_rates_are_rejected() {
        for (schedule, period_hours) in [
            ("rate(4 days)", "97 hours"),
            ("rate(84 hours)", "85 hours"),
            ("rate(1000 days)", "24001 hours"),
            ("rate(18446744073709551615 days)", "5124095576030431 hours"),
        ] {
            let raw = RawSettings {
                rotation_schedule: Some(schedule.into()),
                ..minimal()
            };

            let (field, value, fix) = invalid_field(raw.validate(None));

            assert_eq!(field, "rotation_schedule", "{schedule}");
            assert_eq!(value, schedule);
            assert!(fix.contains(period_hours), "{schedule}: {fix}");
            assert!(fix.contains("rate(83 hours)"), "{schedule}: {fix}");
            assert!(fix.contains("rate(3 days)"), "{schedule}: {fix}");
        }
    }

    #[test]
    fn long_rate_fix_follows_window() {
        let raw = RawSettings {
            rotation_schedule: Some("rate(80 hours)".into()),
            rotation_window_hours: Some(13),
            ..minimal()
        };

        let (field, _, fix) = invalid_field(raw.validate(None));

        assert_eq!(field, "rotation_schedule");
        assert!(fix.contains("93 hours"), "{fix}");
        assert!(fix.contains("rate(71 hours)"), "{fix}");
        assert!(fix.contains("rate(2 days)"), "{fix}");
    }

    #[test]
    fn longest_rates_are_accepted() {
        for (schedule, lifetime) in [("rate(3 days)", 2 * 73 * 3600), ("rate(83 hours)", 604_800)] {
            let raw = RawSettings {
                rotation_schedule: Some(schedule.into()),
                ..minimal()
            };

            let settings = raw.validate(None).unwrap();

            assert_eq!(settings.token_lifetime_seconds, lifetime, "{schedule}");
        }
    }

    #[test]
    fn long_cron_period_is_rejected() {
        let raw = RawSettings {
            rotation_schedule: Some("cron(0 0 ? * MON *)".into()),
            rotation_period_hours: Some(168),
            ..minimal()
        };

        let (field, value, fix) = invalid_field(raw.validate(None));

        assert_eq!(field, "rotation_period_hours");
        assert_eq!(value, "168");
        assert!(fix.contains("169 hours"), "{fix}");
        assert!(fix.contains("at most 83 hours apart"), "{fix}");
    }

    #[test]
    fn artifacts_stack_named_as_stack_is_rejected() {
        let explicit = RawSettings {
            artifacts_stack_name: Some("dsql-tokens".into()),
            ..minimal()
        };
        let by_default = RawSettings {
            stack_name: Some("dsql-token-rotation-artifacts".into()),
            ..minimal()
        };

        let (field, value, fix) = invalid_field(explicit.validate(None));
        let (default_field, default_value, _) = invalid_field(by_default.validate(None));

        assert_eq!(field, "artifacts_stack_name");
        assert_eq!(value, "dsql-tokens");
        assert!(fix.contains("other than `stack_name`"), "{fix}");
        assert_eq!(default_field, "artifacts_stack_name");
        assert_eq!(default_value, "dsql-token-rotation-artifacts");
    }

    #[test]
    fn log_retentions_cloudwatch_rejects() {
        for days in [
            0, 2, 4, 6, 10, 31, 45, 100, 364, 366, 730, 1095, 3650, 3654, 9999,
        ] {
            let raw = RawSettings {
                log_retention_days: Some(days),
                ..minimal()
            };

            let (field, value, fix) = invalid_field(raw.validate(None));

            assert_eq!(field, "log_retention_days");
            assert_eq!(value, days.to_string());
            assert!(fix.contains("1, 3, 5, 7, 14, 30"), "{fix}");
        }
    }

    #[test]
    fn log_retentions_cloudwatch_accepts() {
        for days in LOG_RETENTION_DAYS {
            let raw = RawSettings {
                log_retention_days: Some(days),
                ..minimal()
            };

            assert_eq!(raw.validate(None).unwrap().log_retention_days, days);
        }
    }

    #[test]
    fn bucket_names_s3_rejects() {
        let cases = [
            ("my..bucket", "two adjacent dots"),
            ("192.168.1.1", "IP address"),
            ("192.168.01.1", "IP address"),
            ("xn--bucket", "start with xn--"),
            ("sthree-bucket", "start with sthree-"),
            ("sthree-configurator-bucket", "start with sthree-"),
            ("amzn-s3-demo-bucket", "start with amzn-s3-demo-"),
            ("bucket-s3alias", "end with -s3alias"),
            ("bucket--ol-s3", "end with --ol-s3"),
            ("bucket.mrap", "end with .mrap"),
            ("bucket--x-s3", "end with --x-s3"),
            ("bucket--table-s3", "end with --table-s3"),
            ("Bucket", "3 to 63 lowercase"),
            ("ab", "3 to 63 lowercase"),
            ("-bucket", "3 to 63 lowercase"),
        ];
        for (bucket, expected) in cases {
            let raw = RawSettings {
                artifacts_bucket: Some(bucket.into()),
                ..minimal()
            };

            let (field, value, fix) = invalid_field(raw.validate(None));

            assert_eq!(field, "artifacts_bucket", "{bucket}");
            assert_eq!(value, bucket);
            assert!(fix.contains(expected), "{bucket}: {fix}");
        }
    }

    #[test]
    fn bucket_names_s3_accepts() {
        for bucket in [
            "my-artifacts-bucket",
            "my.bucket.example",
            "192.168.1.1.bucket",
            "abc",
            "bucket-xn--a",
            "s3alias-bucket",
        ] {
            let raw = RawSettings {
                artifacts_bucket: Some(bucket.into()),
                ..minimal()
            };

            let settings = raw.validate(None).unwrap();

            assert_eq!(settings.artifacts_bucket.as_deref(), Some(bucket));
        }
    }

    #[test]
    fn application_roles_are_kept_in_order() {
        let roles = vec![
            ROLE.to_string(),
            "arn:aws:iam::444455556666:role/service/path/reader+1".to_string(),
        ];
        let raw = RawSettings {
            application_role_arns: Some(roles.clone()),
            ..minimal()
        };

        let settings = raw.validate(None).unwrap();

        assert_eq!(settings.application_role_arns, roles);
    }

    #[test]
    fn malformed_application_role_is_rejected() {
        let malformed = [
            "app-reader",
            "arn:aws:iam::1111:role/app",
            "arn:aws:iam::111122223333:user/app",
            "arn:aws:sts::111122223333:assumed-role/app/session",
            "arn:aws:iam:us-east-1:111122223333:role/app",
            "arn:aws:iam::111122223333:role/app,other",
            "arn:aws:iam::111122223333:role/",
            "arn:aws-cn:iam::111122223333:role/app",
        ];
        for arn in malformed {
            let raw = RawSettings {
                application_role_arns: Some(vec![ROLE.into(), arn.into()]),
                ..minimal()
            };

            let (field, value, fix) = invalid_field(raw.validate(None));

            assert_eq!(field, "application_role_arns", "{arn}");
            assert_eq!(value, arn);
            assert!(fix.starts_with("use a"), "{arn}: {fix}");
        }
    }

    #[test]
    fn duplicate_application_role_is_rejected() {
        let raw = RawSettings {
            application_role_arns: Some(vec![ROLE.into(), ROLE.into()]),
            ..minimal()
        };

        let (field, value, fix) = invalid_field(raw.validate(None));

        assert_eq!(field, "application_role_arns");
        assert_eq!(value, ROLE);
        assert_eq!(fix, "list each role once");
    }

    #[test]
    fn kms_key_choices_are_parsed() {
        let arn = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let cases = [
            (None, KmsKey::AwsManaged),
            (Some("aws-managed"), KmsKey::AwsManaged),
            (Some("create"), KmsKey::Create),
            (Some(arn), KmsKey::Existing(arn.into())),
        ];
        for (text, expected) in cases {
            let raw = RawSettings {
                kms_key: text.map(String::from),
                ..minimal()
            };

            assert_eq!(raw.validate(None).unwrap().kms_key, expected, "{text:?}");
        }
    }

    #[test]
    fn kms_key_in_other_region_is_rejected() {
        let arn = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let raw = RawSettings {
            kms_key: Some(arn.into()),
            ..minimal()
        };

        let (field, value, fix) = invalid_field(raw.validate(None));

        assert_eq!(field, "kms_key");
        assert_eq!(value, arn);
        assert!(fix.contains("use a key in us-east-1"), "{fix}");
    }

    #[test]
    fn kms_alias_or_malformed_key_is_rejected() {
        let cases = [
            (
                "arn:aws:kms:us-east-1:111122223333:alias/secrets",
                "not an alias",
            ),
            (
                "alias/aws/secretsmanager",
                "use aws-managed, create, or a key ARN",
            ),
            (
                "arn:aws:kms:us-east-1:1111:key/abc",
                "use aws-managed, create, or a key ARN",
            ),
        ];
        for (text, expected) in cases {
            let raw = RawSettings {
                kms_key: Some(text.into()),
                ..minimal()
            };

            let (field, value, fix) = invalid_field(raw.validate(None));

            assert_eq!(field, "kms_key");
            assert_eq!(value, text);
            assert!(fix.contains(expected), "{text}: {fix}");
        }
    }

    #[test]
    fn encrypted_logs_need_customer_key() {
        let raw = RawSettings {
            encrypt_logs: Some(true),
            ..minimal()
        };

        let (field, value, fix) = invalid_field(raw.validate(None));

        assert_eq!(field, "encrypt_logs");
        assert_eq!(value, "true");
        assert!(fix.contains("`kms_key` to create"), "{fix}");
    }

    #[test]
    fn subnets_without_vpc_are_rejected() {
        let raw = RawSettings {
            vpc_id: None,
            ..in_vpc()
        };

        let (field, value, fix) = invalid_field(raw.validate(None));

        assert_eq!(field, "subnet_ids");
        assert_eq!(value, "subnet-0123456789abcdef0");
        assert!(fix.contains("set `vpc_id`"), "{fix}");
    }

    #[test]
    fn endpoint_settings_without_vpc_are_rejected() {
        let cases = [
            RawSettings {
                vpc_cidr: Some("10.0.0.0/16".into()),
                ..minimal()
            },
            RawSettings {
                dsql_endpoint_id: Some("vpce-0123456789abcdef0".into()),
                ..minimal()
            },
            RawSettings {
                dsql_service_name: Some("com.amazonaws.us-east-1.dsql-a1b2".into()),
                ..minimal()
            },
        ];
        for raw in cases {
            let (field, _, fix) = invalid_field(raw.validate(None));

            assert!(fix.contains(&format!("or remove `{field}`")), "{fix}");
        }
    }

    #[test]
    fn vpc_settings_are_validated() {
        let settings = in_vpc().validate(None).unwrap();

        let vpc = settings.vpc.unwrap();
        assert_eq!(vpc.vpc_id, "vpc-0123456789abcdef0");
        assert_eq!(vpc.subnet_ids, ["subnet-0123456789abcdef0"]);
        assert_eq!(vpc.secretsmanager_endpoint_id, None);
        assert_eq!(
            vpc.dsql_service_name.as_deref(),
            Some("com.amazonaws.us-east-1.dsql-a1b2")
        );
    }

    #[test]
    fn vpc_without_subnets_is_missing_them() {
        let raw = RawSettings {
            subnet_ids: None,
            ..in_vpc()
        };

        let err = raw.validate(None).unwrap_err();

        assert!(
            matches!(
                err,
                ConfigError::Missing {
                    field: "subnet_ids",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn vpc_without_service_name_leaves_lookup() {
        let raw = RawSettings {
            dsql_service_name: None,
            ..in_vpc()
        };

        let settings = raw.validate(None).unwrap();

        assert_eq!(settings.vpc.unwrap().dsql_service_name, None);
    }

    #[test]
    fn invalid_vpc_values_are_rejected() {
        let cases = [
            (
                RawSettings {
                    vpc_id: Some("vpc-xyz".into()),
                    ..in_vpc()
                },
                "vpc_id",
            ),
            (
                RawSettings {
                    subnet_ids: Some(vec!["sub-1".into()]),
                    ..in_vpc()
                },
                "subnet_ids",
            ),
            (
                RawSettings {
                    vpc_cidr: Some("10.0.0.0/8".into()),
                    ..in_vpc()
                },
                "vpc_cidr",
            ),
            (
                RawSettings {
                    vpc_cidr: Some("10.0.0.1/16".into()),
                    ..in_vpc()
                },
                "vpc_cidr",
            ),
            (
                RawSettings {
                    vpc_cidr: Some("10.0.0.0".into()),
                    ..in_vpc()
                },
                "vpc_cidr",
            ),
            (
                RawSettings {
                    dsql_service_name: Some("com.amazonaws.us-east-1.dsql".into()),
                    ..in_vpc()
                },
                "dsql_service_name",
            ),
            (
                RawSettings {
                    dsql_service_name: Some("com.amazonaws.eu-west-1.dsql-a1b2".into()),
                    ..in_vpc()
                },
                "dsql_service_name",
            ),
            (
                RawSettings {
                    dsql_endpoint_id: Some("vpc-0123456789abcdef0".into()),
                    ..in_vpc()
                },
                "dsql_endpoint_id",
            ),
        ];
        for (raw, expected) in cases {
            let (field, _, _) = invalid_field(raw.validate(None));

            assert_eq!(field, expected);
        }
    }

    #[test]
    fn cidr_with_host_bits_names_network() {
        let raw = RawSettings {
            vpc_cidr: Some("10.0.3.0/16".into()),
            ..in_vpc()
        };

        let (_, _, fix) = invalid_field(raw.validate(None));

        assert!(fix.contains("10.0.0.0/16"), "{fix}");
    }

    #[test]
    fn alarm_email_is_checked() {
        for address in [
            "ops",
            "ops@",
            "@example.com",
            "ops@example",
            "a b@example.com",
        ] {
            let raw = RawSettings {
                alarm_email: Some(address.into()),
                ..minimal()
            };

            let (field, value, _) = invalid_field(raw.validate(None));

            assert_eq!(field, "alarm_email");
            assert_eq!(value, address);
        }
    }

    #[test]
    fn reserved_concurrency_range_is_enforced() {
        let raw = RawSettings {
            function_reserved_concurrency: Some(0),
            ..minimal()
        };

        let (field, value, fix) = invalid_field(raw.validate(None));

        assert_eq!(field, "function_reserved_concurrency");
        assert_eq!(value, "0");
        assert_eq!(fix, "use a value from 1 to 1000");
    }

    #[test]
    fn settings_file_takes_lists() {
        let text = "application_role_arns:\n  - arn:aws:iam::111122223333:role/a\nsubnet_ids: [subnet-0123456789abcdef0]\nkms_key: create\n";

        let raw = RawSettings::from_yaml(text, "deploy.yaml").unwrap();

        assert_eq!(
            raw.application_role_arns,
            Some(vec!["arn:aws:iam::111122223333:role/a".to_string()])
        );
        assert_eq!(
            raw.subnet_ids,
            Some(vec!["subnet-0123456789abcdef0".to_string()])
        );
        assert_eq!(raw.kms_key.as_deref(), Some("create"));
    }

    #[test]
    fn new_settings_default_to_least_setup() {
        let settings = minimal().validate(None).unwrap();

        assert!(settings.application_role_arns.is_empty());
        assert_eq!(settings.kms_key, KmsKey::AwsManaged);
        assert!(!settings.encrypt_logs);
        assert_eq!(settings.vpc, None);
        assert_eq!(settings.alarm_email, None);
        assert_eq!(settings.function_reserved_concurrency, 2);
    }

    #[test]
    fn connect_host_is_validated() {
        let cases = [
            ("localhost", "allow_local_endpoint"),
            ("https://db.example.com", "without scheme or port"),
            ("db.example.com:5432", "without scheme or port"),
            ("db", "without scheme or port"),
        ];
        for (host, expected) in cases {
            let raw = RawSettings {
                connect_host: Some(host.into()),
                ..minimal()
            };

            let (field, value, fix) = invalid_field(raw.validate(None));

            assert_eq!(field, "connect_host");
            assert_eq!(value, host);
            assert!(fix.contains(expected), "{host}: {fix}");
        }
    }

    #[test]
    fn connect_host_is_kept() {
        let raw = RawSettings {
            connect_host: Some("db.internal.example.com".into()),
            ..minimal()
        };

        let settings = raw.validate(None).unwrap();

        assert_eq!(
            settings.connect_host.as_deref(),
            Some("db.internal.example.com")
        );
    }

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("region", "region"), 0);
        assert_eq!(edit_distance("regoin", "region"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
