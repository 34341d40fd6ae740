//! The four steps of a Secrets Manager rotation for a DSQL auth token.
//!
//! Secrets Manager creates the new version, labelled AWSPENDING and without a
//! value, before it calls the first step, and it may call any step again
//! after a failure or a timeout. Each step therefore checks what is already
//! done before it acts, and running it twice leaves the same state as once.

use std::time::SystemTime;

use aws_config::SdkConfig;
use tracing::info;

use crate::probe::{Probe, ProbeError};
use crate::secret::{DbSecret, SecretError};
use crate::settings::Settings;
use crate::store::{ApiError, SecretState, SecretStore, AWSCURRENT, AWSPENDING};
use crate::token::{self, TokenError};

/// Failures of a rotation step.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("the {stage} value of secret {secret_id} is invalid: {source}")]
    InvalidSecret {
        stage: &'static str,
        secret_id: String,
        source: SecretError,
    },
    #[error("the AWSPENDING value of version {version_id} has no `password` field")]
    NoPassword { version_id: String },
    #[error("version {version_id} has no AWSPENDING value; run createSecret first")]
    NoPendingValue { version_id: String },
    #[error(
        "the AWSPENDING token of version {version_id} stops working at {expires_at}, before \
         the next rotation can replace it at {replace_by}; cancel this rotation and rotate again"
    )]
    PendingExpiresTooSoon {
        version_id: String,
        expires_at: String,
        replace_by: String,
    },
    #[error(
        "the AWSPENDING value of version {version_id} has an `expires_at` that is not a UTC \
         time such as 2026-01-02T03:04:05Z; cancel this rotation and rotate again"
    )]
    InvalidExpiry { version_id: String },
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("the AWSPENDING token of version {version_id} does not log in: {source}")]
    Probe {
        version_id: String,
        source: ProbeError,
    },
}

/// The clients and settings that every step uses, built once per process.
pub struct Rotator {
    pub store: SecretStore,
    pub sdk_config: SdkConfig,
    pub settings: Settings,
    pub probe: Probe,
}

/// Identifies the rotation that a step belongs to.
#[derive(Debug, Clone, Copy)]
pub struct Rotation<'a> {
    pub secret_id: &'a str,
    /// The new version's id, which is the event's ClientRequestToken.
    pub version_id: &'a str,
}

impl Rotator {
    /// Fills the AWSPENDING version with a new token and a copy of the other
    /// AWSCURRENT fields, unless an earlier attempt already did.
    pub async fn create_secret(&self, rotation: Rotation<'_>) -> Result<(), StepError> {
        let current = self.store.current_value(rotation.secret_id).await?;
        let current = parse(&current, AWSCURRENT, rotation.secret_id)?;
        let existing = self
            .store
            .pending_value(rotation.secret_id, rotation.version_id)
            .await?;
        if existing.is_some() {
            info!("AWSPENDING version already has a value; keeping it");
            return Ok(());
        }

        let lifetime = self.settings.token_lifetime;
        let signed =
            token::sign(&self.sdk_config, &current.host, &current.username, lifetime).await?;
        token::check_outlives(&signed, self.now()? + self.settings.rotation_period)?;
        let expires_at = token::format_time(signed.expires_at);
        let value = current.with_token(&signed.token, &expires_at);
        self.store
            .put_pending(rotation.secret_id, rotation.version_id, value)
            .await?;
        info!(
            expires_at = %expires_at,
            limited_by_credentials = signed.limited_by_credentials,
            credentials_expiry_unknown = signed.credentials_expiry_unknown,
            "stored a new token as AWSPENDING"
        );
        Ok(())
    }

    /// Does nothing: DSQL checks IAM auth tokens itself, so no password is
    /// set on the database.
    pub async fn set_secret(&self, _rotation: Rotation<'_>) -> Result<(), StepError> {
        info!("nothing to set: DSQL checks IAM auth tokens without a stored password");
        Ok(())
    }

    /// Logs in with the AWSPENDING token and runs `SELECT 1`.
    pub async fn test_secret(&self, rotation: Rotation<'_>) -> Result<(), StepError> {
        let pending = self
            .store
            .pending_value(rotation.secret_id, rotation.version_id)
            .await?
            .ok_or_else(|| StepError::NoPendingValue {
                version_id: rotation.version_id.to_owned(),
            })?;
        let pending = parse(&pending, AWSPENDING, rotation.secret_id)?;
        let password = pending.password().ok_or_else(|| StepError::NoPassword {
            version_id: rotation.version_id.to_owned(),
        })?;
        self.check_pending_expiry(&pending, rotation)?;
        self.probe
            .check(&pending, &password)
            .await
            .map_err(|source| StepError::Probe {
                version_id: rotation.version_id.to_owned(),
                source,
            })?;
        info!(host = %pending.host, user = %pending.username, "AWSPENDING token logged in");
        Ok(())
    }

    /// Moves AWSCURRENT to the new version, then removes its AWSPENDING label.
    /// `state` is the secret's description, read when the event was checked.
    ///
    /// Secrets Manager counts a rotation as unfinished while AWSPENDING is on
    /// a version other than AWSCURRENT. A label left on the new version would
    /// become such a stray once anyone stores a newer value with
    /// PutSecretValue, and RotateSecret would then fail.
    pub async fn finish_secret(
        &self,
        rotation: Rotation<'_>,
        state: &SecretState,
    ) -> Result<(), StepError> {
        let previous = state.current_version();
        if previous == Some(rotation.version_id) {
            info!("version is already AWSCURRENT");
            return Ok(());
        }
        self.store
            .move_current(rotation.secret_id, rotation.version_id, previous)
            .await?;
        info!(
            previous_version_id = previous.unwrap_or("none"),
            "moved AWSCURRENT to the new version"
        );
        self.store
            .remove_pending(rotation.secret_id, rotation.version_id)
            .await?;
        Ok(())
    }

    /// Rejects a pending token that no longer outlives the next rotation,
    /// because an earlier createSecret stored it long ago.
    fn check_pending_expiry(
        &self,
        pending: &DbSecret,
        rotation: Rotation<'_>,
    ) -> Result<(), StepError> {
        let replace_by = self.now()? + self.settings.rotation_period;
        check_pending_outlives(pending, replace_by, rotation.version_id)
    }

    fn now(&self) -> Result<SystemTime, TokenError> {
        let time_source = self.sdk_config.time_source();
        Ok(time_source.ok_or(TokenError::NoTimeSource)?.now())
    }
}

/// Checks the pending value's `expires_at` against `replace_by`. A value
/// without `expires_at`, which another tool may have written, is not checked.
fn check_pending_outlives(
    pending: &DbSecret,
    replace_by: SystemTime,
    version_id: &str,
) -> Result<(), StepError> {
    let Some(text) = pending.expires_at() else {
        return Ok(());
    };
    let expires_at = token::parse_time(text).ok_or_else(|| StepError::InvalidExpiry {
        version_id: version_id.to_owned(),
    })?;
    if expires_at >= replace_by {
        return Ok(());
    }
    Err(StepError::PendingExpiresTooSoon {
        version_id: version_id.to_owned(),
        expires_at: token::format_time(expires_at),
        replace_by: token::format_time(replace_by),
    })
}

fn parse(
    value: &crate::store::SecretValue,
    stage: &'static str,
    secret_id: &str,
) -> Result<DbSecret, StepError> {
    value.parse().map_err(|source| StepError::InvalidSecret {
        stage,
        secret_id: secret_id.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(expires_at: Option<&str>) -> DbSecret {
        let mut value = serde_json::json!({
            "username": "admin",
            "host": "localhost",
            "engine": "postgres",
            "password": "token",
        });
        if let Some(expires_at) = expires_at {
            value["expires_at"] = expires_at.into();
        }
        DbSecret::parse(&value.to_string()).unwrap()
    }

    #[test]
    fn pending_expiry_accepts_later_expiry() {
        let replace_by = token::parse_time("2026-01-02T08:00:00Z").unwrap();
        let secret = pending(Some("2026-01-02T08:00:00Z"));
        assert!(check_pending_outlives(&secret, replace_by, "v2").is_ok());
    }

    #[test]
    fn pending_expiry_rejects_earlier_expiry() {
        let replace_by = token::parse_time("2026-01-02T08:00:00Z").unwrap();
        let secret = pending(Some("2026-01-02T07:59:59Z"));
        let error = check_pending_outlives(&secret, replace_by, "v2").unwrap_err();
        let message = error.to_string();
        assert!(message.contains("version v2"), "{message}");
        assert!(message.contains("2026-01-02T07:59:59Z"), "{message}");
        assert!(message.contains("2026-01-02T08:00:00Z"), "{message}");
    }

    #[test]
    fn pending_expiry_rejects_unreadable_expiry() {
        let replace_by = token::parse_time("2026-01-02T08:00:00Z").unwrap();

        let error = check_pending_outlives(&pending(Some("soon")), replace_by, "v2").unwrap_err();

        assert!(matches!(error, StepError::InvalidExpiry { .. }), "{error}");
        assert!(error.to_string().contains("version v2"), "{error}");
    }

    #[test]
    fn pending_expiry_skips_value_without_expiry() {
        let replace_by = token::parse_time("2026-01-02T08:00:00Z").unwrap();
        assert!(check_pending_outlives(&pending(None), replace_by, "v2").is_ok());
    }
}
