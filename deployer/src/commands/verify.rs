//! `deployer verify`: log in with the secret's credentials and run `SELECT 1`.

use std::time::Instant;

use anyhow::Context;
use serde::Serialize;

use crate::aws::Clients;
use crate::config::Settings;
use crate::db::{self, ConnectArgs};

use super::{print_result, OutputFormat};

/// Result of `verify`: where it logged in and how long it took.
#[derive(Debug, Serialize)]
pub struct VerifyResult {
    pub user: String,
    pub host: String,
    pub port: u16,
    pub dbname: String,
    pub milliseconds: u128,
}

/// Connects from where the deployer runs, as an application would.
pub async fn run(
    settings: &Settings,
    connect: &ConnectArgs,
    format: OutputFormat,
) -> anyhow::Result<()> {
    let clients = Clients::load(&settings.region).await;
    let credentials = db::read_credentials(&clients, &settings.stack_name).await?;
    let tls = db::tls_connector(connect.ca_file.as_deref())?;

    let started = Instant::now();
    let client = db::connect(&credentials, tls).await?;
    let value: i32 = client
        .query_one("SELECT 1", &[])
        .await
        .map_err(|err| anyhow::anyhow!("SELECT 1 failed: {}", db::error_chain(&err)))?
        .try_get(0)
        .context("SELECT 1 returned no integer")?;
    anyhow::ensure!(value == 1, "SELECT 1 returned {value}");

    let result = VerifyResult {
        user: credentials.username.clone(),
        host: credentials.host.clone(),
        port: credentials.port,
        dbname: credentials.dbname.clone(),
        milliseconds: started.elapsed().as_millis(),
    };
    print_result(format, &result, |result| {
        format!(
            "logged in as {} to {}:{}/{} over verified TLS and ran SELECT 1 in {} ms",
            result.user, result.host, result.port, result.dbname, result.milliseconds
        )
    });
    Ok(())
}
