//! Folding of a template's Conditions for one set of parameter values.
//!
//! The template in `templates/` chooses its variant (admin or not, VPC or
//! not, which key) with Conditions on its parameters. Folding evaluates each
//! condition with the parameters' defaults, drops the resources and outputs
//! whose condition is false, keeps the chosen branch of each `Fn::If`, and
//! removes the parameters nothing refers to any more. The result is a plain
//! template for exactly that variant, which reviewers, cfn-lint and checkov
//! read without evaluating conditions.

use std::collections::{BTreeMap, BTreeSet};

use serde_yaml::{Mapping, Value};

use super::TemplateError;

const NO_VALUE: &str = "AWS::NoValue";

/// Folds the template's Conditions with the parameters' defaults.
pub fn fold_conditions(template: &mut Value) -> Result<(), TemplateError> {
    let parameters = parameter_values(template);
    let conditions = evaluate_conditions(template, &parameters)?;

    let Some(root) = template.as_mapping_mut() else {
        return Err(TemplateError::Condition(
            "the template is not a mapping".into(),
        ));
    };
    root.remove("Conditions");
    drop_lint_exceptions(root);

    let mut removed = BTreeSet::new();
    for section in ["Resources", "Outputs"] {
        if let Some(entries) = root.get_mut(section).and_then(Value::as_mapping_mut) {
            removed.extend(drop_false_entries(entries, &conditions)?);
        }
    }
    for section in ["Resources", "Outputs"] {
        if let Some(entries) = root.get_mut(section) {
            resolve_ifs(entries, &conditions)?;
        }
    }
    if let Some(resources) = root.get_mut("Resources").and_then(Value::as_mapping_mut) {
        drop_removed_dependencies(resources, &removed);
    }

    drop_unused_parameters(root);
    Ok(())
}

/// Returns each parameter's default: a list for `CommaDelimitedList`,
/// otherwise the scalar as text.
fn parameter_values(template: &Value) -> BTreeMap<String, ParameterValue> {
    let mut values = BTreeMap::new();
    let Some(parameters) = template.get("Parameters").and_then(Value::as_mapping) else {
        return values;
    };

    for (name, body) in parameters {
        let (Some(name), Some(default)) = (name.as_str(), body.get("Default")) else {
            continue;
        };
        let text = scalar_text(default).unwrap_or_default();
        let value = match body.get("Type").and_then(Value::as_str) {
            Some("CommaDelimitedList") => {
                ParameterValue::List(text.split(',').map(str::to_string).collect())
            }
            _ => ParameterValue::Text(text),
        };
        values.insert(name.to_string(), value);
    }
    values
}

#[derive(Debug, Clone, PartialEq)]
enum ParameterValue {
    Text(String),
    List(Vec<String>),
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

fn evaluate_conditions(
    template: &Value,
    parameters: &BTreeMap<String, ParameterValue>,
) -> Result<BTreeMap<String, bool>, TemplateError> {
    let empty = Mapping::new();
    let definitions = template
        .get("Conditions")
        .and_then(Value::as_mapping)
        .unwrap_or(&empty);

    let mut evaluator = ConditionEvaluator {
        definitions,
        parameters,
        results: BTreeMap::new(),
    };
    for name in definitions.keys().filter_map(Value::as_str) {
        evaluator.condition(name)?;
    }
    Ok(evaluator.results)
}

struct ConditionEvaluator<'a> {
    definitions: &'a Mapping,
    parameters: &'a BTreeMap<String, ParameterValue>,
    results: BTreeMap<String, bool>,
}

impl ConditionEvaluator<'_> {
    fn condition(&mut self, name: &str) -> Result<bool, TemplateError> {
        if let Some(result) = self.results.get(name) {
            return Ok(*result);
        }
        let definition = self
            .definitions
            .get(name)
            .ok_or_else(|| TemplateError::Condition(format!("condition {name} is not defined")))?;

        let result = self.expression(definition)?;
        self.results.insert(name.to_string(), result);
        Ok(result)
    }

    fn expression(&mut self, expression: &Value) -> Result<bool, TemplateError> {
        let (function, arguments) =
            single_entry(expression).ok_or_else(|| unsupported("a condition", expression))?;

        match function {
            "Condition" => {
                let name = arguments
                    .as_str()
                    .ok_or_else(|| unsupported("Condition", arguments))?;
                self.condition(name)
            }
            "Fn::Not" => Ok(!self.expression(only_argument(arguments)?)?),
            "Fn::And" => self.all(arguments, true),
            "Fn::Or" => self.all(arguments, false),
            "Fn::Equals" => {
                let [left, right] = pair(arguments)?;
                Ok(self.text(left)? == self.text(right)?)
            }
            _ => Err(unsupported("a condition", expression)),
        }
    }

    /// Evaluates `Fn::And` (`every` true) or `Fn::Or` (`every` false).
    fn all(&mut self, arguments: &Value, every: bool) -> Result<bool, TemplateError> {
        let items = arguments
            .as_sequence()
            .ok_or_else(|| unsupported("Fn::And or Fn::Or", arguments))?;
        for item in items {
            if self.expression(item)? != every {
                return Ok(!every);
            }
        }
        Ok(every)
    }

    /// Returns the text of a literal, a `Ref` to a parameter or a `Fn::Join`.
    fn text(&self, value: &Value) -> Result<String, TemplateError> {
        if let Some(text) = scalar_text(value) {
            return Ok(text);
        }
        match single_entry(value) {
            Some(("Ref", name)) => match self.parameter(name)? {
                ParameterValue::Text(text) => Ok(text.clone()),
                ParameterValue::List(items) => Ok(items.join(",")),
            },
            Some(("Fn::Join", arguments)) => {
                let [delimiter, items] = pair(arguments)?;
                let delimiter = scalar_text(delimiter)
                    .ok_or_else(|| unsupported("a Fn::Join delimiter", delimiter))?;
                Ok(self.list(items)?.join(&delimiter))
            }
            _ => Err(unsupported("a value in a condition", value)),
        }
    }

    fn list(&self, value: &Value) -> Result<Vec<String>, TemplateError> {
        if let Some(items) = value.as_sequence() {
            return items.iter().map(|item| self.text(item)).collect();
        }
        match single_entry(value) {
            Some(("Ref", name)) => match self.parameter(name)? {
                ParameterValue::List(items) => Ok(items.clone()),
                ParameterValue::Text(text) => Ok(vec![text.clone()]),
            },
            _ => Err(unsupported("a list in a condition", value)),
        }
    }

    fn parameter(&self, name: &Value) -> Result<&ParameterValue, TemplateError> {
        let name = name.as_str().ok_or_else(|| unsupported("Ref", name))?;
        self.parameters.get(name).ok_or_else(|| {
            TemplateError::Condition(format!("parameter {name} in a condition has no default"))
        })
    }
}

fn single_entry(value: &Value) -> Option<(&str, &Value)> {
    let mapping = value.as_mapping()?;
    if mapping.len() != 1 {
        return None;
    }
    let (key, argument) = mapping.iter().next()?;
    Some((key.as_str()?, argument))
}

fn only_argument(arguments: &Value) -> Result<&Value, TemplateError> {
    match arguments.as_sequence().map(Vec::as_slice) {
        Some([only]) => Ok(only),
        _ => Err(unsupported("Fn::Not", arguments)),
    }
}

fn pair(arguments: &Value) -> Result<[&Value; 2], TemplateError> {
    match arguments.as_sequence().map(Vec::as_slice) {
        Some([first, second]) => Ok([first, second]),
        _ => Err(unsupported("a function of two arguments", arguments)),
    }
}

fn unsupported(what: &str, value: &Value) -> TemplateError {
    let text = serde_yaml::to_string(value).unwrap_or_default();
    TemplateError::Condition(format!("cannot fold {what}: {}", text.trim()))
}

/// Removes the entries whose `Condition` is false, strips the key from the
/// rest and returns the names removed.
fn drop_false_entries(
    entries: &mut Mapping,
    conditions: &BTreeMap<String, bool>,
) -> Result<Vec<String>, TemplateError> {
    let mut removed = Vec::new();
    let mut kept = Mapping::new();

    for (name, mut body) in std::mem::take(entries) {
        let condition = body
            .as_mapping_mut()
            .and_then(|mapping| mapping.remove("Condition"));
        let keep = match condition {
            None => true,
            Some(condition) => lookup(conditions, &condition)?,
        };
        if keep {
            kept.insert(name, body);
        } else if let Some(name) = name.as_str() {
            removed.push(name.to_string());
        }
    }

    *entries = kept;
    Ok(removed)
}

fn lookup(conditions: &BTreeMap<String, bool>, name: &Value) -> Result<bool, TemplateError> {
    let name = name
        .as_str()
        .ok_or_else(|| unsupported("a condition name", name))?;
    conditions
        .get(name)
        .copied()
        .ok_or_else(|| TemplateError::Condition(format!("condition {name} is not defined")))
}

/// Replaces each `Fn::If` by its chosen branch. A branch of `AWS::NoValue`
/// removes the property or list item that held the `Fn::If`.
fn resolve_ifs(
    value: &mut Value,
    conditions: &BTreeMap<String, bool>,
) -> Result<(), TemplateError> {
    while let Some(chosen) = chosen_branch(value, conditions)? {
        *value = chosen;
    }

    match value {
        Value::Mapping(mapping) => {
            let mut kept = Mapping::new();
            for (key, mut item) in std::mem::take(mapping) {
                resolve_ifs(&mut item, conditions)?;
                if !is_no_value(&item) {
                    kept.insert(key, item);
                }
            }
            *mapping = kept;
        }
        Value::Sequence(items) => {
            for item in items.iter_mut() {
                resolve_ifs(item, conditions)?;
            }
            items.retain(|item| !is_no_value(item));
        }
        _ => {}
    }
    Ok(())
}

fn chosen_branch(
    value: &Value,
    conditions: &BTreeMap<String, bool>,
) -> Result<Option<Value>, TemplateError> {
    let Some(("Fn::If", arguments)) = single_entry(value) else {
        return Ok(None);
    };
    let Some([name, when_true, when_false]) = arguments.as_sequence().map(Vec::as_slice) else {
        return Err(unsupported("Fn::If", arguments));
    };

    let branch = match lookup(conditions, name)? {
        true => when_true,
        false => when_false,
    };
    Ok(Some(branch.clone()))
}

fn is_no_value(value: &Value) -> bool {
    matches!(single_entry(value), Some(("Ref", Value::String(name))) if name == NO_VALUE)
}

fn drop_removed_dependencies(resources: &mut Mapping, removed: &BTreeSet<String>) {
    for body in resources.values_mut() {
        let Some(depends_on) = body.get_mut("DependsOn") else {
            continue;
        };
        if let Value::Sequence(names) = depends_on {
            names.retain(|name| !name.as_str().is_some_and(|name| removed.contains(name)));
        }
    }
}

/// Removes the template-level cfn-lint exceptions, which cover only the
/// empty defaults of parameters that folding removes or fills in.
fn drop_lint_exceptions(root: &mut Mapping) {
    let Some(metadata) = root.get_mut("Metadata").and_then(Value::as_mapping_mut) else {
        return;
    };
    metadata.remove("cfn-lint");
    if metadata.is_empty() {
        root.remove("Metadata");
    }
}

fn drop_unused_parameters(root: &mut Mapping) {
    let mut used = BTreeSet::new();
    for section in ["Resources", "Outputs"] {
        if let Some(value) = root.get(section) {
            collect_references(value, &mut used);
        }
    }

    if let Some(parameters) = root.get_mut("Parameters").and_then(Value::as_mapping_mut) {
        parameters.retain(|name, _| name.as_str().is_some_and(|name| used.contains(name)));
    }
}

/// Collects the names that `Ref` and `Fn::Sub` refer to.
fn collect_references(value: &Value, names: &mut BTreeSet<String>) {
    match value {
        Value::Mapping(mapping) => {
            for (key, item) in mapping {
                match (key.as_str(), item) {
                    (Some("Ref"), Value::String(name)) => {
                        names.insert(name.clone());
                    }
                    (Some("Fn::Sub"), Value::String(text)) => collect_sub_names(text, names),
                    (Some("Fn::Sub"), Value::Sequence(arguments)) => {
                        if let Some(Value::String(text)) = arguments.first() {
                            collect_sub_names(text, names);
                        }
                        arguments
                            .iter()
                            .skip(1)
                            .for_each(|item| collect_references(item, names));
                    }
                    _ => collect_references(item, names),
                }
            }
        }
        Value::Sequence(items) => items
            .iter()
            .for_each(|item| collect_references(item, names)),
        _ => {}
    }
}

/// Collects `${Name}` placeholders but not `${!Literal}`, which is an escape.
fn collect_sub_names(text: &str, names: &mut BTreeSet<String>) {
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return;
        };
        let name = &after[..end];
        if !name.starts_with('!') {
            let base = name.split('.').next().unwrap_or(name);
            names.insert(base.to_string());
        }
        rest = &after[end + 1..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folded(text: &str) -> Value {
        let mut template: Value = serde_yaml::from_str(text).unwrap();
        fold_conditions(&mut template).unwrap();
        template
    }

    const TEMPLATE: &str = r#"
Parameters:
  Mode: {Type: String, Default: b}
  Roles: {Type: CommaDelimitedList, Default: ""}
  Unused: {Type: String, Default: x}
  Named: {Type: String, Default: y}
Conditions:
  IsA: {"Fn::Equals": [{Ref: Mode}, a]}
  NotA: {"Fn::Not": [{Condition: IsA}]}
  HasRoles: {"Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {Ref: Roles}]}, ""]}]}
  Both: {"Fn::And": [{Condition: NotA}, {Condition: HasRoles}]}
  Either: {"Fn::Or": [{Condition: NotA}, {Condition: HasRoles}]}
Resources:
  Kept:
    Type: T
    Condition: Either
    DependsOn: [Dropped]
    Properties:
      Choice: {"Fn::If": [IsA, {Ref: Unused}, {"Fn::Sub": "${Named}-${AWS::Region}"}]}
      Gone: {"Fn::If": [IsA, 1, {Ref: AWS::NoValue}]}
      List:
        - one
        - {"Fn::If": [Both, two, {Ref: AWS::NoValue}]}
  Dropped:
    Type: T
    Condition: Both
Outputs:
  Out:
    Condition: IsA
    Value: {Ref: Kept}
"#;

    #[test]
    fn fold_keeps_true_branches() {
        let template = folded(TEMPLATE);
        let kept = &template["Resources"]["Kept"];

        assert_eq!(
            kept["Properties"]["Choice"]["Fn::Sub"],
            Value::from("${Named}-${AWS::Region}")
        );
        assert!(kept["Properties"].get("Gone").is_none());
        assert_eq!(
            kept["Properties"]["List"],
            serde_yaml::from_str::<Value>("[one]").unwrap()
        );
        assert!(kept.get("Condition").is_none());
    }

    #[test]
    fn fold_drops_false_resources_and_outputs() {
        let template = folded(TEMPLATE);

        assert!(template["Resources"].get("Dropped").is_none());
        assert_eq!(
            template["Resources"]["Kept"]["DependsOn"],
            Value::Sequence(vec![])
        );
        assert!(template["Outputs"].get("Out").is_none());
        assert!(template.get("Conditions").is_none());
    }

    #[test]
    fn fold_drops_unreferenced_parameters() {
        let template = folded(TEMPLATE);
        let names: Vec<&str> = template["Parameters"]
            .as_mapping()
            .unwrap()
            .keys()
            .filter_map(Value::as_str)
            .collect();

        assert_eq!(names, ["Named"]);
    }

    #[test]
    fn list_parameter_with_items_is_non_empty() {
        let text = TEMPLATE.replace(r#"Default: """#, r#"Default: "arn:a,arn:b""#);

        let template = folded(&text);

        assert!(template["Resources"].get("Dropped").is_some());
        assert_eq!(
            template["Resources"]["Kept"]["Properties"]["List"],
            serde_yaml::from_str::<Value>("[one, two]").unwrap()
        );
    }

    #[test]
    fn undefined_condition_is_an_error() {
        let mut template: Value =
            serde_yaml::from_str("Resources: {R: {Type: T, Condition: Missing}}").unwrap();

        let err = fold_conditions(&mut template).unwrap_err();

        assert!(
            err.to_string().contains("condition Missing is not defined"),
            "{err}"
        );
    }
}
