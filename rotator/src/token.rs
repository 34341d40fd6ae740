//! Aurora DSQL auth tokens: which action to sign, for which region, and when
//! a signed token really stops working.
//!
//! A token is a SigV4 presigned URL for `<host>/?Action=DbConnect` (or
//! `DbConnectAdmin` for the `admin` role), signed for service `dsql`. It
//! stops working at the end of its own lifetime (`X-Amz-Expires`, at most
//! 604,800 s) or when the credentials that signed it expire, whichever comes
//! first.

use std::fmt;
use std::time::{Duration, SystemTime};

use aws_config::{Region, SdkConfig};
use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::Credentials;
use aws_sdk_dsql::auth_token::{AuthTokenGenerator, Config as SignerConfig};
use aws_smithy_types::date_time::{DateTime, Format};

/// The maximum lifetime that DSQL accepts for an auth token: 7 days.
pub const MAX_LIFETIME: Duration = Duration::from_secs(604_800);

/// Failures while signing a token or checking how long it lives.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(
        "no signing region: host `{host}` is not a DSQL endpoint \
         (<cluster-id>.dsql.<region>.on.aws) and AWS_REGION is not set"
    )]
    NoRegion { host: String },
    #[error("no AWS credentials to sign the auth token with")]
    NoCredentials,
    #[error("no time source in the AWS SDK configuration")]
    NoTimeSource,
    #[error("failed to load AWS credentials: {0}")]
    Credentials(String),
    #[error("failed to sign the auth token for host `{host}`: {message}")]
    Signing { host: String, message: String },
    #[error(
        "the new auth token would stop working at {expires_at}, before the next rotation \
         can replace it at {replace_by}{cause}; raise TOKEN_LIFETIME_SECONDS or sign with \
         credentials that live longer"
    )]
    ExpiresTooSoon {
        expires_at: String,
        replace_by: String,
        cause: &'static str,
    },
}

/// An auth token. `Debug` and `Display` print a placeholder, so the token
/// cannot reach a log line or an error message by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// Returns the token itself, for the secret value and the database login only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The IAM action that a token authorizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `dsql:DbConnect`, for every database role except `admin`.
    DbConnect,
    /// `dsql:DbConnectAdmin`, for the `admin` role.
    DbConnectAdmin,
}

impl Action {
    /// Chooses the action for a database role: DbConnectAdmin for `admin`
    /// in any letter case, DbConnect for every other role.
    pub fn for_user(username: &str) -> Self {
        if username.eq_ignore_ascii_case("admin") {
            Self::DbConnectAdmin
        } else {
            Self::DbConnect
        }
    }
}

/// A freshly signed token and the instant it stops working.
#[derive(Debug)]
pub struct SignedToken {
    pub token: Token,
    pub expires_at: SystemTime,
    /// True when the signing credentials expire before the token's own lifetime ends.
    pub limited_by_credentials: bool,
    /// True when the credentials are temporary but do not report when they expire.
    pub credentials_expiry_unknown: bool,
}

/// Derives the signing region from a DSQL host name.
///
/// Public endpoints read `<cluster-id>.dsql.<region>.on.aws`. PrivateLink
/// endpoints put the endpoint service id (`dsql-xxxx`) in the second label.
/// Any other host (a test server, a proxy) falls back to `default_region`.
pub fn signing_region(host: &str, default_region: Option<&Region>) -> Result<Region, TokenError> {
    let labels: Vec<&str> = host.trim_end_matches('.').split('.').collect();
    if let [_, service, region, "on", "aws"] = labels.as_slice() {
        let is_dsql = *service == "dsql" || service.starts_with("dsql-");
        if is_dsql && !region.is_empty() {
            return Ok(Region::new(region.to_string()));
        }
    }
    default_region.cloned().ok_or_else(|| TokenError::NoRegion {
        host: host.to_owned(),
    })
}

/// Signs a token for `username` on `host` that lives for `lifetime`.
///
/// The credentials are resolved once and handed to the signer, so the
/// expiry reported here belongs to the credentials that signed the token.
/// The signing time comes from the SDK configuration's time source.
pub async fn sign(
    sdk_config: &SdkConfig,
    host: &str,
    username: &str,
    lifetime: Duration,
) -> Result<SignedToken, TokenError> {
    let region = signing_region(host, sdk_config.region())?;
    let credentials = load_credentials(sdk_config).await?;
    let signed_at = sdk_config
        .time_source()
        .ok_or(TokenError::NoTimeSource)?
        .now();

    let signer_config = SignerConfig::builder()
        .hostname(host)
        .region(region)
        .expires_in(lifetime.as_secs())
        .credentials(credentials.clone())
        .build()
        .map_err(|error| signing_error(host, error))?;
    let generator = AuthTokenGenerator::new(signer_config);
    let token = match Action::for_user(username) {
        Action::DbConnectAdmin => generator.db_connect_admin_auth_token(sdk_config).await,
        Action::DbConnect => generator.db_connect_auth_token(sdk_config).await,
    }
    .map_err(|error| signing_error(host, error))?;

    // NOTE: Lambda passes the execution role's temporary credentials in
    // environment variables without their expiry, so in Lambda the expiry is
    // the token's own and `credentials_expiry_unknown` is set. A token that
    // dies earlier with those credentials is caught only by testSecret's
    // login, which happens right away, not hours later.
    let own_expiry = signed_at + lifetime;
    let credentials_expiry = credentials.expiry();
    let expires_at = credentials_expiry.map_or(own_expiry, |expiry| expiry.min(own_expiry));
    Ok(SignedToken {
        token: Token::new(token.as_str()),
        expires_at,
        limited_by_credentials: credentials_expiry.is_some_and(|expiry| expiry < own_expiry),
        credentials_expiry_unknown: credentials.session_token().is_some()
            && credentials_expiry.is_none(),
    })
}

/// Rejects a token that stops working before `replace_by`, the latest time
/// at which the next scheduled rotation can have replaced it.
pub fn check_outlives(signed: &SignedToken, replace_by: SystemTime) -> Result<(), TokenError> {
    if signed.expires_at >= replace_by {
        return Ok(());
    }
    let cause = if signed.limited_by_credentials {
        " because the credentials that signed it expire then"
    } else {
        ""
    };
    Err(TokenError::ExpiresTooSoon {
        expires_at: format_time(signed.expires_at),
        replace_by: format_time(replace_by),
        cause,
    })
}

/// Formats an instant as RFC 3339 in UTC, for example `2026-01-02T03:04:05Z`.
pub fn format_time(time: SystemTime) -> String {
    DateTime::from(time)
        .fmt(Format::DateTime)
        .unwrap_or_else(|_| "<unrepresentable time>".to_owned())
}

/// Parses an RFC 3339 instant, as written by [`format_time`].
pub fn parse_time(text: &str) -> Option<SystemTime> {
    let parsed = DateTime::from_str(text, Format::DateTime).ok()?;
    SystemTime::try_from(parsed).ok()
}

async fn load_credentials(sdk_config: &SdkConfig) -> Result<Credentials, TokenError> {
    let provider = sdk_config
        .credentials_provider()
        .ok_or(TokenError::NoCredentials)?;
    provider
        .provide_credentials()
        .await
        .map_err(|error| TokenError::Credentials(error.to_string()))
}

fn signing_error(host: &str, error: impl fmt::Display) -> TokenError {
    TokenError::Signing {
        host: host.to_owned(),
        message: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use aws_credential_types::provider::SharedCredentialsProvider;
    use aws_smithy_async::time::StaticTimeSource;
    use serde::Deserialize;

    /// One case of the botocore-generated token vectors.
    #[derive(Deserialize)]
    struct Vector {
        host: String,
        region: String,
        access_key_id: String,
        secret_access_key: String,
        session_token: Option<String>,
        expires_in: u64,
        at: String,
        admin_token: String,
        token: String,
    }

    #[derive(Deserialize)]
    struct Vectors {
        cases: Vec<Vector>,
    }

    /// Reads `tests/data/dsql-auth-tokens.json`: tokens made by botocore
    /// 1.44.8 for fixed inputs, with its signing clock fixed to each case's `at`.
    fn load_vectors() -> Vec<Vector> {
        let path =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/dsql-auth-tokens.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
        let vectors: Vectors = serde_json::from_str(&text).expect("vectors are valid JSON");
        assert!(!vectors.cases.is_empty(), "no cases in {}", path.display());
        vectors.cases
    }

    fn sdk_config_for(credentials: Credentials, at: SystemTime, region: Option<&str>) -> SdkConfig {
        let mut builder = SdkConfig::builder()
            .credentials_provider(SharedCredentialsProvider::new(credentials))
            .time_source(StaticTimeSource::new(at));
        if let Some(region) = region {
            builder = builder.region(Region::new(region.to_owned()));
        }
        builder.build()
    }

    fn vector_config(vector: &Vector) -> SdkConfig {
        let credentials = Credentials::new(
            &vector.access_key_id,
            &vector.secret_access_key,
            vector.session_token.clone(),
            None,
            "test vectors",
        );
        let at = parse_time(&vector.at).expect("vector time is RFC 3339");
        sdk_config_for(credentials, at, None)
    }

    /// Splits a token into its host path and its query parameters.
    fn parse_token(token: &str) -> (String, BTreeMap<String, String>) {
        let (path, query) = token.split_once('?').expect("token has a query");
        let params = query
            .split('&')
            .map(|pair| {
                let (name, value) = pair.split_once('=').expect("parameter has a value");
                (name.to_owned(), value.to_owned())
            })
            .collect();
        (path.to_owned(), params)
    }

    async fn sign_vector(vector: &Vector, username: &str) -> String {
        let lifetime = Duration::from_secs(vector.expires_in);
        let signed = sign(&vector_config(vector), &vector.host, username, lifetime)
            .await
            .expect("vector signs");
        signed.token.expose().to_owned()
    }

    #[tokio::test]
    async fn sign_matches_botocore_vectors() {
        for vector in load_vectors() {
            let admin = sign_vector(&vector, "admin").await;
            let app = sign_vector(&vector, "app_user").await;
            if vector.session_token.is_none() {
                assert_eq!(admin, vector.admin_token, "admin token for {}", vector.at);
                assert_eq!(app, vector.token, "app token for {}", vector.at);
            } else {
                // botocore places X-Amz-Security-Token before X-Amz-Signature and
                // aws-sdk-dsql after it; the server sorts parameters before checking.
                assert_eq!(parse_token(&admin), parse_token(&vector.admin_token));
                assert_eq!(parse_token(&app), parse_token(&vector.token));
            }
        }
    }

    #[tokio::test]
    async fn sign_takes_region_from_dsql_host() {
        for vector in load_vectors() {
            let (_, params) = parse_token(&sign_vector(&vector, "admin").await);
            let scope = format!("%2F{}%2Fdsql%2Faws4_request", vector.region);
            assert!(params["X-Amz-Credential"].ends_with(&scope));
        }
    }

    #[tokio::test]
    async fn sign_uses_admin_action_case_insensitively() {
        let vector = &load_vectors()[0];
        assert_eq!(sign_vector(vector, "ADMIN").await, vector.admin_token);
        assert_eq!(sign_vector(vector, "Admin").await, vector.admin_token);
        assert_eq!(sign_vector(vector, "admin2").await, vector.token);
    }

    #[test]
    fn signing_region_parses_public_and_privatelink_hosts() {
        let fallback = Region::new("us-west-2");
        let cases = [
            ("abc.dsql.eu-west-1.on.aws", "eu-west-1"),
            ("abc.dsql-fnh4.ap-southeast-2.on.aws", "ap-southeast-2"),
            ("localhost", "us-west-2"),
            ("127.0.0.1", "us-west-2"),
            ("abc.rds.eu-west-1.on.aws", "us-west-2"),
        ];
        for (host, expected) in cases {
            let region = signing_region(host, Some(&fallback)).expect("region");
            assert_eq!(region.as_ref(), expected, "host {host}");
        }
    }

    #[test]
    fn signing_region_without_fallback_names_host() {
        let error = signing_region("localhost", None).unwrap_err();
        assert!(error.to_string().contains("`localhost`"), "{error}");
    }

    #[tokio::test]
    async fn expiry_is_token_lifetime_for_long_term_keys() {
        let at = parse_time("2026-01-02T03:04:05Z").unwrap();
        let credentials = Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        let config = sdk_config_for(credentials, at, Some("us-east-1"));
        let lifetime = Duration::from_secs(28_800);
        let signed = sign(&config, "localhost", "admin", lifetime).await.unwrap();
        assert_eq!(signed.expires_at, at + lifetime);
        assert!(!signed.limited_by_credentials);
        assert!(!signed.credentials_expiry_unknown);
    }

    #[tokio::test]
    async fn expiry_is_capped_by_credentials() {
        let at = parse_time("2026-01-02T03:04:05Z").unwrap();
        let credentials_expiry = at + Duration::from_secs(3_600);
        let credentials = Credentials::new(
            "ASIA",
            "secret",
            Some("session".into()),
            Some(credentials_expiry),
            "test",
        );
        let config = sdk_config_for(credentials, at, Some("us-east-1"));
        let signed = sign(&config, "localhost", "admin", Duration::from_secs(28_800))
            .await
            .unwrap();
        assert_eq!(signed.expires_at, credentials_expiry);
        assert!(signed.limited_by_credentials);

        let replace_by = at + Duration::from_secs(18_000);
        let error = check_outlives(&signed, replace_by).unwrap_err().to_string();
        assert!(error.contains("2026-01-02T04:04:05Z"), "{error}");
        assert!(error.contains("2026-01-02T08:04:05Z"), "{error}");
        assert!(
            error.contains("credentials that signed it expire"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn expiry_unknown_for_temporary_keys_without_expiry() {
        let at = parse_time("2026-01-02T03:04:05Z").unwrap();
        let credentials = Credentials::new("ASIA", "secret", Some("session".into()), None, "test");
        let config = sdk_config_for(credentials, at, Some("us-east-1"));
        let signed = sign(&config, "localhost", "app", Duration::from_secs(900))
            .await
            .unwrap();
        assert!(signed.credentials_expiry_unknown);
        assert!(check_outlives(&signed, at + Duration::from_secs(900)).is_ok());
        assert!(check_outlives(&signed, at + Duration::from_secs(901)).is_err());
    }

    #[test]
    fn token_debug_and_display_redact() {
        let token = Token::new("host/?Action=DbConnect&X-Amz-Signature=abc123");
        assert_eq!(format!("{token}"), "<redacted>");
        assert_eq!(format!("{token:?}"), "Token(<redacted>)");
        assert!(!format!("{:?}", Some(&token)).contains("abc123"));
    }

    #[test]
    fn format_and_parse_time_round_trip() {
        let text = "2026-03-15T12:00:00Z";
        let parsed = parse_time(text).expect("parses");
        assert_eq!(format_time(parsed), text);
        assert_eq!(parse_time("yesterday"), None);
    }
}
