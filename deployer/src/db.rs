//! Connections to the cluster with the credentials stored in the secret,
//! over TLS that verifies the certificate chain and the host name.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use rustls::crypto::aws_lc_rs;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::aws::{error_message, Clients};
use crate::progress::LineReporter;
use crate::stack::Stacks;

/// Maximum time for the TCP connection, the TLS handshake and the login.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// Connection fields of the secret. The password is a DSQL auth token, so
/// `Debug` leaves it out.
pub struct Credentials {
    pub username: String,
    pub password: String,
    pub host: String,
    pub port: u16,
    pub dbname: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Credentials")
            .field("username", &self.username)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("dbname", &self.dbname)
            .finish_non_exhaustive()
    }
}

/// Reads the AWSCURRENT credentials of the stack's secret.
pub async fn read_credentials(clients: &Clients, stack: &str) -> anyhow::Result<Credentials> {
    let reporter = LineReporter::new();
    let stacks = Stacks::new(&clients.cloudformation, &reporter);
    let state = stacks.describe_deployed(stack).await?;
    let secret = state.output("SecretArn")?;

    let value = clients
        .secrets
        .get_secret_value()
        .secret_id(secret)
        .send()
        .await
        .map_err(|err| anyhow::anyhow!("GetSecretValue on {secret} failed: {}; the secret's resource policy lets only the rotator and the roles in `application_role_arns` read it", error_message(&err)))?;
    parse_credentials(value.secret_string().unwrap_or_default())
        .with_context(|| format!("secret {secret} has no usable connection fields"))
}

fn parse_credentials(text: &str) -> anyhow::Result<Credentials> {
    let fields: serde_json::Value = serde_json::from_str(text).context("the value is not JSON")?;
    let field = |name: &str| {
        fields
            .get(name)
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
            .with_context(|| format!("missing field `{name}`"))
    };
    let port = match fields.get("port") {
        Some(serde_json::Value::Number(number)) => number.as_u64(),
        Some(serde_json::Value::String(text)) => text.parse().ok(),
        _ => None,
    }
    .and_then(|port| u16::try_from(port).ok())
    .context("missing or invalid field `port`")?;

    let password = field("password")?;
    if !password.contains("X-Amz-Signature=") {
        bail!("the password is not a DSQL auth token yet; wait for the first rotation or run `deployer rotate`");
    }
    Ok(Credentials {
        username: field("username")?,
        password,
        host: field("host")?,
        port,
        dbname: field("dbname")?,
    })
}

/// Builds the TLS connector: Mozilla's roots, the system's roots (which
/// include `SSL_CERT_FILE` when it is set) and the certificates in `ca_file`.
pub fn tls_connector(ca_file: Option<&Path>) -> anyhow::Result<MakeRustlsConnect> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        tracing::warn!(error = %error, "skipped part of the system certificate store");
    }
    roots.add_parsable_certificates(native.certs);

    if let Some(path) = ca_file {
        let certificates = CertificateDer::pem_file_iter(path)
            .and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>())
            .with_context(|| format!("cannot read CA certificates from {}", path.display()))?;
        if certificates.is_empty() {
            bail!("{} contains no PEM certificate", path.display());
        }
        let (added, _) = roots.add_parsable_certificates(certificates);
        tracing::info!(path = %path.display(), added, "added CA certificates");
    }

    let config = ClientConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// Connects with the credentials. The connector verifies the chain and the
/// host name, so `SslMode::Require` here has the effect of libpq's verify-full.
pub async fn connect(
    credentials: &Credentials,
    tls: MakeRustlsConnect,
) -> anyhow::Result<tokio_postgres::Client> {
    let mut config = tokio_postgres::Config::new();
    config
        .host(&credentials.host)
        .port(credentials.port)
        .user(&credentials.username)
        .password(&credentials.password)
        .dbname(&credentials.dbname)
        .application_name("deployer")
        .ssl_mode(SslMode::Require)
        .connect_timeout(CONNECT_TIMEOUT);

    let target = format!(
        "{}@{}:{}/{}",
        credentials.username, credentials.host, credentials.port, credentials.dbname
    );
    let (client, connection) = tokio::time::timeout(CONNECT_TIMEOUT, config.connect(tls))
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "connecting to {target} timed out after {} s",
                CONNECT_TIMEOUT.as_secs()
            )
        })?
        .map_err(|err| anyhow::anyhow!("cannot connect to {target}: {}", connect_error(&err)))?;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::warn!(error = %err, "database connection closed with an error");
        }
    });
    Ok(client)
}

/// Formats a failed connection, with a hint where the server's certificate
/// did not verify.
fn connect_error(err: &tokio_postgres::Error) -> String {
    let text = error_chain(err);
    match text.contains("invalid peer certificate") {
        true => format!("{text}; the server's certificate does not verify against the trusted CA certificates; for a test server, pass its CA file with --ca-file"),
        false => text,
    }
}

/// Formats an error with its sources: tokio-postgres keeps the cause of a
/// failed handshake or login (an untrusted certificate, a rejected password)
/// in the source.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}

/// Database connection flags shared by `verify`, `psql` and `schema apply`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConnectArgs {
    /// Extra PEM file of CA certificates to trust, for example a test server's CA.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str =
        "h/?Action=DbConnectAdmin&X-Amz-Date=20261204T145000Z&X-Amz-Expires=900&X-Amz-Signature=00";

    #[test]
    fn credentials_read_from_secret() {
        let text = format!(
            r#"{{"username":"admin","password":"{TOKEN}","host":"h","port":5432,"dbname":"postgres","engine":"postgres"}}"#
        );

        let credentials = parse_credentials(&text).unwrap();

        assert_eq!(credentials.username, "admin");
        assert_eq!(credentials.port, 5432);
        assert!(!format!("{credentials:?}").contains("X-Amz"));
    }

    #[test]
    fn placeholder_password_is_rejected() {
        let text = r#"{"username":"admin","password":"placeholder","host":"h","port":5432,"dbname":"postgres"}"#;

        let error = parse_credentials(text).unwrap_err();

        assert!(
            error.to_string().contains("not a DSQL auth token yet"),
            "{error}"
        );
    }
}
