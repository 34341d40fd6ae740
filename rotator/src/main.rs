//! Secrets Manager rotation function that keeps an Aurora DSQL IAM auth
//! token in a secret.
//!
//! `main` builds the AWS clients, the TLS configuration and the settings
//! once per execution environment and hands every event to
//! [`handler::handle`].

mod handler;
mod logging;
mod probe;
mod secret;
mod settings;
mod steps;
mod store;
mod token;

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::BehaviorVersion;
use aws_lambda_events::secretsmanager::SecretsManagerSecretRotationEvent;
use lambda_runtime::{service_fn, LambdaEvent};
use tracing::{error, info};

use crate::probe::{Probe, ProbeError};
use crate::settings::{Settings, SettingsError};
use crate::steps::Rotator;
use crate::store::SecretStore;

/// Failures while setting up the function, before the first event.
#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error("invalid setting: {0}")]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    Probe(#[from] ProbeError),
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    logging::init();
    let rotator = match build_rotator().await {
        Ok(rotator) => rotator,
        Err(error) => {
            error!(error = %error, "rotation function failed to start");
            return Err(error.into());
        }
    };
    let rotator = &rotator;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<SecretsManagerSecretRotationEvent>| {
            handler::handle(rotator, event.payload)
        },
    ))
    .await
}

async fn build_rotator() -> Result<Rotator, StartError> {
    let settings = Settings::from_env()?;
    let probe = Probe::new()?;
    let sdk_config = aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(sdk_timeouts())
        .load()
        .await;
    let store = SecretStore::new(aws_sdk_secretsmanager::Client::new(&sdk_config));
    info!(
        token_lifetime_seconds = settings.token_lifetime.as_secs(),
        rotation_period_seconds = settings.rotation_period.as_secs(),
        "rotation function started"
    );
    Ok(Rotator {
        store,
        sdk_config,
        settings,
        probe,
    })
}

/// Bounds each Secrets Manager call, so that an unreachable endpoint (a
/// private subnet without a Secrets Manager endpoint) fails the step with an
/// error that names the call, before the function's own timeout stops it.
fn sdk_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(5))
        .operation_timeout(Duration::from_secs(12))
        .build()
}
