//! Errors for settings-file values of the wrong type, in the words of the
//! settings file rather than of the Rust types behind it.

use serde_path_to_error::Segment;
use serde_yaml::Value;

use super::ConfigError;

/// Kind of value that a setting takes in the settings file.
#[derive(Debug, Clone, Copy, PartialEq)]
enum ValueKind {
    Text,
    Flag,
    Port,
    /// A positive whole number, in the unit given (empty for a plain count).
    Count(&'static str),
    List,
}

/// Returns the kind of value that the setting `name` takes, matching its
/// field type in `RawSettings`.
fn value_kind(name: &str) -> ValueKind {
    match name {
        "database_port" => ValueKind::Port,
        "rotation_window_hours" | "rotation_period_hours" => ValueKind::Count("hours"),
        "token_lifetime_seconds" | "function_timeout_seconds" => ValueKind::Count("seconds"),
        "log_retention_days" => ValueKind::Count("days"),
        "function_memory_mb" => ValueKind::Count("MB"),
        "function_reserved_concurrency" => ValueKind::Count(""),
        "allow_local_endpoint" | "encrypt_logs" => ValueKind::Flag,
        "application_role_arns" | "subnet_ids" => ValueKind::List,
        _ => ValueKind::Text,
    }
}

/// Builds the error for a value in `document` that does not deserialize into
/// its setting's type, from the path that `serde_path_to_error` reports.
pub fn wrong_type(
    document: &Value,
    origin: &str,
    error: serde_path_to_error::Error<serde_yaml::Error>,
) -> ConfigError {
    let Some(Segment::Map { key: name }) = error.path().iter().next() else {
        return ConfigError::Parse {
            path: origin.to_string(),
            reason: error.into_inner(),
        };
    };

    let mut node = Some(document);
    for segment in error.path().iter() {
        node = match segment {
            Segment::Map { key } => node.and_then(|value| value.get(key.as_str())),
            Segment::Seq { index } => node.and_then(|value| value.get(*index)),
            _ => None,
        };
    }
    let found = node.map_or_else(|| "(unreadable)".to_string(), describe_value);

    ConfigError::WrongType {
        path: origin.to_string(),
        setting: error.path().to_string(),
        fix: fix_for(value_kind(name), node),
        found,
    }
}

/// Returns what to write instead of `found`, for a setting of `kind`.
fn fix_for(kind: ValueKind, found: Option<&Value>) -> String {
    let text = found.and_then(Value::as_str);
    match kind {
        ValueKind::Port => numeric_fix("use a whole number from 1 to 65535".into(), text),
        ValueKind::Count("") => numeric_fix("use a positive whole number".into(), text),
        ValueKind::Count(unit) => {
            numeric_fix(format!("use a positive whole number of {unit}"), text)
        }
        ValueKind::Flag => match text {
            Some("true" | "false") => "use true or false, without quotes".to_string(),
            Some(word) if is_yaml_1_1_boolean(word) => format!(
                "use true or false, because YAML 1.2 reads {word} as a string, not as a boolean"
            ),
            _ => "use true or false".to_string(),
        },
        ValueKind::List => match text {
            Some(_) => "use a list of strings, with each item on its own line after `- `, even a single one".to_string(),
            None => "use a list of strings, quoting any item that YAML would read as a number or boolean".to_string(),
        },
        ValueKind::Text => {
            "use a string, in quotes if YAML would read it as a number or boolean".to_string()
        }
    }
}

/// Adds to `expected` the hint to drop the quotes when `text`, a string
/// value, contains a number.
fn numeric_fix(expected: String, text: Option<&str>) -> String {
    let quoted_number = text.is_some_and(|text| text.trim().parse::<u64>().is_ok());
    match quoted_number {
        true => format!("{expected}, without quotes"),
        false => expected,
    }
}

/// Returns whether `word` is one of the YAML 1.1 spellings of a boolean
/// (yes, no, on, off, y, n) that YAML 1.2 reads as a plain string.
fn is_yaml_1_1_boolean(word: &str) -> bool {
    ["yes", "no", "on", "off", "y", "n"]
        .iter()
        .any(|spelling| word.eq_ignore_ascii_case(spelling))
}

/// Renders a value for an error message: scalars as written, with strings
/// quoted, and collections by their kind.
pub fn describe_value(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(flag) => flag.to_string(),
        Value::Number(number) => number.to_string(),
        Value::String(text) => format!("{text:?}"),
        Value::Sequence(_) => "(a list)".to_string(),
        Value::Mapping(_) => "(a mapping)".to_string(),
        Value::Tagged(tagged) => format!("(a value tagged {})", tagged.tag),
    }
}

/// Names the kind of a document's top-level value, for the error that
/// requires a mapping there.
pub fn describe_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "empty",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{RawSettings, SETTING_NAMES};

    /// Returns the (setting, found, fix) of a wrong-type error for `text`.
    fn wrong_type_of(text: &str) -> (String, String, String) {
        match RawSettings::from_yaml(text, "cfg.yaml") {
            Err(ConfigError::WrongType {
                setting,
                found,
                fix,
                ..
            }) => (setting, found, fix),
            other => panic!("expected a wrong-type error for {text:?}, got {other:?}"),
        }
    }

    #[test]
    fn port_of_wrong_type_is_named() {
        let cases = [
            (
                "database_port: abc",
                "\"abc\"",
                "use a whole number from 1 to 65535",
            ),
            (
                "database_port: 70000",
                "70000",
                "use a whole number from 1 to 65535",
            ),
            (
                "database_port: -1",
                "-1",
                "use a whole number from 1 to 65535",
            ),
            (
                "database_port: '5432'",
                "\"5432\"",
                "use a whole number from 1 to 65535, without quotes",
            ),
        ];
        for (text, expected_found, expected_fix) in cases {
            let (setting, found, fix) = wrong_type_of(text);

            assert_eq!(setting, "database_port", "{text}");
            assert_eq!(found, expected_found, "{text}");
            assert_eq!(fix, expected_fix, "{text}");
        }
    }

    #[test]
    fn yes_for_flag_explains_yaml_1_2() {
        let (setting, found, fix) = wrong_type_of("encrypt_logs: yes");

        assert_eq!(setting, "encrypt_logs");
        assert_eq!(found, "\"yes\"");
        assert!(fix.starts_with("use true or false"), "{fix}");
        assert!(fix.contains("YAML 1.2 reads yes as a string"), "{fix}");
    }

    #[test]
    fn fractional_hours_are_rejected() {
        let (setting, found, fix) = wrong_type_of("rotation_window_hours: 1.5");

        assert_eq!(setting, "rotation_window_hours");
        assert_eq!(found, "1.5");
        assert_eq!(fix, "use a positive whole number of hours");
    }

    #[test]
    fn plain_string_for_list_is_rejected() {
        let (setting, found, fix) =
            wrong_type_of("application_role_arns: arn:aws:iam::111122223333:role/app");

        assert_eq!(setting, "application_role_arns");
        assert_eq!(found, "\"arn:aws:iam::111122223333:role/app\"");
        assert!(
            fix.contains("each item on its own line after `- `"),
            "{fix}"
        );
    }

    #[test]
    fn list_item_of_wrong_type_is_located() {
        let (setting, found, fix) =
            wrong_type_of("subnet_ids:\n  - subnet-0123456789abcdef0\n  - [a]");

        assert_eq!(setting, "subnet_ids[1]");
        assert_eq!(found, "(a list)");
        assert!(fix.starts_with("use a list of strings"), "{fix}");
    }

    #[test]
    fn number_for_string_is_rejected() {
        let (setting, found, fix) = wrong_type_of("cluster_id: 12345");

        assert_eq!(setting, "cluster_id");
        assert_eq!(found, "12345");
        assert!(fix.contains("in quotes"), "{fix}");
    }

    #[test]
    fn wrong_type_message_says_it_once() {
        let error = RawSettings::from_yaml("database_port: abc", "cfg.yaml").unwrap_err();

        let message = format!("{:#}", anyhow::Error::from(error));

        assert_eq!(
            message,
            "invalid `database_port` \"abc\" in cfg.yaml: use a whole number from 1 to 65535"
        );
    }

    #[test]
    fn top_level_list_is_rejected() {
        let error = RawSettings::from_yaml("- stack_name: a\n", "cfg.yaml").unwrap_err();

        let message = format!("{:#}", anyhow::Error::from(error));

        assert!(
            message.contains("must be a mapping of setting names"),
            "{message}"
        );
        assert!(message.ends_with("its top level is a list"), "{message}");
    }

    /// Checks `value_kind` against the field types of `RawSettings`: a value
    /// of the kind it names must deserialize for every setting.
    #[test]
    fn value_kinds_match_field_types() {
        for name in SETTING_NAMES {
            let sample = match value_kind(name) {
                ValueKind::Text => "text",
                ValueKind::Flag => "true",
                ValueKind::Port | ValueKind::Count(_) => "1",
                ValueKind::List => "[text]",
            };

            let parsed = RawSettings::from_yaml(&format!("{name}: {sample}"), "cfg.yaml");

            assert!(parsed.is_ok(), "{name}: {sample} gave {:?}", parsed.err());
        }
    }
}
