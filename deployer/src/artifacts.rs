//! The artifacts bucket: created on first use in a stack of its own, and the
//! content-addressed upload of the rotator's zip.

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use aws_sdk_s3::Client;

use crate::package::Artifact;
use crate::stack::{StackError, Stacks};
use crate::template::ARTIFACTS_TEMPLATE;

/// A failed S3 call or an artifacts stack without its bucket.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactsError {
    #[error(transparent)]
    Stack(#[from] StackError),

    #[error("artifacts stack {stack} has no BucketName output; delete it with `deployer down --artifacts` and run `up` again")]
    NoBucketOutput { stack: String },

    #[error("{operation} on s3://{bucket}/{key} failed: {message}")]
    S3 {
        operation: &'static str,
        bucket: String,
        key: String,
        message: String,
    },
}

/// Whether the upload happened or the object was already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadOutcome {
    Uploaded,
    AlreadyPresent,
}

/// Returns the bucket to upload to: the configured one, or the artifacts
/// stack's bucket, creating that stack when it is missing.
pub async fn ensure_bucket(
    stacks: &Stacks<'_>,
    configured: Option<&str>,
    artifacts_stack: &str,
) -> Result<String, ArtifactsError> {
    if let Some(bucket) = configured {
        return Ok(bucket.to_string());
    }

    let state = match stacks.describe(artifacts_stack).await? {
        Some(state) if state.status == "CREATE_COMPLETE" || state.status == "UPDATE_COMPLETE" => {
            state
        }
        _ => {
            stacks.apply(artifacts_stack, ARTIFACTS_TEMPLATE).await?;
            stacks.describe(artifacts_stack).await?.ok_or_else(|| {
                ArtifactsError::NoBucketOutput {
                    stack: artifacts_stack.into(),
                }
            })?
        }
    };

    bucket_output(&state.outputs).ok_or_else(|| ArtifactsError::NoBucketOutput {
        stack: artifacts_stack.into(),
    })
}

/// Returns the artifacts stack's bucket name, if the stack exists.
pub async fn existing_bucket(
    stacks: &Stacks<'_>,
    artifacts_stack: &str,
) -> Result<Option<String>, ArtifactsError> {
    let state = stacks.describe(artifacts_stack).await?;
    Ok(state.and_then(|state| bucket_output(&state.outputs)))
}

fn bucket_output(outputs: &[(String, String)]) -> Option<String> {
    outputs
        .iter()
        .find(|(key, _)| key == "BucketName")
        .map(|(_, value)| value.clone())
}

/// Uploads the zip under its content-addressed key unless it is already there.
pub async fn upload(
    s3: &Client,
    bucket: &str,
    artifact: &Artifact,
) -> Result<UploadOutcome, ArtifactsError> {
    let key = artifact.key();
    let s3_error = |operation, message| ArtifactsError::S3 {
        operation,
        bucket: bucket.to_string(),
        key: key.clone(),
        message,
    };

    match s3.head_object().bucket(bucket).key(&key).send().await {
        Ok(_) => return Ok(UploadOutcome::AlreadyPresent),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|service| service.is_not_found()) => {}
        Err(err) => return Err(s3_error("HeadObject", crate::aws::error_message(&err))),
    }

    s3.put_object()
        .bucket(bucket)
        .key(&key)
        .body(ByteStream::from(artifact.zip.clone()))
        .content_type("application/zip")
        .send()
        .await
        .map_err(|err| s3_error("PutObject", crate::aws::error_message(&err)))?;

    tracing::info!(
        bucket,
        key,
        bytes = artifact.zip.len(),
        "uploaded rotator artifact"
    );
    Ok(UploadOutcome::Uploaded)
}

/// Deletes every object and object version in the bucket, so its stack can remove it.
pub async fn empty_bucket(s3: &Client, bucket: &str) -> Result<usize, ArtifactsError> {
    let mut deleted = 0;
    loop {
        let listing = s3.list_object_versions().bucket(bucket).send().await;
        let listing = match listing {
            Ok(listing) => listing,
            Err(err) if err.code() == Some("NoSuchBucket") => return Ok(deleted),
            Err(err) => return Err(bucket_error("ListObjectVersions", bucket, &err)),
        };

        let identifiers = object_identifiers(&listing);
        if identifiers.is_empty() {
            return Ok(deleted);
        }

        deleted += identifiers.len();
        let delete = Delete::builder()
            .set_objects(Some(identifiers))
            .quiet(true)
            .build()
            .map_err(|err| ArtifactsError::S3 {
                operation: "DeleteObjects",
                bucket: bucket.to_string(),
                key: String::new(),
                message: err.to_string(),
            })?;
        s3.delete_objects()
            .bucket(bucket)
            .delete(delete)
            .send()
            .await
            .map_err(|err| bucket_error("DeleteObjects", bucket, &err))?;
    }
}

fn object_identifiers(
    listing: &aws_sdk_s3::operation::list_object_versions::ListObjectVersionsOutput,
) -> Vec<ObjectIdentifier> {
    let versions = listing
        .versions()
        .iter()
        .filter_map(|version| Some((version.key()?, version.version_id())));
    let markers = listing
        .delete_markers()
        .iter()
        .filter_map(|marker| Some((marker.key()?, marker.version_id())));

    versions
        .chain(markers)
        .filter_map(|(key, version_id)| {
            ObjectIdentifier::builder()
                .key(key)
                .set_version_id(version_id.map(str::to_string))
                .build()
                .ok()
        })
        .collect()
}

fn bucket_error<E: ProvideErrorMetadata + std::error::Error + 'static>(
    operation: &'static str,
    bucket: &str,
    err: &E,
) -> ArtifactsError {
    ArtifactsError::S3 {
        operation,
        bucket: bucket.to_string(),
        key: String::new(),
        message: crate::aws::error_message(err),
    }
}
