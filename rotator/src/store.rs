//! Secrets Manager calls that a rotation makes, with errors that name the
//! operation and the secret but never carry a secret value.

use std::collections::HashMap;
use std::fmt;

use aws_sdk_secretsmanager::error::SdkError;
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
use aws_sdk_secretsmanager::Client;

use crate::probe::error_chain;
use crate::secret::{DbSecret, SecretError};

pub const AWSCURRENT: &str = "AWSCURRENT";
pub const AWSPENDING: &str = "AWSPENDING";

/// A failed Secrets Manager call.
#[derive(Debug, thiserror::Error)]
#[error("{operation} on secret {secret_id} failed: {message}")]
pub struct ApiError {
    pub operation: &'static str,
    pub secret_id: String,
    pub message: String,
}

/// A secret version's `SecretString`. `Debug` prints a placeholder.
pub struct SecretValue(String);

impl SecretValue {
    pub fn parse(&self) -> Result<DbSecret, SecretError> {
        DbSecret::parse(&self.0)
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

/// The rotation-related part of `DescribeSecret`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretState {
    pub rotation_enabled: bool,
    /// Staging labels of each version, by version id.
    pub stages: HashMap<String, Vec<String>>,
}

impl SecretState {
    /// Returns the version that carries AWSCURRENT.
    pub fn current_version(&self) -> Option<&str> {
        self.stages
            .iter()
            .find(|(_, stages)| stages.iter().any(|stage| stage == AWSCURRENT))
            .map(|(version, _)| version.as_str())
    }
}

/// Secrets Manager, as the rotation steps use it.
#[derive(Clone, Debug)]
pub struct SecretStore {
    client: Client,
}

impl SecretStore {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// Reads whether rotation is enabled and the labels of every version.
    pub async fn describe(&self, secret_id: &str) -> Result<SecretState, ApiError> {
        let output = self
            .client
            .describe_secret()
            .secret_id(secret_id)
            .send()
            .await
            .map_err(|error| api_error("DescribeSecret", secret_id, error))?;
        Ok(SecretState {
            rotation_enabled: output.rotation_enabled().unwrap_or(false),
            stages: output.version_ids_to_stages().cloned().unwrap_or_default(),
        })
    }

    /// Reads the AWSCURRENT value.
    pub async fn current_value(&self, secret_id: &str) -> Result<SecretValue, ApiError> {
        self.value(secret_id, None, AWSCURRENT)
            .await?
            .ok_or_else(|| ApiError {
                operation: "GetSecretValue",
                secret_id: secret_id.to_owned(),
                message: "the AWSCURRENT version has no value".to_owned(),
            })
    }

    /// Reads the AWSPENDING value of `version_id`, or `None` when that
    /// version has no value yet.
    pub async fn pending_value(
        &self,
        secret_id: &str,
        version_id: &str,
    ) -> Result<Option<SecretValue>, ApiError> {
        self.value(secret_id, Some(version_id), AWSPENDING).await
    }

    /// Stores `value` as version `version_id` with the AWSPENDING label.
    pub async fn put_pending(
        &self,
        secret_id: &str,
        version_id: &str,
        value: String,
    ) -> Result<(), ApiError> {
        self.client
            .put_secret_value()
            .secret_id(secret_id)
            .client_request_token(version_id)
            .secret_string(value)
            .version_stages(AWSPENDING)
            .send()
            .await
            .map_err(|error| api_error("PutSecretValue", secret_id, error))?;
        Ok(())
    }

    /// Moves AWSCURRENT from `from_version` to `to_version`. Secrets Manager
    /// then labels `from_version` AWSPREVIOUS.
    pub async fn move_current(
        &self,
        secret_id: &str,
        to_version: &str,
        from_version: Option<&str>,
    ) -> Result<(), ApiError> {
        self.client
            .update_secret_version_stage()
            .secret_id(secret_id)
            .version_stage(AWSCURRENT)
            .move_to_version_id(to_version)
            .set_remove_from_version_id(from_version.map(str::to_owned))
            .send()
            .await
            .map_err(|error| api_error("UpdateSecretVersionStage", secret_id, error))?;
        Ok(())
    }

    /// Removes AWSPENDING from `version_id`.
    pub async fn remove_pending(&self, secret_id: &str, version_id: &str) -> Result<(), ApiError> {
        self.client
            .update_secret_version_stage()
            .secret_id(secret_id)
            .version_stage(AWSPENDING)
            .remove_from_version_id(version_id)
            .send()
            .await
            .map_err(|error| api_error("UpdateSecretVersionStage", secret_id, error))?;
        Ok(())
    }

    /// Reads one version's value. A version that does not exist, or exists
    /// without a value, is `None`: Secrets Manager reports both as
    /// ResourceNotFoundException.
    async fn value(
        &self,
        secret_id: &str,
        version_id: Option<&str>,
        stage: &str,
    ) -> Result<Option<SecretValue>, ApiError> {
        let result = self
            .client
            .get_secret_value()
            .secret_id(secret_id)
            .set_version_id(version_id.map(str::to_owned))
            .version_stage(stage)
            .send()
            .await;
        match result {
            Ok(output) => Ok(output
                .secret_string()
                .map(|text| SecretValue(text.to_owned()))),
            Err(error) if is_not_found(&error) => Ok(None),
            Err(error) => Err(api_error("GetSecretValue", secret_id, error)),
        }
    }
}

fn is_not_found<R>(error: &SdkError<GetSecretValueError, R>) -> bool {
    error
        .as_service_error()
        .is_some_and(GetSecretValueError::is_resource_not_found_exception)
}

fn api_error<E, R>(operation: &'static str, secret_id: &str, error: SdkError<E, R>) -> ApiError
where
    E: std::error::Error + 'static,
    R: fmt::Debug,
{
    ApiError {
        operation,
        secret_id: secret_id.to_owned(),
        // The display texts of the causes, because the SDK's
        // `DisplayErrorContext` adds a debug dump of the raw HTTP response.
        message: error_chain(&error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_version_finds_awscurrent() {
        let state = SecretState {
            rotation_enabled: true,
            stages: HashMap::from([
                ("v1".to_owned(), vec!["AWSPREVIOUS".to_owned()]),
                (
                    "v2".to_owned(),
                    vec![AWSCURRENT.to_owned(), AWSPENDING.to_owned()],
                ),
            ]),
        };
        assert_eq!(state.current_version(), Some("v2"));
        assert_eq!(SecretState::default().current_version(), None);
    }

    #[test]
    fn secret_value_debug_redacts() {
        let value = SecretValue(r#"{"password":"hunter2"}"#.to_owned());
        assert!(!format!("{value:?}").contains("hunter2"));
    }
}
