//! The signing time and lifetime of a DSQL auth token, read from its
//! presigned query parameters. The token itself is never returned or logged.

use aws_sdk_secretsmanager::primitives::{DateTime, DateTimeFormat};

/// A token's query parameter that is missing or invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token has no {0} parameter, so it is not a presigned DSQL auth token")]
    Missing(&'static str),

    #[error("the token's {0} parameter is invalid")]
    Invalid(&'static str),
}

/// When a token was signed and how long it stays valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenLifetime {
    /// Signing time in seconds since the Unix epoch (`X-Amz-Date`).
    pub signed_at: i64,
    /// Seconds the signature stays valid after signing (`X-Amz-Expires`).
    pub expires_in: i64,
}

impl TokenLifetime {
    /// Reads `X-Amz-Date` (`YYYYMMDDTHHMMSSZ`) and `X-Amz-Expires` from the token's query.
    pub fn parse(token: &str) -> Result<Self, TokenError> {
        let query = token.split_once('?').map(|(_, query)| query).unwrap_or("");
        let date = query_parameter(query, "X-Amz-Date").ok_or(TokenError::Missing("X-Amz-Date"))?;
        let expires =
            query_parameter(query, "X-Amz-Expires").ok_or(TokenError::Missing("X-Amz-Expires"))?;

        let signed_at = parse_amz_date(date).ok_or(TokenError::Invalid("X-Amz-Date"))?;
        let expires_in = expires
            .parse::<i64>()
            .ok()
            .filter(|seconds| *seconds > 0)
            .ok_or(TokenError::Invalid("X-Amz-Expires"))?;
        Ok(TokenLifetime {
            signed_at,
            expires_in,
        })
    }

    /// Returns the expiry in seconds since the Unix epoch.
    pub fn expires_at(&self) -> i64 {
        self.signed_at + self.expires_in
    }
}

fn query_parameter<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Converts SigV4's basic format `20261204T145000Z` to seconds since the epoch.
fn parse_amz_date(value: &str) -> Option<i64> {
    let bytes = value.as_bytes();
    let well_formed = bytes.len() == 16
        && bytes[8] == b'T'
        && bytes[15] == b'Z'
        && value[..8].bytes().all(|byte| byte.is_ascii_digit())
        && value[9..15].bytes().all(|byte| byte.is_ascii_digit());
    if !well_formed {
        return None;
    }

    let rfc3339 = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &value[0..4],
        &value[4..6],
        &value[6..8],
        &value[9..11],
        &value[11..13],
        &value[13..15]
    );
    DateTime::from_str(&rfc3339, DateTimeFormat::DateTime)
        .ok()
        .map(|time| time.secs())
}

/// Formats seconds since the Unix epoch as RFC 3339 in UTC.
pub fn format_time(seconds: i64) -> String {
    DateTime::from_secs(seconds)
        .fmt(DateTimeFormat::DateTime)
        .unwrap_or_else(|_| seconds.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "abc.dsql.us-east-1.on.aws/?Action=DbConnectAdmin&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20261204%2Fus-east-1%2Fdsql%2Faws4_request&X-Amz-Date=20261204T145000Z&X-Amz-Expires=36000&X-Amz-SignedHeaders=host&X-Amz-Signature=00ff";

    #[test]
    fn lifetime_read_from_query() {
        let lifetime = TokenLifetime::parse(TOKEN).unwrap();

        assert_eq!(format_time(lifetime.signed_at), "2026-12-04T14:50:00Z");
        assert_eq!(lifetime.expires_in, 36000);
        assert_eq!(format_time(lifetime.expires_at()), "2026-12-05T00:50:00Z");
    }

    #[test]
    fn missing_date_is_reported() {
        let token = TOKEN.replace("X-Amz-Date", "X-Other");

        assert_eq!(
            TokenLifetime::parse(&token),
            Err(TokenError::Missing("X-Amz-Date"))
        );
    }

    #[test]
    fn malformed_values_are_invalid() {
        let bad_date = TOKEN.replace("20261204T145000Z", "2026-12-04");
        let bad_expiry = TOKEN.replace("X-Amz-Expires=36000", "X-Amz-Expires=-1");

        assert_eq!(
            TokenLifetime::parse(&bad_date),
            Err(TokenError::Invalid("X-Amz-Date"))
        );
        assert_eq!(
            TokenLifetime::parse(&bad_expiry),
            Err(TokenError::Invalid("X-Amz-Expires"))
        );
    }

    #[test]
    fn placeholder_password_is_not_a_token() {
        assert_eq!(
            TokenLifetime::parse("placeholder-until-first-rotation"),
            Err(TokenError::Missing("X-Amz-Date"))
        );
    }
}
