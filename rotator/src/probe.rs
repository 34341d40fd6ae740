//! A login test: connect with a token over verified TLS and run `SELECT 1`.
//!
//! TLS is always verify-full: the server's chain must lead to a trusted root
//! and its certificate must name the host, and the host name goes out as SNI.
//! The roots are Mozilla's set bundled by `webpki-roots` (it contains Amazon
//! Root CA 1, which DSQL endpoints chain to) plus the system store, read by
//! `rustls-native-certs`, which also honours `SSL_CERT_FILE` and
//! `SSL_CERT_DIR`. There is no fallback to an unverified or plain connection.

use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::aws_lc_rs;
use rustls::{ClientConfig, RootCertStore};
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;
use tracing::{debug, warn};

use crate::secret::DbSecret;
use crate::token::Token;

/// Time allowed for TCP connect, TLS handshake and authentication together.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for `SELECT 1` once logged in.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);
const APPLICATION_NAME: &str = "dsql-token-rotator";

/// Failures of the TLS set-up or of the login test.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("failed to build the TLS client configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("no trusted root certificates were loaded")]
    NoRoots,
    #[error("login to {host}:{port} as `{user}` timed out after {seconds} s")]
    ConnectTimeout {
        host: String,
        port: u16,
        user: String,
        seconds: u64,
    },
    #[error("login to {host}:{port} as `{user}` failed: {}", error_chain(.source))]
    Connect {
        host: String,
        port: u16,
        user: String,
        source: tokio_postgres::Error,
    },
    #[error("`SELECT 1` timed out after {seconds} s")]
    StatementTimeout { seconds: u64 },
    #[error("`SELECT 1` failed: {}", error_chain(.0))]
    Statement(tokio_postgres::Error),
    #[error("`SELECT 1` returned {0} instead of 1")]
    UnexpectedResult(i32),
}

/// Connects to the database with given credentials, over TLS only.
#[derive(Clone)]
pub struct Probe {
    tls: MakeRustlsConnect,
    connect_timeout: Duration,
    statement_timeout: Duration,
}

impl Probe {
    /// Builds the probe with the bundled and system roots.
    pub fn new() -> Result<Self, ProbeError> {
        Self::with_roots(root_store()?)
    }

    fn with_roots(roots: RootCertStore) -> Result<Self, ProbeError> {
        Ok(Self {
            tls: MakeRustlsConnect::new(tls_config(roots)?),
            connect_timeout: CONNECT_TIMEOUT,
            statement_timeout: STATEMENT_TIMEOUT,
        })
    }

    /// Logs in as the secret's user with `password`, runs `SELECT 1` and closes.
    pub async fn check(&self, secret: &DbSecret, password: &Token) -> Result<(), ProbeError> {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&secret.host)
            .port(secret.port)
            .user(&secret.username)
            .password(password.expose())
            .dbname(&secret.dbname)
            .application_name(APPLICATION_NAME)
            .ssl_mode(SslMode::Require)
            .connect_timeout(self.connect_timeout);

        let connect = config.connect(self.tls.clone());
        let (client, connection) = tokio::time::timeout(self.connect_timeout, connect)
            .await
            .map_err(|_| self.connect_timeout_error(secret))?
            .map_err(|source| connect_error(secret, source))?;
        let connection = tokio::spawn(connection);

        let result = self.select_one(&client).await;
        drop(client);
        if let Ok(Err(error)) = connection.await {
            debug!(error = %error, "database connection closed with an error");
        }
        result
    }

    async fn select_one(&self, client: &tokio_postgres::Client) -> Result<(), ProbeError> {
        let query = client.query_one("SELECT 1", &[]);
        let row = tokio::time::timeout(self.statement_timeout, query)
            .await
            .map_err(|_| ProbeError::StatementTimeout {
                seconds: self.statement_timeout.as_secs(),
            })?
            .map_err(ProbeError::Statement)?;
        match row.try_get::<_, i32>(0).map_err(ProbeError::Statement)? {
            1 => Ok(()),
            other => Err(ProbeError::UnexpectedResult(other)),
        }
    }

    fn connect_timeout_error(&self, secret: &DbSecret) -> ProbeError {
        ProbeError::ConnectTimeout {
            host: secret.host.clone(),
            port: secret.port,
            user: secret.username.clone(),
            seconds: self.connect_timeout.as_secs(),
        }
    }
}

/// Formats an error with its sources. tokio-postgres keeps the cause of a
/// failed TLS handshake or login (an untrusted certificate, a rejected
/// password) in the source rather than in its own message, and so do the
/// AWS SDK's errors.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
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

fn connect_error(secret: &DbSecret, source: tokio_postgres::Error) -> ProbeError {
    ProbeError::Connect {
        host: secret.host.clone(),
        port: secret.port,
        user: secret.username.clone(),
        source,
    }
}

/// Collects the bundled Mozilla roots and the system's roots.
fn root_store() -> Result<RootCertStore, ProbeError> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        warn!(error = %error, "skipped part of the system certificate store");
    }
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    debug!(added, ignored, "loaded system root certificates");
    if roots.is_empty() {
        return Err(ProbeError::NoRoots);
    }
    Ok(roots)
}

/// Builds a rustls configuration with the aws-lc-rs provider and the
/// default certificate verifier, which checks the chain and the host name.
fn tls_config(roots: RootCertStore) -> Result<ClientConfig, ProbeError> {
    let provider = Arc::new(aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::io::{Read, Write};
    use std::path::PathBuf;

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use rustls::{ServerConfig, ServerConnection};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    #[test]
    fn root_store_contains_amazon_root_ca_1() {
        let roots = root_store().unwrap();
        let amazon = roots
            .roots
            .iter()
            .any(|anchor| contains(anchor.subject.as_ref(), b"Amazon Root CA 1"));
        assert!(amazon, "Amazon Root CA 1 is missing from the trusted roots");
    }

    /// Plays a server that replies `N` (no TLS) to PostgreSQL's SSLRequest,
    /// and returns the SSLRequest and whatever the client sends next.
    async fn serve_without_tls(listener: TcpListener) -> (Vec<u8>, Vec<u8>) {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut ssl_request = vec![0_u8; 8];
        socket.read_exact(&mut ssl_request).await.unwrap();
        socket.write_all(b"N").await.unwrap();
        let mut rest = Vec::new();
        let _ = socket.read_to_end(&mut rest).await;
        (ssl_request, rest)
    }

    #[tokio::test]
    async fn check_rejects_server_without_tls() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(serve_without_tls(listener));
        let text = format!(
            r#"{{"username":"admin","host":"127.0.0.1","port":{port},"engine":"postgres"}}"#
        );
        let secret = DbSecret::parse(&text).unwrap();

        let probe = Probe::new().unwrap();
        let error = probe
            .check(&secret, &Token::new("token-must-not-be-sent"))
            .await
            .unwrap_err();
        let (ssl_request, rest) = server.await.unwrap();

        assert!(matches!(error, ProbeError::Connect { .. }), "{error}");
        // SSLRequest: length 8, then the request code 80877103.
        assert_eq!(ssl_request, [0, 0, 0, 8, 4, 210, 22, 47]);
        assert!(
            rest.is_empty(),
            "client sent {} bytes in plain text",
            rest.len()
        );
    }

    /// The outcome of a client's TLS handshake, as the test server sees it.
    #[derive(Debug, PartialEq, Eq)]
    enum Handshake {
        /// The handshake completed; the client sent this SNI host name.
        Completed { sni: Option<String> },
        /// The client aborted the handshake.
        Aborted,
    }

    fn test_data(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name)
    }

    fn server_config() -> Arc<ServerConfig> {
        let chain = vec![CertificateDer::from_pem_file(test_data("localhost.pem")).unwrap()];
        let key = PrivateKeyDer::from_pem_file(test_data("localhost.key")).unwrap();
        let config = ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        Arc::new(config)
    }

    fn test_ca_roots() -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(test_data("test-ca.pem")).unwrap())
            .unwrap();
        roots
    }

    /// Plays a PostgreSQL server that accepts the SSLRequest and presents
    /// the `localhost` certificate from the test CA. It runs on blocking
    /// sockets, with rustls driving the handshake.
    fn serve_tls(listener: std::net::TcpListener) -> Handshake {
        let (mut socket, _) = listener.accept().unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut ssl_request = [0_u8; 8];
        socket.read_exact(&mut ssl_request).unwrap();
        socket.write_all(b"S").unwrap();

        let mut connection = ServerConnection::new(server_config()).unwrap();
        while connection.is_handshaking() {
            match connection.complete_io(&mut socket) {
                Ok((0, 0)) | Err(_) => return Handshake::Aborted,
                Ok(_) => {}
            }
        }
        Handshake::Completed {
            sni: connection.server_name().map(str::to_owned),
        }
    }

    async fn probe_tls_server(probe: &Probe, host: &str) -> (ProbeError, Handshake) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::task::spawn_blocking(move || serve_tls(listener));
        let text =
            format!(r#"{{"username":"admin","host":"{host}","port":{port},"engine":"postgres"}}"#);
        let secret = DbSecret::parse(&text).unwrap();
        let error = probe
            .check(&secret, &Token::new("token"))
            .await
            .unwrap_err();
        (error, server.await.unwrap())
    }

    #[tokio::test]
    async fn check_rejects_untrusted_certificate() {
        let probe = Probe::new().unwrap();

        let (error, handshake) = probe_tls_server(&probe, "localhost").await;

        assert_eq!(handshake, Handshake::Aborted);
        assert!(
            error.to_string().contains("invalid peer certificate"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn check_rejects_certificate_for_other_host() {
        let probe = Probe::with_roots(test_ca_roots()).unwrap();

        let (error, handshake) = probe_tls_server(&probe, "127.0.0.1").await;

        assert_eq!(handshake, Handshake::Aborted);
        assert!(
            error.to_string().contains("invalid peer certificate"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn check_sends_host_as_sni() {
        let probe = Probe::with_roots(test_ca_roots()).unwrap();

        let (_, handshake) = probe_tls_server(&probe, "localhost").await;

        let expected = Handshake::Completed {
            sni: Some("localhost".to_owned()),
        };
        assert_eq!(handshake, expected);
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack
            .windows(needle.len())
            .any(|window| window == needle)
    }
}
