//! `deployer psql`: run psql with the secret's credentials. The token goes
//! to psql in PGPASSWORD, never on its command line, where other users of
//! the machine could read it.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context};

use crate::aws::Clients;
use crate::config::Settings;
use crate::db::{self, ConnectArgs};

/// Runs psql with `arguments` after its connection settings, and waits.
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

    let status = command.status().with_context(|| {
        format!("cannot run {psql}; install the PostgreSQL client or set PSQL to its path")
    })?;
    if !status.success() {
        bail!("{psql} exited with {status}");
    }
    Ok(())
}

/// Returns the CA file that psql verifies the server against: `ca_file`,
/// else SSL_CERT_FILE, else "system" (the system store, libpq 16 and later).
fn root_certificates(ca_file: Option<&Path>) -> String {
    if let Some(path) = ca_file {
        return path.display().to_string();
    }
    match std::env::var("SSL_CERT_FILE") {
        Ok(path) if !path.is_empty() => path,
        _ => "system".into(),
    }
}
