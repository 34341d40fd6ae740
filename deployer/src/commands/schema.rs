//! `deployer schema apply FILE`: run a SQL file one statement at a time in
//! autocommit, as DSQL requires one DDL statement per transaction.

use std::path::Path;

use serde::Serialize;
use tokio_postgres::SimpleQueryMessage;

use crate::aws::Clients;
use crate::config::Settings;
use crate::db::{self, ConnectArgs};
use crate::progress::{LineReporter, Reporter};
use crate::sql::{self, Statement};

use super::{print_result, BadInput, OutputFormat};

/// Result of `schema apply`.
#[derive(Debug, Serialize)]
pub struct SchemaResult {
    pub file: String,
    pub statements: usize,
    /// Jobs that build the indexes of `CREATE INDEX ASYNC` statements.
    pub index_jobs: Vec<IndexJob>,
}

/// One `CREATE INDEX ASYNC` statement and the job id that DSQL returned.
#[derive(Debug, Serialize)]
pub struct IndexJob {
    pub statement: usize,
    pub job_id: String,
}

/// A statement that failed; the statements before it were committed.
#[derive(Debug, thiserror::Error)]
#[error("statement {number} (line {line}) failed: {message}; {}\n{}", applied_before(*.number), indented(.text))]
pub struct StatementFailed {
    pub number: usize,
    pub line: usize,
    pub text: String,
    pub message: String,
}

/// Says which statements were committed before statement `number` failed.
fn applied_before(number: usize) -> String {
    match number {
        0 | 1 => "no statement was applied".to_string(),
        2 => "statement 1 was applied".to_string(),
        _ => format!("statements 1 to {} were applied", number - 1),
    }
}

/// Indents every line of a statement's text for the error message.
fn indented(text: &str) -> String {
    text.lines()
        .map(|line| format!("  {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Applies `file` and prints the job ids of its asynchronous index builds.
pub async fn apply(
    settings: &Settings,
    connect: &ConnectArgs,
    file: &Path,
    format: OutputFormat,
) -> anyhow::Result<()> {
    let source = std::fs::read_to_string(file)
        .map_err(|err| BadInput(format!("cannot read {}: {err}", file.display())))?;
    let statements = sql::split(&source).map_err(|err| {
        BadInput(format!(
            "{}: {err}; close it, because the statements after it would be sent as part of it",
            file.display()
        ))
    })?;
    if statements.is_empty() {
        let message = format!("{} contains no SQL statement", file.display());
        return Err(BadInput(message).into());
    }

    let clients = Clients::load(&settings.region).await;
    let credentials = db::read_credentials(&clients, &settings.stack_name).await?;
    let client = db::connect(&credentials, db::tls_connector(connect.ca_file.as_deref())?).await?;
    let reporter = LineReporter::new();

    let mut index_jobs = Vec::new();
    for statement in &statements {
        let rows = run_statement(&client, statement).await?;
        reporter.note(&format!("statement {}: applied", statement.number));
        if sql::is_create_index_async(&statement.text) {
            if let Some(job_id) = sql::job_id(&rows) {
                index_jobs.push(IndexJob {
                    statement: statement.number,
                    job_id,
                });
            }
        }
    }

    let result = SchemaResult {
        file: file.display().to_string(),
        statements: statements.len(),
        index_jobs,
    };
    print_result(format, &result, describe);
    Ok(())
}

/// Runs one statement through the simple query protocol, which commits it
/// on its own, and returns its rows as text.
async fn run_statement(
    client: &tokio_postgres::Client,
    statement: &Statement,
) -> Result<Vec<Vec<Option<String>>>, StatementFailed> {
    let messages = client
        .simple_query(&statement.text)
        .await
        .map_err(|err| StatementFailed {
            number: statement.number,
            line: statement.line,
            text: statement.text.clone(),
            message: db::error_chain(&err),
        })?;

    Ok(messages
        .iter()
        .filter_map(|message| match message {
            SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|index| row.get(index).map(str::to_string))
                    .collect(),
            ),
            _ => None,
        })
        .collect())
}

fn describe(result: &SchemaResult) -> String {
    let mut lines = vec![format!(
        "{}: applied {} statement(s)",
        result.file, result.statements
    )];
    for job in &result.index_jobs {
        lines.push(format!(
            "  statement {}: index build job {}; check it with SELECT * FROM sys.wait_for_job('{}')",
            job.statement, job.job_id, job.job_id
        ));
    }
    lines.join("\n")
}
