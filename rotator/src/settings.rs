//! Settings read from the function's environment once, at start-up.

use std::time::Duration;

use crate::token::MAX_LIFETIME;

/// Token lifetime used when `TOKEN_LIFETIME_SECONDS` is absent: 12 hours.
///
/// With the shortest schedule Secrets Manager allows, `rate(4 hours)`, and a
/// 1 hour window, a token must live 5 hours until the next rotation replaces
/// it. 12 hours also covers one failed rotation (4 + 4 + 1 = 9 hours) with
/// 3 hours to spare.
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(43_200);

/// Rotation period used when `ROTATION_PERIOD_SECONDS` is absent: 5 hours,
/// the `rate(4 hours)` schedule plus a 1 hour window.
pub const DEFAULT_ROTATION_PERIOD: Duration = Duration::from_secs(18_000);

/// Invalid settings, each naming the environment variable and its value.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("{name}={value} is not a whole number of seconds")]
    NotSeconds { name: &'static str, value: String },
    #[error("{name}={value} is out of range: expected {min} to {max} seconds")]
    OutOfRange {
        name: &'static str,
        value: u64,
        min: u64,
        max: u64,
    },
    #[error(
        "TOKEN_LIFETIME_SECONDS={lifetime} must exceed ROTATION_PERIOD_SECONDS={period}, \
         or each token expires before the next rotation replaces it"
    )]
    LifetimeTooShort { lifetime: u64, period: u64 },
}

/// How long tokens live and how long each must outlive its rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Lifetime requested for each token (`X-Amz-Expires`).
    pub token_lifetime: Duration,
    /// Maximum time until the next scheduled rotation replaces a new token:
    /// the schedule's interval plus its window.
    pub rotation_period: Duration,
}

impl Settings {
    /// Reads the settings from the process environment.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup`, which returns a variable's value.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let max = MAX_LIFETIME.as_secs();
        let lifetime = seconds(
            &lookup,
            "TOKEN_LIFETIME_SECONDS",
            DEFAULT_TOKEN_LIFETIME,
            max,
        )?;
        let period = seconds(
            &lookup,
            "ROTATION_PERIOD_SECONDS",
            DEFAULT_ROTATION_PERIOD,
            max,
        )?;
        if lifetime <= period {
            return Err(SettingsError::LifetimeTooShort {
                lifetime: lifetime.as_secs(),
                period: period.as_secs(),
            });
        }
        Ok(Self {
            token_lifetime: lifetime,
            rotation_period: period,
        })
    }
}

fn seconds(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: Duration,
    max: u64,
) -> Result<Duration, SettingsError> {
    let Some(text) = lookup(name).filter(|text| !text.trim().is_empty()) else {
        return Ok(default);
    };
    let value: u64 = text.trim().parse().map_err(|_| SettingsError::NotSeconds {
        name,
        value: text.clone(),
    })?;
    if !(1..=max).contains(&value) {
        return Err(SettingsError::OutOfRange {
            name,
            value,
            min: 1,
            max,
        });
    }
    Ok(Duration::from_secs(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        Settings::from_lookup(|name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_string())
        })
    }

    #[test]
    fn defaults_apply_when_absent() {
        let settings = settings(&[]).unwrap();
        assert_eq!(settings.token_lifetime, DEFAULT_TOKEN_LIFETIME);
        assert_eq!(settings.rotation_period, DEFAULT_ROTATION_PERIOD);
    }

    #[test]
    fn values_are_read_in_seconds() {
        let settings = settings(&[
            ("TOKEN_LIFETIME_SECONDS", "28800"),
            ("ROTATION_PERIOD_SECONDS", "18000"),
        ])
        .unwrap();
        assert_eq!(settings.token_lifetime, Duration::from_secs(28_800));
        assert_eq!(settings.rotation_period, Duration::from_secs(18_000));
    }

    #[test]
    fn invalid_values_name_variable() {
        let cases = [
            (
                vec![("TOKEN_LIFETIME_SECONDS", "8h")],
                SettingsError::NotSeconds {
                    name: "TOKEN_LIFETIME_SECONDS",
                    value: "8h".into(),
                },
            ),
            (
                vec![("TOKEN_LIFETIME_SECONDS", "604801")],
                SettingsError::OutOfRange {
                    name: "TOKEN_LIFETIME_SECONDS",
                    value: 604_801,
                    min: 1,
                    max: 604_800,
                },
            ),
            (
                vec![("ROTATION_PERIOD_SECONDS", "0")],
                SettingsError::OutOfRange {
                    name: "ROTATION_PERIOD_SECONDS",
                    value: 0,
                    min: 1,
                    max: 604_800,
                },
            ),
            (
                vec![
                    ("TOKEN_LIFETIME_SECONDS", "3600"),
                    ("ROTATION_PERIOD_SECONDS", "18000"),
                ],
                SettingsError::LifetimeTooShort {
                    lifetime: 3600,
                    period: 18_000,
                },
            ),
        ];
        for (pairs, expected) in cases {
            assert_eq!(settings(&pairs).unwrap_err(), expected, "{pairs:?}");
        }
    }
}
