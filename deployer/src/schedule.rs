//! Secrets Manager rotation schedules: `rate(...)` and `cron(...)` expressions.

use crate::config::ConfigError;

/// Shortest interval between rotations that Secrets Manager accepts.
const MIN_INTERVAL_HOURS: u64 = 4;

/// A rotation schedule and the longest interval it leaves between rotations.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// `rate(N hours)` or `rate(N days)`, stored in hours.
    Rate { hours: u64, expression: String },
    /// `cron(...)`, whose longest gap the user states in hours.
    Cron {
        expression: String,
        period_hours: u64,
    },
}

impl Schedule {
    /// The expression as Secrets Manager receives it.
    pub fn expression(&self) -> &str {
        match self {
            Schedule::Rate { expression, .. } | Schedule::Cron { expression, .. } => expression,
        }
    }

    /// Longest time between two scheduled rotations, in seconds.
    pub fn interval_seconds(&self) -> u64 {
        match self {
            Schedule::Rate { hours, .. } => hours.saturating_mul(3600),
            Schedule::Cron { period_hours, .. } => period_hours.saturating_mul(3600),
        }
    }
}

/// Parses a schedule expression. A `cron(...)` expression needs
/// `period_hours`, because its longest gap is not derived here.
pub fn parse(text: &str, period_hours: Option<u32>) -> Result<Schedule, ConfigError> {
    let text = text.trim();

    if let Some(body) = text
        .strip_prefix("rate(")
        .and_then(|rest| rest.strip_suffix(')'))
    {
        let schedule = parse_rate(text, body)?;
        if let Some(hours) = period_hours {
            return Err(ConfigError::Invalid {
                field: "rotation_period_hours",
                value: hours.to_string(),
                fix: format!("remove `rotation_period_hours`, which is only for cron(...) schedules, because {text} already sets the interval"),
            });
        }
        return Ok(schedule);
    }
    if text.starts_with("cron(") && text.ends_with(')') {
        return parse_cron(text, period_hours);
    }

    Err(invalid(
        text,
        "use rate(N hours) with N >= 4, rate(N days), or cron(...)",
    ))
}

/// Parses the body of `rate(...)`, accepting only the canonical form of the
/// EventBridge rate syntax that Secrets Manager's ScheduleExpression follows.
/// That form has one space between count and unit, and a singular unit only
/// for a count of 1 (EventBridge User Guide, "Rate expressions reference").
fn parse_rate(text: &str, body: &str) -> Result<Schedule, ConfigError> {
    let mut words = body.split_whitespace();
    let (Some(count), Some(unit), None) = (words.next(), words.next(), words.next()) else {
        return Err(invalid(
            text,
            "write the rate as rate(N hours) or rate(N days)",
        ));
    };
    // `u64::from_str` also accepts a leading `+`, which the rate syntax does not.
    let digits_only = count.chars().all(|c| c.is_ascii_digit());
    let count = match count.parse::<u64>() {
        Ok(count) if digits_only => count,
        _ => {
            return Err(invalid(
                text,
                "the rate's count must be a whole number, as in rate(4 hours)",
            ))
        }
    };

    let (hours_per_unit, singular, plural) = match unit {
        "hour" | "hours" => (1, "hour", "hours"),
        "day" | "days" => (24, "day", "days"),
        _ => {
            return Err(invalid(
                text,
                "use hours or days as the unit, as in rate(4 hours)",
            ))
        }
    };
    let hours = count.saturating_mul(hours_per_unit);
    if hours < MIN_INTERVAL_HOURS {
        return Err(invalid(text, "rotate at most every 4 hours, the shortest interval Secrets Manager accepts: rate(4 hours)"));
    }

    let unit = if count == 1 { singular } else { plural };
    let expected = format!("rate({count} {unit})");
    if text != expected {
        let fix = format!("write it as {expected}, with one space before the unit, which is singular only for a count of 1");
        return Err(invalid(text, &fix));
    }

    Ok(Schedule::Rate {
        hours,
        expression: expected,
    })
}

fn parse_cron(text: &str, period_hours: Option<u32>) -> Result<Schedule, ConfigError> {
    let fields = text["cron(".len()..text.len() - 1]
        .split_whitespace()
        .count();
    if fields != 6 {
        return Err(invalid(
            text,
            "a cron expression has six fields: minutes hours day-of-month month day-of-week year",
        ));
    }

    let Some(period_hours) = period_hours else {
        return Err(ConfigError::Missing {
            field: "rotation_period_hours",
            fix: format!("set `rotation_period_hours` to the longest gap in hours between two runs of {text}, so token lifetimes can be checked"),
        });
    };
    if u64::from(period_hours) < MIN_INTERVAL_HOURS {
        return Err(ConfigError::Invalid {
            field: "rotation_period_hours",
            value: period_hours.to_string(),
            fix: "Secrets Manager rotates at most every 4 hours; use 4 or more".into(),
        });
    }

    Ok(Schedule::Cron {
        expression: text.to_string(),
        period_hours: u64::from(period_hours),
    })
}

fn invalid(text: &str, fix: &str) -> ConfigError {
    ConfigError::Invalid {
        field: "rotation_schedule",
        value: text.to_string(),
        fix: fix.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_in_hours_and_days() {
        let hours = parse("rate(4 hours)", None).unwrap();
        let days = parse("rate(1 day)", None).unwrap();

        assert_eq!(hours.interval_seconds(), 4 * 3600);
        assert_eq!(days.interval_seconds(), 24 * 3600);
        assert_eq!(days.expression(), "rate(1 day)");
    }

    #[test]
    fn rate_under_four_hours_is_rejected() {
        let err = parse("rate(3 hours)", None).unwrap_err();

        assert!(err.to_string().contains("rate(3 hours)"), "{err}");
        assert!(err.to_string().contains("every 4 hours"), "{err}");
    }

    #[test]
    fn malformed_rates_are_rejected() {
        for text in [
            "rate(four hours)",
            "rate(4 minutes)",
            "rate(4)",
            "every 4 hours",
        ] {
            assert!(parse(text, None).is_err(), "{text} was accepted");
        }
    }

    #[test]
    fn noncanonical_rates_name_expected_form() {
        let cases = [
            ("rate(4 hour)", "rate(4 hours)"),
            ("rate(4  hours)", "rate(4 hours)"),
            ("rate( 4 hours)", "rate(4 hours)"),
            ("rate(1 days)", "rate(1 day)"),
            ("rate(2 day)", "rate(2 days)"),
            ("rate(04 hours)", "rate(4 hours)"),
            ("rate(4\thours)", "rate(4 hours)"),
        ];
        for (text, expected) in cases {
            let err = parse(text, None).unwrap_err();

            let message = err.to_string();
            assert!(message.contains("rotation_schedule"), "{text}: {message}");
            assert!(
                message.contains(&format!("write it as {expected}")),
                "{text}: {message}"
            );
        }
    }

    #[test]
    fn signed_rate_count_is_rejected() {
        let err = parse("rate(+4 hours)", None).unwrap_err();

        assert!(err.to_string().contains("whole number"), "{err}");
    }

    #[test]
    fn huge_rate_count_saturates() {
        let schedule = parse("rate(18446744073709551615 days)", None).unwrap();

        assert_eq!(schedule.interval_seconds(), u64::MAX);
    }

    #[test]
    fn rate_with_period_hours_is_rejected() {
        let err = parse("rate(4 hours)", Some(6)).unwrap_err();

        match err {
            ConfigError::Invalid { field, value, fix } => {
                assert_eq!(field, "rotation_period_hours");
                assert_eq!(value, "6");
                assert!(fix.contains("only for cron(...)"), "{fix}");
            }
            other => panic!("expected an invalid-setting error, got {other:?}"),
        }
    }

    #[test]
    fn cron_needs_period() {
        let missing = parse("cron(0 */6 * * ? *)", None).unwrap_err();
        let given = parse("cron(0 */6 * * ? *)", Some(6)).unwrap();

        assert!(
            missing.to_string().contains("rotation_period_hours"),
            "{missing}"
        );
        assert_eq!(given.interval_seconds(), 6 * 3600);
    }
}
