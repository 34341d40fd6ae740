//! `deployer psql`: run psql with the secret's credentials. The token goes
//! to psql in PGPASSWORD, never on its command line, where other users of
//! the machine could read it.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use anyhow::Context;

use crate::aws::Clients;
use crate::config::Settings;
use crate::db::{self, ConnectArgs};

/// System CA bundles of Debian and Ubuntu, and of Amazon Linux and
/// RHEL. Both contain Amazon Root CA 1, which signs DSQL's certificates.
const SYSTEM_CA_BUNDLES: [&str; 2] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
];

/// Replaces this process with psql, run with `arguments` after its
/// connection settings, so that psql gets the terminal and its signals and
/// its exit status is the command's. Returns only when psql cannot start.
pub async fn run(
    settings: &Settings,
    connect: &ConnectArgs,
    arguments: &[String],
) -> anyhow::Result<()> {
    let clients = Clients::load(&settings.region).await;
    let credentials = db::read_credentials(&clients, &settings.stack_name).await?;
    let psql = std::env::var("PSQL").unwrap_or_else(|_| "psql".into());

    let mut command = Command::new(&psql);
    command
        .args(arguments)
        .env("PGHOST", &credentials.host)
        .env("PGPORT", credentials.port.to_string())
        .env("PGUSER", &credentials.username)
        .env("PGDATABASE", &credentials.dbname)
        .env("PGPASSWORD", &credentials.password)
        .env("PGSSLMODE", "verify-full")
        .env(
            "PGSSLROOTCERT",
            root_certificates(connect.ca_file.as_deref()),
        );

    let err = command.exec();
    Err(err).with_context(|| {
        format!("cannot run {psql}; install the PostgreSQL client or set PSQL to its path")
    })
}

/// Returns the CA file that psql verifies the server against: `ca_file`,
/// else SSL_CERT_FILE, else the system's CA bundle. Without a bundle it is
/// "system", which libpq 16 and later read as the system store and older
/// libpq rejects with a message naming the file.
fn root_certificates(ca_file: Option<&Path>) -> String {
    if let Some(path) = ca_file {
        return path.display().to_string();
    }
    if let Ok(path) = std::env::var("SSL_CERT_FILE") {
        if !path.is_empty() {
            return path;
        }
    }

    let bundle = SYSTEM_CA_BUNDLES
        .into_iter()
        .find(|path| Path::new(path).is_file());
    bundle.unwrap_or("system").to_string()
}
