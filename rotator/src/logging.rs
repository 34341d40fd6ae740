//! JSON logs through tracing, one object a line on stdout, which Lambda
//! sends to the function's log group.
//!
//! The level comes from `AWS_LAMBDA_LOG_LEVEL` (Lambda's advanced logging
//! controls), else `RUST_LOG`, else INFO. At trace level the AWS SDK prints
//! whole requests, which contain request signatures and, for
//! PutSecretValue, the new token. So the SDK, HTTP, TLS and PostgreSQL crates
//! stay at INFO or above whatever level is requested.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::EnvFilter;

/// Targets whose debug and trace output may contain credentials or secret values.
const QUIET_TARGETS: &[&str] = &[
    "aws_sigv4",
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http_client",
    "aws_sdk_secretsmanager",
    "aws_sdk_dsql",
    "aws_config",
    "hyper",
    "hyper_util",
    "h2",
    "rustls",
    "tokio_postgres",
    "lambda_runtime",
    "lambda_runtime_api_client",
];

/// Installs the global JSON subscriber.
pub fn init() {
    tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .with_env_filter(filter(requested_level()))
        .with_writer(std::io::stdout)
        .init();
}

fn requested_level() -> LevelFilter {
    std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(LevelFilter::INFO)
}

fn filter(level: LevelFilter) -> EnvFilter {
    let quiet = level.min(LevelFilter::INFO);
    QUIET_TARGETS.iter().fold(
        EnvFilter::default().add_directive(level.into()),
        |filter, target| match format!("{target}={quiet}").parse() {
            Ok(directive) => filter.add_directive(directive),
            Err(_) => filter,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_caps_quiet_targets_at_info() {
        let text = filter(LevelFilter::TRACE).to_string();
        assert!(text.contains("aws_sigv4=info"), "{text}");
        assert!(text.contains("aws_smithy_runtime=info"), "{text}");
        assert!(text.contains("trace"), "{text}");
    }

    #[test]
    fn filter_keeps_stricter_levels() {
        let text = filter(LevelFilter::WARN).to_string();
        assert!(text.contains("aws_sigv4=warn"), "{text}");
    }
}
