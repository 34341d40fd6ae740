//! The CloudFormation templates in `templates/`, rendered with the settings.
//!
//! Rendering sets each parameter's `Default` to the value from the settings
//! and folds the template's Conditions with those values, so the rendered
//! text is the plain template of one variant. It deploys on its own (for
//! example with `aws cloudformation deploy`) and is exactly what `up` sends.

mod fold;
#[cfg(test)]
mod variant_tests;

use serde_yaml::Value;

use crate::config::{Settings, VpcSettings};

/// The rotation stack's template: secret, policy, schedule, function, role, log group.
pub const ROTATION_TEMPLATE: &str = include_str!("../../templates/rotation.yaml");

/// The artifacts stack's template: the bucket that holds the rotator's zip.
pub const ARTIFACTS_TEMPLATE: &str = include_str!("../../templates/artifacts.yaml");

/// Where the rotator's zip lives in S3.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeLocation {
    pub bucket: String,
    pub key: String,
}

/// A template that does not match the parameters the deployer sets.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template is not valid YAML: {0}")]
    Parse(#[from] serde_yaml::Error),

    #[error("template has no parameter `{0}`, which the deployer sets")]
    MissingParameter(String),

    #[error("template conditions: {0}")]
    Condition(String),

    #[error("the cluster's PrivateLink service name is unknown; set `dsql_service_name`")]
    MissingServiceName,
}

/// Renders the rotation template with the settings and the code location.
pub fn render_rotation(settings: &Settings, code: &CodeLocation) -> Result<String, TemplateError> {
    let unnamed_service = settings
        .vpc
        .as_ref()
        .is_some_and(|vpc| vpc.dsql_service_name.is_none());
    if unnamed_service {
        return Err(TemplateError::MissingServiceName);
    }

    let mut template: Value = serde_yaml::from_str(ROTATION_TEMPLATE)?;

    for (name, value) in rotation_parameters(settings, code) {
        set_default(&mut template, name, value)?;
    }
    fold::fold_conditions(&mut template)?;

    Ok(serde_yaml::to_string(&template)?)
}

/// Returns the code bucket that a rendered rotation template names, or
/// `None` for a template that `render_rotation` did not make.
pub fn rendered_code_bucket(rendered: &str) -> Option<String> {
    let template: Value = serde_yaml::from_str(rendered).ok()?;
    let bucket = template
        .get("Parameters")?
        .get("CodeBucket")?
        .get("Default")?;

    bucket.as_str().map(str::to_string)
}

/// Returns the parameter values for the rotation template, in template order.
pub fn rotation_parameters(settings: &Settings, code: &CodeLocation) -> Vec<(&'static str, Value)> {
    vec![
        ("ClusterEndpoint", settings.cluster_endpoint.clone().into()),
        ("ClusterId", settings.cluster_id.clone().into()),
        ("DatabaseUser", settings.database_user.clone().into()),
        ("DatabaseName", settings.database_name.clone().into()),
        ("DatabasePort", settings.database_port.into()),
        ("SecretName", settings.secret_name.clone().into()),
        ("RotationSchedule", settings.schedule.expression().into()),
        (
            "RotationWindow",
            format!("{}h", settings.rotation_window_hours).into(),
        ),
        (
            "RotationPeriodSeconds",
            settings.rotation_period_seconds().into(),
        ),
        (
            "TokenLifetimeSeconds",
            settings.token_lifetime_seconds.into(),
        ),
        ("LogRetentionDays", settings.log_retention_days.into()),
        ("FunctionMemory", settings.function_memory_mb.into()),
        ("FunctionTimeout", settings.function_timeout_seconds.into()),
        (
            "ReservedConcurrency",
            settings.function_reserved_concurrency.into(),
        ),
        ("CodeBucket", code.bucket.clone().into()),
        ("CodeKey", code.key.clone().into()),
        (
            "ApplicationRoleArns",
            settings.application_role_arns.join(",").into(),
        ),
        ("KmsKey", settings.kms_key.parameter().into()),
        ("EncryptLogs", settings.encrypt_logs.to_string().into()),
        ("VpcId", vpc_text(settings, |vpc| Some(&vpc.vpc_id))),
        ("VpcCidr", vpc_text(settings, |vpc| Some(&vpc.vpc_cidr))),
        (
            "SubnetIds",
            settings
                .vpc
                .as_ref()
                .map(|vpc| vpc.subnet_ids.join(","))
                .unwrap_or_default()
                .into(),
        ),
        (
            "SecretsManagerEndpointId",
            vpc_text(settings, |vpc| vpc.secretsmanager_endpoint_id.as_ref()),
        ),
        (
            "DsqlEndpointId",
            vpc_text(settings, |vpc| vpc.dsql_endpoint_id.as_ref()),
        ),
        (
            "DsqlServiceName",
            vpc_text(settings, |vpc| vpc.dsql_service_name.as_ref()),
        ),
        (
            "ConnectHost",
            settings.connect_host.clone().unwrap_or_default().into(),
        ),
        (
            "AlarmEmail",
            settings.alarm_email.clone().unwrap_or_default().into(),
        ),
    ]
}

/// Returns a VPC setting as a parameter value, empty outside a VPC.
fn vpc_text(settings: &Settings, field: impl Fn(&VpcSettings) -> Option<&String>) -> Value {
    let text = settings.vpc.as_ref().and_then(field).cloned();
    Value::from(text.unwrap_or_default())
}

fn set_default(template: &mut Value, name: &str, value: Value) -> Result<(), TemplateError> {
    let parameter = template
        .get_mut("Parameters")
        .and_then(|parameters| parameters.get_mut(name))
        .and_then(Value::as_mapping_mut)
        .ok_or_else(|| TemplateError::MissingParameter(name.to_string()))?;

    parameter.insert("Default".into(), value);
    Ok(())
}

/// Returns the names of the template's parameters that have no default.
#[cfg(test)]
fn parameters_without_default(text: &str) -> Result<Vec<String>, TemplateError> {
    let template: Value = serde_yaml::from_str(text)?;
    let empty = serde_yaml::Mapping::new();
    let parameters = template
        .get("Parameters")
        .and_then(Value::as_mapping)
        .unwrap_or(&empty);

    let names = parameters
        .iter()
        .filter(|(_, body)| body.get("Default").is_none())
        .filter_map(|(name, _)| name.as_str().map(str::to_string))
        .collect();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RawSettings;

    fn raw_settings() -> RawSettings {
        RawSettings {
            stack_name: Some("dsql-tokens".into()),
            region: Some("us-east-1".into()),
            cluster_endpoint: Some("abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws".into()),
            database_user: Some("app_reader".into()),
            ..RawSettings::default()
        }
    }

    fn settings() -> Settings {
        raw_settings().validate(None).unwrap()
    }

    fn code() -> CodeLocation {
        CodeLocation {
            bucket: "artifacts-bucket".into(),
            key: "rotator/0123abcd.zip".into(),
        }
    }

    fn default_of(rendered: &Value, name: &str) -> Value {
        rendered["Parameters"][name]["Default"].clone()
    }

    #[test]
    fn render_sets_every_parameter() {
        let rendered = render_rotation(&settings(), &code()).unwrap();

        assert_eq!(
            parameters_without_default(&rendered).unwrap(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn render_uses_setting_values() {
        let rendered: Value =
            serde_yaml::from_str(&render_rotation(&settings(), &code()).unwrap()).unwrap();

        assert_eq!(
            default_of(&rendered, "ClusterId"),
            Value::from("abcdefghijklmnopqrstuvwxyz")
        );
        assert_eq!(
            default_of(&rendered, "DatabaseUser"),
            Value::from("app_reader")
        );
        assert_eq!(default_of(&rendered, "DatabasePort"), Value::from(5432));
        assert_eq!(
            default_of(&rendered, "RotationSchedule"),
            Value::from("rate(4 hours)")
        );
        assert_eq!(default_of(&rendered, "RotationWindow"), Value::from("1h"));
        assert_eq!(
            default_of(&rendered, "RotationPeriodSeconds"),
            Value::from(18_000)
        );
        assert_eq!(
            default_of(&rendered, "CodeKey"),
            Value::from("rotator/0123abcd.zip")
        );
    }

    #[test]
    fn render_folds_conditions() {
        let rendered: Value =
            serde_yaml::from_str(&render_rotation(&settings(), &code()).unwrap()).unwrap();

        assert!(rendered.get("Conditions").is_none());
        assert!(rendered["Resources"].get("RotatorFunction").is_some());
        assert!(rendered["Resources"].get("SecretKey").is_none());
        assert!(rendered["Parameters"].get("VpcId").is_none());
    }

    #[test]
    fn render_rejects_vpc_without_service_name() {
        let settings = RawSettings {
            vpc_id: Some("vpc-0123456789abcdef0".into()),
            vpc_cidr: Some("10.0.0.0/16".into()),
            subnet_ids: Some(vec!["subnet-0123456789abcdef0".into()]),
            ..raw_settings()
        }
        .validate(None)
        .unwrap();

        let err = render_rotation(&settings, &code()).unwrap_err();

        assert!(matches!(err, TemplateError::MissingServiceName), "{err:?}");
    }

    #[test]
    fn rendered_code_bucket_reads_back_the_bucket() {
        let rendered = render_rotation(&settings(), &code()).unwrap();

        assert_eq!(
            rendered_code_bucket(&rendered).as_deref(),
            Some("artifacts-bucket")
        );
        assert_eq!(rendered_code_bucket(ROTATION_TEMPLATE), None);
        assert_eq!(rendered_code_bucket("not: [yaml"), None);
    }

    #[test]
    fn templates_require_code_and_cluster() {
        let rotation = parameters_without_default(ROTATION_TEMPLATE).unwrap();
        let artifacts = parameters_without_default(ARTIFACTS_TEMPLATE).unwrap();

        assert_eq!(
            rotation,
            [
                "ClusterEndpoint",
                "ClusterId",
                "SecretName",
                "CodeBucket",
                "CodeKey"
            ]
        );
        assert!(artifacts.is_empty());
    }
}
