//! The secret's JSON value: the fields that RDS-style clients read, checked
//! before a rotation uses them.
//!
//! The value is an object with `username`, `password`, `host`, `port`,
//! `dbname` and `engine`. The rotator rewrites `password` (the token) and
//! `expires_at` (when the token stops working) and keeps every other field
//! exactly as it found it. Errors name the field; they show its value except
//! for `password`, which they never show.

use std::fmt;

use serde_json::{Map, Value};

use crate::token::Token;

/// The port that DSQL and PostgreSQL listen on, used when `port` is absent.
pub const DEFAULT_PORT: u16 = 5432;
/// The database that every DSQL cluster has, used when `dbname` is absent.
pub const DEFAULT_DBNAME: &str = "postgres";
const ENGINE: &str = "postgres";

/// Reasons a secret value cannot be used for a rotation.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("secret value is not valid JSON (line {line}, column {column})")]
    NotJson { line: usize, column: usize },
    #[error("secret value is not a JSON object")]
    NotObject,
    #[error("secret field `{field}` is missing")]
    Missing { field: &'static str },
    #[error("secret field `{field}` is empty")]
    Empty { field: &'static str },
    #[error("secret field `{field}` is {value}, expected {expected}")]
    Invalid {
        field: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("secret field `password` is not a string")]
    PasswordNotString,
}

/// A validated secret value.
#[derive(Clone)]
pub struct DbSecret {
    fields: Map<String, Value>,
    pub username: String,
    pub host: String,
    pub port: u16,
    pub dbname: String,
}

impl DbSecret {
    /// Parses and validates a secret value.
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let value: Value = serde_json::from_str(text).map_err(|error| SecretError::NotJson {
            line: error.line(),
            column: error.column(),
        })?;
        let Value::Object(fields) = value else {
            return Err(SecretError::NotObject);
        };
        check_engine(&fields)?;
        check_password(&fields)?;
        Ok(Self {
            username: required_string(&fields, "username")?,
            host: required_string(&fields, "host")?,
            port: port(&fields)?,
            dbname: optional_string(&fields, "dbname")?.unwrap_or_else(|| DEFAULT_DBNAME.into()),
            fields,
        })
    }

    /// Returns the stored password, or `None` when the field is absent.
    pub fn password(&self) -> Option<Token> {
        self.fields
            .get("password")
            .and_then(Value::as_str)
            .map(Token::new)
    }

    /// Returns the `expires_at` field, when present.
    pub fn expires_at(&self) -> Option<&str> {
        self.fields.get("expires_at").and_then(Value::as_str)
    }

    /// Serializes a copy of this value with a new token and its expiry,
    /// keeping every other field.
    pub fn with_token(&self, token: &Token, expires_at: &str) -> String {
        let mut fields = self.fields.clone();
        fields.insert("password".into(), Value::String(token.expose().into()));
        fields.insert("expires_at".into(), Value::String(expires_at.into()));
        Value::Object(fields).to_string()
    }
}

impl fmt::Debug for DbSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbSecret")
            .field("username", &self.username)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("dbname", &self.dbname)
            .finish_non_exhaustive()
    }
}

fn check_engine(fields: &Map<String, Value>) -> Result<(), SecretError> {
    match fields.get("engine") {
        None => Err(SecretError::Missing { field: "engine" }),
        Some(Value::String(engine)) if engine == ENGINE => Ok(()),
        Some(other) => Err(SecretError::Invalid {
            field: "engine",
            value: excerpt(other),
            expected: "\"postgres\"",
        }),
    }
}

/// Accepts an absent password (the first rotation writes one) or a string,
/// and never puts the value in the error.
fn check_password(fields: &Map<String, Value>) -> Result<(), SecretError> {
    match fields.get("password") {
        None | Some(Value::String(_)) => Ok(()),
        Some(_) => Err(SecretError::PasswordNotString),
    }
}

fn required_string(
    fields: &Map<String, Value>,
    field: &'static str,
) -> Result<String, SecretError> {
    optional_string(fields, field)?.ok_or(SecretError::Missing { field })
}

/// Returns a non-empty string field, `None` when the field is absent or null.
fn optional_string(
    fields: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, SecretError> {
    match fields.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.trim().is_empty() => Err(SecretError::Empty { field }),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(SecretError::Invalid {
            field,
            value: excerpt(other),
            expected: "a string",
        }),
    }
}

/// Reads `port` as a JSON number or a string of digits, as RDS secrets use both.
fn port(fields: &Map<String, Value>) -> Result<u16, SecretError> {
    let parsed = match fields.get("port") {
        None | Some(Value::Null) => return Ok(DEFAULT_PORT),
        Some(Value::Number(number)) => number.as_u64().and_then(|n| u16::try_from(n).ok()),
        Some(Value::String(text)) => text.trim().parse::<u16>().ok(),
        Some(_) => None,
    };
    parsed
        .filter(|port| *port != 0)
        .ok_or_else(|| SecretError::Invalid {
            field: "port",
            value: excerpt(&fields["port"]),
            expected: "a port number from 1 to 65535",
        })
}

/// Maximum number of characters of a rejected value that an error shows.
const MAX_SHOWN_CHARS: usize = 64;

/// Returns a rejected value as JSON text for an error, cut to
/// `MAX_SHOWN_CHARS` so that a huge value does not flood the logs.
fn excerpt(value: &Value) -> String {
    let text = value.to_string();
    let length = text.chars().count();
    if length <= MAX_SHOWN_CHARS {
        return text;
    }
    let start: String = text.chars().take(MAX_SHOWN_CHARS).collect();
    format!("{start}... ({length} characters)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_rejected_value_is_cut() {
        let text = format!(
            r#"{{"username":"u","host":"h","engine":"postgres","port":"{}"}}"#,
            "9".repeat(100_000)
        );

        let message = DbSecret::parse(&text).unwrap_err().to_string();

        assert!(message.contains("(100002 characters)"), "{message}");
        assert!(message.len() < 200, "{message}");
    }

    const VALID: &str = r#"{"username":"admin","password":"old-token","host":"abc.dsql.us-east-1.on.aws","port":5432,"dbname":"postgres","engine":"postgres","note":"kept"}"#;

    fn parse_error(text: &str) -> SecretError {
        DbSecret::parse(text).expect_err("secret should be rejected")
    }

    #[test]
    fn parse_reads_all_fields() {
        let secret = DbSecret::parse(VALID).unwrap();
        assert_eq!(secret.username, "admin");
        assert_eq!(secret.host, "abc.dsql.us-east-1.on.aws");
        assert_eq!(secret.port, 5432);
        assert_eq!(secret.dbname, "postgres");
        assert_eq!(secret.password(), Some(Token::new("old-token")));
    }

    #[test]
    fn parse_applies_defaults() {
        let secret =
            DbSecret::parse(r#"{"username":"app","host":"h","engine":"postgres"}"#).unwrap();
        assert_eq!(secret.port, DEFAULT_PORT);
        assert_eq!(secret.dbname, DEFAULT_DBNAME);
        assert_eq!(secret.password(), None);
    }

    #[test]
    fn parse_accepts_port_as_string() {
        let text = r#"{"username":"app","host":"h","engine":"postgres","port":"6432"}"#;
        assert_eq!(DbSecret::parse(text).unwrap().port, 6432);
    }

    #[test]
    fn parse_rejects_bad_values_naming_field() {
        let cases: &[(&str, SecretError)] = &[
            ("not json", SecretError::NotJson { line: 1, column: 2 }),
            ("[1,2]", SecretError::NotObject),
            (
                r#"{"username":"app","engine":"postgres"}"#,
                SecretError::Missing { field: "host" },
            ),
            (
                r#"{"username":"","host":"h","engine":"postgres"}"#,
                SecretError::Empty { field: "username" },
            ),
            (
                r#"{"host":"h","engine":"postgres"}"#,
                SecretError::Missing { field: "username" },
            ),
            (
                r#"{"username":"app","host":"h","engine":"mysql"}"#,
                SecretError::Invalid {
                    field: "engine",
                    value: "\"mysql\"".into(),
                    expected: "\"postgres\"",
                },
            ),
            (
                r#"{"username":"app","host":"h"}"#,
                SecretError::Missing { field: "engine" },
            ),
            (
                r#"{"username":"app","host":"h","engine":"postgres","port":"abc"}"#,
                SecretError::Invalid {
                    field: "port",
                    value: "\"abc\"".into(),
                    expected: "a port number from 1 to 65535",
                },
            ),
            (
                r#"{"username":"app","host":"h","engine":"postgres","port":70000}"#,
                SecretError::Invalid {
                    field: "port",
                    value: "70000".into(),
                    expected: "a port number from 1 to 65535",
                },
            ),
            (
                r#"{"username":"app","host":"h","engine":"postgres","dbname":7}"#,
                SecretError::Invalid {
                    field: "dbname",
                    value: "7".into(),
                    expected: "a string",
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(&parse_error(text), expected, "secret {text}");
        }
    }

    #[test]
    fn errors_never_show_password() {
        let cases = [
            r#"{"username":"app","host":"h","engine":"postgres","password":["hunter2"]}"#,
            r#"{"username":"app","host":"h","engine":"mysql","password":"hunter2"}"#,
            r#"{"username":"app","password":"hunter2"#,
        ];
        for text in cases {
            let error = parse_error(text).to_string();
            assert!(!error.contains("hunter2"), "{error}");
        }
    }

    #[test]
    fn debug_hides_password() {
        let secret = DbSecret::parse(VALID).unwrap();
        assert!(!format!("{secret:?}").contains("old-token"));
    }

    #[test]
    fn with_token_replaces_password_and_keeps_other_fields() {
        let secret = DbSecret::parse(VALID).unwrap();
        let written = secret.with_token(&Token::new("new-token"), "2026-01-02T03:04:05Z");
        let value: Value = serde_json::from_str(&written).unwrap();
        assert_eq!(value["password"], "new-token");
        assert_eq!(value["expires_at"], "2026-01-02T03:04:05Z");
        assert_eq!(value["note"], "kept");
        assert_eq!(value["port"], 5432);
        assert_eq!(value["engine"], "postgres");
    }

    #[test]
    fn with_token_keeps_port_string_as_string() {
        let text = r#"{"username":"app","host":"h","engine":"postgres","port":"6432"}"#;
        let written = DbSecret::parse(text)
            .unwrap()
            .with_token(&Token::new("t"), "2026-01-02T03:04:05Z");
        let value: Value = serde_json::from_str(&written).unwrap();
        assert_eq!(value["port"], "6432");
    }
}
