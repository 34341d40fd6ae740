//! AWS clients, configured through the standard chain (`AWS_PROFILE`,
//! `AWS_ENDPOINT_URL`, credentials files, ...) with the region from the settings.

use aws_config::{BehaviorVersion, Region, SdkConfig};

/// The clients that the deployer uses, sharing one configuration.
pub struct Clients {
    pub cloudformation: aws_sdk_cloudformation::Client,
    pub s3: aws_sdk_s3::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
}

impl Clients {
    /// Loads the shared configuration for `region` and builds every client.
    pub async fn load(region: &str) -> Self {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .load()
            .await;

        Clients {
            cloudformation: aws_sdk_cloudformation::Client::new(&config),
            s3: s3_client(&config),
            lambda: aws_sdk_lambda::Client::new(&config),
            secrets: aws_sdk_secretsmanager::Client::new(&config),
        }
    }
}

/// Builds the S3 client; a custom endpoint (an emulator on 127.0.0.1) needs
/// path-style addressing, since a bucket cannot become a subdomain of an IP.
fn s3_client(config: &SdkConfig) -> aws_sdk_s3::Client {
    let s3_config = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(config.endpoint_url().is_some())
        .build();
    aws_sdk_s3::Client::from_conf(s3_config)
}

/// Formats an SDK error as `Code: message` when the service sent them, so
/// errors stay one readable line. Other failures (network, credentials)
/// show the display text of their whole cause chain.
pub fn error_message<E>(err: &E) -> String
where
    E: aws_sdk_cloudformation::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    match (err.code(), err.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_string(),
        _ => crate::db::error_chain(err),
    }
}
