//! `deployer`: deploys Aurora DSQL auth-token rotation through AWS Secrets
//! Manager with CloudFormation, and removes it again.

mod artifacts;
mod aws;
mod changes;
mod commands;
mod config;
mod db;
mod package;
mod privatelink;
mod progress;
mod schedule;
mod sql;
mod stack;
mod template;
mod token;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use tokio::signal::unix::SignalKind;

use commands::confirm::{Approval, NotConfirmed};
use commands::render::CodeOverrides;
use commands::{BadInput, ErrorDetail, ErrorDocument, OutputFormat, RotatorSource};
use config::{ConfigError, RawSettings, Settings};
use db::ConnectArgs;
use stack::StackError;

/// Settings file read when --config is not given.
const DEFAULT_CONFIG: &str = "deploy.yaml";

/// Exit code for a failed operation: a failed deploy, build or AWS call.
const EXIT_FAILED: u8 = 1;

/// Exit code for bad input: invalid settings or flags.
const EXIT_BAD_INPUT: u8 = 2;

/// Exit code for changes that need confirmation and did not get it.
const EXIT_NOT_CONFIRMED: u8 = 3;

/// Exit code for a command stopped by SIGINT or SIGTERM, as shells report
/// a process ended by SIGINT (128 + 2).
const EXIT_INTERRUPTED: u8 = 130;

const AFTER_HELP: &str = "\
Settings come from the settings file, then flags, which win over the file.
Environment variables override no setting, except that AWS_REGION (or
AWS_DEFAULT_REGION) gives the region when neither the file nor --region
does. AWS credentials and endpoints come from the standard chain:
AWS_PROFILE, AWS_ACCESS_KEY_ID, AWS_ENDPOINT_URL, ~/.aws/config, ...

With --output json, stdout carries exactly one JSON document: the result,
or an error document with the fields error.kind, error.exit_code,
error.message and error.failed_resources when the command fails after its
flags were parsed. Logs and progress go to stderr.

Exit codes:
  0  success, including an `up` or `diff` with nothing to change
  1  the operation failed: deploy, build or AWS call; a failed deploy lists
     every failed resource with CloudFormation's reason
  2  bad input: invalid settings or flags, a missing or empty SQL file, or
     a settings file that `init` would overwrite; rejected before any AWS
     call
  3  `up` planned changes that widen IAM or network access or replace the
     secret, and they were not confirmed: declined on the terminal, or no
     terminal and no --yes; nothing was changed
  130  interrupted by Ctrl-C (SIGINT) or SIGTERM; a stack operation that
     CloudFormation already started goes on, and running the command again
     waits for it";

#[derive(Debug, Parser)]
#[command(name = "deployer", version, about, after_help = AFTER_HELP)]
struct Cli {
    /// Settings file (YAML); a missing file is fine unless named explicitly.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Result format on stdout; logs and progress always go to stderr.
    #[arg(long, global = true, value_enum, default_value = "text")]
    output: OutputFormat,

    #[command(flatten)]
    settings: SettingsArgs,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build and upload the rotator, then create or update the stack and wait.
    ///
    /// Shows the planned changes first. On an existing stack, `up` asks on the
    /// terminal before changes that widen IAM or network access or replace the
    /// secret. Without a terminal they need --yes, or `up` exits with code 3.
    Up {
        /// Use this rotator binary instead of building one from the workspace.
        #[arg(long, value_name = "PATH")]
        rotator_binary: Option<PathBuf>,
        /// Apply changes that widen access or replace the secret without asking, as in CI.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Show what `up` would change, through a change set that is deleted afterwards.
    Diff {
        /// Use this rotator binary instead of building one from the workspace.
        #[arg(long, value_name = "PATH")]
        rotator_binary: Option<PathBuf>,
    },
    /// Show the stack, the secret's rotation, the current token's signing
    /// time and expiry, and whether the deployed rotator matches a fresh build.
    Status {
        /// Use this rotator binary instead of building one from the workspace.
        #[arg(long, value_name = "PATH")]
        rotator_binary: Option<PathBuf>,
    },
    /// Start a rotation of the secret and wait until the new token is AWSCURRENT.
    ///
    /// Fails (exit code 1) when the new version is not promoted within the
    /// timeout, which is how a failed rotation shows.
    Rotate {
        /// Seconds to wait for the new version to become AWSCURRENT.
        #[arg(long, default_value_t = 120, value_name = "SECONDS")]
        timeout_seconds: u64,
    },
    /// Log in with the secret's credentials over verified TLS and run SELECT 1.
    Verify {
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Run psql with the secret's credentials, passing the token in PGPASSWORD and requiring sslmode=verify-full.
    Psql {
        #[command(flatten)]
        connect: ConnectArgs,
        /// Arguments for psql, after `--`.
        #[arg(last = true)]
        arguments: Vec<String>,
    },
    /// Apply a SQL schema to the cluster.
    Schema {
        #[command(subcommand)]
        command: SchemaCommand,
    },
    /// Write a commented starter settings file (deploy.yaml, or the --config path).
    Init {
        /// Replace the file if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Delete the stack and wait; running it again is harmless.
    Down {
        /// Also empty the artifacts bucket and delete the artifacts stack.
        #[arg(long)]
        artifacts: bool,
    },
    /// Print the rotation template with the settings applied, as `up` sends it.
    Render {
        /// Use this rotator binary instead of building one from the workspace.
        #[arg(long, value_name = "PATH")]
        rotator_binary: Option<PathBuf>,
        /// S3 bucket of the rotator's zip; default: the artifacts bucket.
        #[arg(long, value_name = "BUCKET")]
        code_bucket: Option<String>,
        /// S3 key of the rotator's zip; default: the key `up` would upload to.
        #[arg(long, value_name = "KEY")]
        code_key: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum SchemaCommand {
    /// Run each statement of FILE in its own transaction, stopping at the first failure.
    Apply {
        /// SQL file to apply, for example schema.sql.
        file: PathBuf,
        #[command(flatten)]
        connect: ConnectArgs,
    },
}

/// Flags that override the settings file, one per setting.
#[derive(Debug, Args)]
struct SettingsArgs {
    /// CloudFormation stack name of the rotation stack.
    #[arg(long, global = true)]
    stack_name: Option<String>,
    /// AWS region of the stack and the cluster, for example us-east-1.
    #[arg(long, global = true)]
    region: Option<String>,
    /// DSQL cluster hostname, <cluster-id>.dsql.<region>.on.aws.
    #[arg(long, global = true)]
    cluster_endpoint: Option<String>,
    /// DSQL cluster id; default: the first label of the endpoint, which it must match unless the endpoint is local.
    #[arg(long, global = true)]
    cluster_id: Option<String>,
    /// Database role that the token logs in as; default: admin.
    #[arg(long, global = true)]
    database_user: Option<String>,
    /// Database name stored in the secret; default: postgres.
    #[arg(long, global = true)]
    database_name: Option<String>,
    /// Port stored in the secret; default: 5432.
    #[arg(long, global = true)]
    database_port: Option<u16>,
    /// Name of the secret; default: <stack_name>/dsql-auth-token.
    #[arg(long, global = true)]
    secret_name: Option<String>,
    /// Rotation schedule, rate(N hours) with N >= 4, rate(N days) or cron(...), whose interval plus window is at most 84 hours; default: rate(4 hours).
    #[arg(long, global = true)]
    rotation_schedule: Option<String>,
    /// Hours in which each rotation may start; default: 1.
    #[arg(long, global = true)]
    rotation_window_hours: Option<u32>,
    /// Maximum gap in hours between two runs of a cron(...) schedule; only for cron(...).
    #[arg(long, global = true)]
    rotation_period_hours: Option<u32>,
    /// Lifetime of each token in seconds, from twice the rotation period (schedule interval plus window) to 604800; default: twice the rotation period.
    #[arg(long, global = true)]
    token_lifetime_seconds: Option<u64>,
    /// Days that CloudWatch Logs keeps the rotator's logs; default: 30.
    #[arg(long, global = true)]
    log_retention_days: Option<u32>,
    /// Memory of the rotation function in MB; default: 128.
    #[arg(long, global = true)]
    function_memory_mb: Option<u32>,
    /// Timeout of one rotation step in seconds; default: 30.
    #[arg(long, global = true)]
    function_timeout_seconds: Option<u32>,
    /// Existing S3 bucket for the rotator's zip; default: a bucket in a stack the deployer creates.
    #[arg(long, global = true)]
    artifacts_bucket: Option<String>,
    /// Name of the artifacts stack; default: dsql-token-rotation-artifacts.
    #[arg(long, global = true)]
    artifacts_stack_name: Option<String>,
    /// Accept localhost as the cluster endpoint, for a local test server.
    #[arg(long, global = true)]
    allow_local_endpoint: bool,
    /// IAM role ARN that may read the secret; repeat or separate with commas.
    #[arg(long = "application-role-arn", global = true, value_delimiter = ',')]
    application_role_arns: Vec<String>,
    /// Key that encrypts the secret: aws-managed, create, or a KMS key ARN in the region; default: aws-managed.
    #[arg(long, global = true)]
    kms_key: Option<String>,
    /// Encrypt the rotator's log group with the customer managed key.
    #[arg(long, global = true)]
    encrypt_logs: bool,
    /// VPC to run the rotation function in; default: no VPC.
    #[arg(long, global = true)]
    vpc_id: Option<String>,
    /// IPv4 CIDR block of the VPC, for example 10.0.0.0/16.
    #[arg(long, global = true)]
    vpc_cidr: Option<String>,
    /// Subnets of the VPC for the function and the endpoints, comma-separated.
    #[arg(long, global = true, value_delimiter = ',')]
    subnet_ids: Vec<String>,
    /// Existing Secrets Manager interface endpoint of the VPC; default: create one.
    #[arg(long, global = true)]
    secretsmanager_endpoint_id: Option<String>,
    /// Existing interface endpoint of the cluster's DSQL service; default: create one.
    #[arg(long, global = true)]
    dsql_endpoint_id: Option<String>,
    /// PrivateLink service name of the cluster, com.amazonaws.<region>.dsql-<id>; default: looked up with GetVpcEndpointServiceName.
    #[arg(long, global = true)]
    dsql_service_name: Option<String>,
    /// Hostname stored in the secret; default: the cluster endpoint, or in a VPC the cluster's PrivateLink name.
    #[arg(long, global = true)]
    connect_host: Option<String>,
    /// E-mail address that receives rotation alarms; default: none.
    #[arg(long, global = true)]
    alarm_email: Option<String>,
    /// Concurrent executions reserved for the rotation function; default: 2.
    #[arg(long, global = true)]
    function_reserved_concurrency: Option<u32>,
}

impl SettingsArgs {
    fn into_raw(self) -> RawSettings {
        RawSettings {
            stack_name: self.stack_name,
            region: self.region,
            cluster_endpoint: self.cluster_endpoint,
            cluster_id: self.cluster_id,
            database_user: self.database_user,
            database_name: self.database_name,
            database_port: self.database_port,
            secret_name: self.secret_name,
            rotation_schedule: self.rotation_schedule,
            rotation_window_hours: self.rotation_window_hours,
            rotation_period_hours: self.rotation_period_hours,
            token_lifetime_seconds: self.token_lifetime_seconds,
            log_retention_days: self.log_retention_days,
            function_memory_mb: self.function_memory_mb,
            function_timeout_seconds: self.function_timeout_seconds,
            artifacts_bucket: self.artifacts_bucket,
            artifacts_stack_name: self.artifacts_stack_name,
            allow_local_endpoint: self.allow_local_endpoint.then_some(true),
            application_role_arns: non_empty(self.application_role_arns),
            kms_key: self.kms_key,
            encrypt_logs: self.encrypt_logs.then_some(true),
            vpc_id: self.vpc_id,
            vpc_cidr: self.vpc_cidr,
            subnet_ids: non_empty(self.subnet_ids),
            secretsmanager_endpoint_id: self.secretsmanager_endpoint_id,
            dsql_endpoint_id: self.dsql_endpoint_id,
            dsql_service_name: self.dsql_service_name,
            alarm_email: self.alarm_email,
            function_reserved_concurrency: self.function_reserved_concurrency,
            connect_host: self.connect_host,
        }
    }
}

/// Returns `None` for a list flag that was not given, so the file's value stays.
fn non_empty(values: Vec<String>) -> Option<Vec<String>> {
    (!values.is_empty()).then_some(values)
}

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();

    let format = cli.output;
    if let Command::Init { force } = cli.command {
        let path = cli.config.unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
        return match commands::init::run(&path, force, format) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) if err.downcast_ref::<BadInput>().is_some() => {
                fail(format, "bad_input", EXIT_BAD_INPUT, &err)
            }
            Err(err) => fail(format, "failed", EXIT_FAILED, &err),
        };
    }

    let settings = match load_settings(cli.config.clone(), cli.settings) {
        Ok(settings) => settings,
        Err(err) => return fail(format, "bad_input", EXIT_BAD_INPUT, &err.into()),
    };

    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            let err = anyhow::Error::new(err).context("cannot start the async runtime");
            return fail(format, "failed", EXIT_FAILED, &err);
        }
    };

    let result = runtime.block_on(run_until_signal(cli.command, settings, format));
    // A confirmation prompt interrupted by a signal still waits for input on
    // a blocking thread, which an ordinary runtime shutdown would wait for.
    runtime.shutdown_background();

    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if err.downcast_ref::<NotConfirmed>().is_some() => {
            fail(format, "not_confirmed", EXIT_NOT_CONFIRMED, &err)
        }
        Err(err) if err.downcast_ref::<Interrupted>().is_some() => {
            fail(format, "interrupted", EXIT_INTERRUPTED, &err)
        }
        Err(err) if err.downcast_ref::<BadInput>().is_some() => {
            fail(format, "bad_input", EXIT_BAD_INPUT, &err)
        }
        Err(err) => fail(format, "failed", EXIT_FAILED, &err),
    }
}

/// Reports `err` on stderr, and with `--output json` also as the error
/// document on stdout, then returns `code` as the exit code.
fn fail(format: OutputFormat, kind: &'static str, code: u8, err: &anyhow::Error) -> ExitCode {
    eprintln!("error: {err:#}");
    if format == OutputFormat::Json {
        let failed_resources = err
            .chain()
            .find_map(|cause| match cause.downcast_ref::<StackError>() {
                Some(StackError::Failed { failures, .. }) => Some(failures.clone()),
                _ => None,
            })
            .unwrap_or_default();
        let document = ErrorDocument {
            error: ErrorDetail {
                kind,
                exit_code: code,
                message: format!("{err:#}"),
                failed_resources,
            },
        };
        commands::print_result(format, &document, |_| String::new());
    }
    ExitCode::from(code)
}

/// A command stopped by a signal before it finished.
#[derive(Debug, thiserror::Error)]
#[error("interrupted by {signal}; a stack operation that CloudFormation already started goes on, and running the same command again waits for it and converges")]
struct Interrupted {
    signal: &'static str,
}

/// Runs the command until it ends or SIGINT or SIGTERM arrives. Stopping
/// between AWS calls is safe: every command starts from whatever state the
/// stack is in.
async fn run_until_signal(
    command: Command,
    settings: Settings,
    format: OutputFormat,
) -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(SignalKind::terminate())
        .context("cannot install the SIGTERM handler")?;

    tokio::select! {
        result = run(command, settings, format) => result,
        _ = tokio::signal::ctrl_c() => Err(Interrupted { signal: "SIGINT" }.into()),
        _ = terminate.recv() => Err(Interrupted { signal: "SIGTERM" }.into()),
    }
}

async fn run(command: Command, settings: Settings, format: OutputFormat) -> anyhow::Result<()> {
    let renders = matches!(
        command,
        Command::Up { .. } | Command::Diff { .. } | Command::Render { .. }
    );
    let settings = match renders {
        true => privatelink::with_service_name(settings).await?,
        false => settings,
    };
    let settings = &settings;

    match command {
        Command::Up {
            rotator_binary,
            yes,
        } => {
            let approval = match yes {
                true => Approval::Given,
                false => Approval::Ask,
            };
            commands::up::run(settings, &rotator_source(rotator_binary), format, approval).await
        }
        Command::Diff { rotator_binary } => {
            commands::diff::run(settings, &rotator_source(rotator_binary), format).await
        }
        Command::Status { rotator_binary } => {
            commands::status::run(settings, &rotator_source(rotator_binary), format).await
        }
        Command::Rotate { timeout_seconds } => {
            let timeout = std::time::Duration::from_secs(timeout_seconds);
            commands::rotate::run(settings, timeout, format).await
        }
        Command::Verify { connect } => commands::verify::run(settings, &connect, format).await,
        Command::Psql { connect, arguments } => {
            commands::psql::run(settings, &connect, &arguments).await
        }
        Command::Schema {
            command: SchemaCommand::Apply { file, connect },
        } => commands::schema::apply(settings, &connect, &file, format).await,
        Command::Init { .. } => unreachable!("init runs before the settings are loaded"),
        Command::Down { artifacts } => commands::down::run(settings, artifacts, format).await,
        Command::Render {
            rotator_binary,
            code_bucket,
            code_key,
        } => {
            let overrides = CodeOverrides {
                bucket: code_bucket,
                key: code_key,
            };
            commands::render::run(settings, &rotator_source(rotator_binary), overrides, format)
                .await
        }
    }
}

fn load_settings(config: Option<PathBuf>, flags: SettingsArgs) -> Result<Settings, ConfigError> {
    let required = config.is_some();
    let path = config.unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));

    let file = RawSettings::from_file(&path, required)?;
    let env_region = std::env::var("AWS_REGION")
        .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
        .ok()
        .filter(|region| !region.is_empty());

    file.overlay(flags.into_raw()).validate(env_region)
}

fn rotator_source(prebuilt: Option<PathBuf>) -> RotatorSource {
    match prebuilt {
        Some(path) => RotatorSource::Prebuilt { path },
        None => RotatorSource::Build {
            workspace: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."),
        },
    }
}

/// Sends logs to stderr; `RUST_LOG` overrides the default of info for the deployer.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("deployer=info"));

    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(progress::colour_enabled())
        .with_target(false)
        .init();
}
