//! Checks a rotation event against the secret and runs the requested step.
//!
//! The checks follow the Secrets Manager rotation protocol. Rotation must be
//! enabled, and the event's ClientRequestToken must be a version of the
//! secret with a staging label. A version that is already AWSCURRENT needs no
//! work, and any other version must be AWSPENDING.

use std::fmt;
use std::str::FromStr;

use aws_lambda_events::secretsmanager::SecretsManagerSecretRotationEvent;
use tracing::{error, info, instrument};

use crate::steps::{Rotation, Rotator, StepError};
use crate::store::{ApiError, SecretState, AWSCURRENT, AWSPENDING};

/// Reasons an event is rejected, and step failures.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("event field `{field}` is missing or empty")]
    MissingField { field: &'static str },
    #[error(
        "event field `Step` is {0:?}, expected createSecret, setSecret, testSecret or finishSecret"
    )]
    UnknownStep(String),
    #[error("rotation is not enabled for secret {secret_id}")]
    RotationDisabled { secret_id: String },
    #[error(
        "event field `ClientRequestToken` is {version_id:?}, which is not a version of \
         secret {secret_id}"
    )]
    UnknownVersion {
        secret_id: String,
        version_id: String,
    },
    #[error("version {version_id} of secret {secret_id} has no staging label")]
    NoStage {
        secret_id: String,
        version_id: String,
    },
    #[error(
        "version {version_id} of secret {secret_id} is not AWSPENDING (labels: {labels}); \
         only a pending version can be rotated"
    )]
    NotPending {
        secret_id: String,
        version_id: String,
        labels: String,
    },
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Step(#[from] StepError),
}

impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(error: HandlerError) -> Self {
        Self {
            error_type: "RotationError".to_owned(),
            error_message: error.to_string(),
        }
    }
}

/// A step of the rotation protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Create,
    Set,
    Test,
    Finish,
}

impl FromStr for Step {
    type Err = HandlerError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "createSecret" => Ok(Self::Create),
            "setSecret" => Ok(Self::Set),
            "testSecret" => Ok(Self::Test),
            "finishSecret" => Ok(Self::Finish),
            _ => Err(HandlerError::UnknownStep(text.to_owned())),
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Create => "createSecret",
            Self::Set => "setSecret",
            Self::Test => "testSecret",
            Self::Finish => "finishSecret",
        })
    }
}

/// The outcome of checking the event's version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionCheck {
    /// The version is already AWSCURRENT: an earlier rotation finished it.
    AlreadyCurrent,
    /// The version is AWSPENDING and the step should run.
    Pending,
}

/// Handles one rotation event and logs its outcome.
#[instrument(
    name = "rotation",
    skip_all,
    fields(
        secret_id = %event.secret_id,
        step = %event.step,
        version_id = %event.client_request_token,
    )
)]
pub async fn handle(
    rotator: &Rotator,
    event: SecretsManagerSecretRotationEvent,
) -> Result<(), HandlerError> {
    let result = run(rotator, &event).await;
    match &result {
        Ok(()) => info!("step finished"),
        Err(error) => error!(error = %error, "step failed"),
    }
    result
}

async fn run(
    rotator: &Rotator,
    event: &SecretsManagerSecretRotationEvent,
) -> Result<(), HandlerError> {
    let step = validate_event(event)?;
    let rotation = Rotation {
        secret_id: &event.secret_id,
        version_id: &event.client_request_token,
    };
    let state = rotator.store.describe(rotation.secret_id).await?;
    if check_version(&state, rotation)? == VersionCheck::AlreadyCurrent {
        info!("version is already AWSCURRENT; nothing to do");
        return Ok(());
    }
    match step {
        Step::Create => rotator.create_secret(rotation).await?,
        Step::Set => rotator.set_secret(rotation).await?,
        Step::Test => rotator.test_secret(rotation).await?,
        Step::Finish => rotator.finish_secret(rotation, &state).await?,
    }
    Ok(())
}

/// Checks that the event names a secret, a version and a known step,
/// before any call to Secrets Manager.
pub fn validate_event(event: &SecretsManagerSecretRotationEvent) -> Result<Step, HandlerError> {
    if event.secret_id.trim().is_empty() {
        return Err(HandlerError::MissingField { field: "SecretId" });
    }
    if event.client_request_token.trim().is_empty() {
        return Err(HandlerError::MissingField {
            field: "ClientRequestToken",
        });
    }
    event.step.parse()
}

/// Checks the event's version against the secret's rotation state.
pub fn check_version(
    state: &SecretState,
    rotation: Rotation<'_>,
) -> Result<VersionCheck, HandlerError> {
    let secret_id = rotation.secret_id.to_owned();
    let version_id = rotation.version_id.to_owned();
    if !state.rotation_enabled {
        return Err(HandlerError::RotationDisabled { secret_id });
    }
    let Some(labels) = state.stages.get(rotation.version_id) else {
        return Err(HandlerError::UnknownVersion {
            secret_id,
            version_id,
        });
    };
    if labels.is_empty() {
        return Err(HandlerError::NoStage {
            secret_id,
            version_id,
        });
    }
    if labels.iter().any(|label| label == AWSCURRENT) {
        return Ok(VersionCheck::AlreadyCurrent);
    }
    if !labels.iter().any(|label| label == AWSPENDING) {
        return Err(HandlerError::NotPending {
            secret_id,
            version_id,
            labels: labels.join(", "),
        });
    }
    Ok(VersionCheck::Pending)
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::collections::HashMap;

    const SECRET: &str = "arn:aws:secretsmanager:us-east-1:000000000000:secret:token-AbCdEf";

    fn event(step: &str, secret_id: &str, token: &str) -> SecretsManagerSecretRotationEvent {
        let json = serde_json::json!({
            "Step": step,
            "SecretId": secret_id,
            "ClientRequestToken": token,
        });
        serde_json::from_value(json).expect("event deserializes")
    }

    fn state(enabled: bool, versions: &[(&str, &[&str])]) -> SecretState {
        let stages = versions
            .iter()
            .map(|(version, labels)| {
                let labels = labels.iter().map(|label| label.to_string()).collect();
                (version.to_string(), labels)
            })
            .collect::<HashMap<_, _>>();
        SecretState {
            rotation_enabled: enabled,
            stages,
        }
    }

    fn rotation(version_id: &str) -> Rotation<'_> {
        Rotation {
            secret_id: SECRET,
            version_id,
        }
    }

    #[test]
    fn validate_event_accepts_each_step() {
        let steps = [
            ("createSecret", Step::Create),
            ("setSecret", Step::Set),
            ("testSecret", Step::Test),
            ("finishSecret", Step::Finish),
        ];
        for (name, expected) in steps {
            assert_eq!(
                validate_event(&event(name, SECRET, "v2")).unwrap(),
                expected
            );
            assert_eq!(expected.to_string(), name);
        }
    }

    #[test]
    fn validate_event_rejects_unknown_step() {
        let error = validate_event(&event("deleteSecret", SECRET, "v2")).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("`Step`"), "{message}");
        assert!(message.contains("\"deleteSecret\""), "{message}");
    }

    #[test]
    fn validate_event_rejects_missing_fields() {
        let error = validate_event(&event("createSecret", "", "v2")).unwrap_err();
        assert!(error.to_string().contains("`SecretId`"), "{error}");
        let error = validate_event(&event("createSecret", SECRET, " ")).unwrap_err();
        assert!(
            error.to_string().contains("`ClientRequestToken`"),
            "{error}"
        );
    }

    #[test]
    fn validate_event_ignores_rotation_token_field() {
        let json = serde_json::json!({
            "Step": "testSecret",
            "SecretId": SECRET,
            "ClientRequestToken": "v2",
            "RotationToken": "opaque",
        });
        let event = serde_json::from_value(json).expect("event deserializes");
        assert_eq!(validate_event(&event).unwrap(), Step::Test);
    }

    #[test]
    fn check_version_rejects_disabled_rotation() {
        let state = state(false, &[("v2", &[AWSPENDING])]);
        let error = check_version(&state, rotation("v2")).unwrap_err();
        assert!(
            matches!(error, HandlerError::RotationDisabled { .. }),
            "{error}"
        );
        assert!(error.to_string().contains(SECRET), "{error}");
    }

    #[test]
    fn check_version_rejects_token_of_other_secret() {
        let state = state(true, &[("v1", &[AWSCURRENT])]);
        let error = check_version(&state, rotation("other")).unwrap_err();
        assert!(
            matches!(error, HandlerError::UnknownVersion { .. }),
            "{error}"
        );
        assert!(
            error.to_string().contains("`ClientRequestToken`"),
            "{error}"
        );
    }

    #[test]
    fn check_version_rejects_version_without_stage() {
        let state = state(true, &[("v1", &[AWSCURRENT]), ("v0", &[])]);
        let error = check_version(&state, rotation("v0")).unwrap_err();
        assert!(matches!(error, HandlerError::NoStage { .. }), "{error}");
    }

    #[test]
    fn check_version_returns_early_when_current() {
        let state = state(true, &[("v2", &[AWSCURRENT, AWSPENDING])]);
        let check = check_version(&state, rotation("v2")).unwrap();
        assert_eq!(check, VersionCheck::AlreadyCurrent);
    }

    #[test]
    fn check_version_rejects_version_not_pending() {
        let state = state(true, &[("v2", &[AWSCURRENT]), ("v1", &["AWSPREVIOUS"])]);
        let error = check_version(&state, rotation("v1")).unwrap_err();
        assert!(matches!(error, HandlerError::NotPending { .. }), "{error}");
        assert!(error.to_string().contains("AWSPREVIOUS"), "{error}");
    }

    #[test]
    fn check_version_accepts_pending() {
        let state = state(true, &[("v1", &[AWSCURRENT]), ("v2", &[AWSPENDING])]);
        let check = check_version(&state, rotation("v2")).unwrap();
        assert_eq!(check, VersionCheck::Pending);
    }
}
