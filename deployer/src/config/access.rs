//! Settings for who may read the secret and which KMS key encrypts it.

use super::{invalid, ConfigError};

/// Key that encrypts the secret.
#[derive(Debug, Clone, PartialEq)]
pub enum KmsKey {
    /// The AWS managed key `aws/secretsmanager`.
    AwsManaged,
    /// A customer managed key that the stack creates.
    Create,
    /// An existing customer managed key, by ARN.
    Existing(String),
}

impl KmsKey {
    /// Returns the value of the template's `KmsKey` parameter.
    pub fn parameter(&self) -> &str {
        match self {
            KmsKey::AwsManaged => "aws-managed",
            KmsKey::Create => "create",
            KmsKey::Existing(arn) => arn,
        }
    }
}

/// Returns the AWS partition of a region: `aws-cn` for China, `aws-us-gov`
/// for GovCloud, `aws` otherwise.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// Validates the `kms_key` setting: `aws-managed`, `create` or a key ARN in `region`.
pub fn validate_kms_key(text: Option<String>, region: &str) -> Result<KmsKey, ConfigError> {
    let Some(text) = text else {
        return Ok(KmsKey::AwsManaged);
    };
    match text.as_str() {
        "aws-managed" => return Ok(KmsKey::AwsManaged),
        "create" => return Ok(KmsKey::Create),
        _ => {}
    }

    let fix_shape = "use aws-managed, create, or a key ARN arn:<partition>:kms:<region>:<account-id>:key/<key-id>";
    let parts: Vec<&str> = text.splitn(6, ':').collect();
    let [arn, key_partition, service, key_region, account, resource] = parts[..] else {
        return Err(invalid("kms_key", text, fix_shape));
    };
    let key_id = resource.strip_prefix("key/").unwrap_or_default();
    let shaped = arn == "arn"
        && key_partition.starts_with("aws")
        && service == "kms"
        && is_account_id(account)
        && !key_id.is_empty()
        && key_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !shaped {
        let fix = match resource.starts_with("alias/") {
            true => "use the key's ARN (...:key/<key-id>), not an alias ARN".to_string(),
            false => fix_shape.to_string(),
        };
        return Err(invalid("kms_key", text, fix));
    }

    if key_region != region {
        let fix = format!("use a key in {region}: Secrets Manager encrypts a secret only with a key in the secret's region");
        return Err(invalid("kms_key", text, fix));
    }
    if key_partition != partition(region) {
        let fix = format!(
            "use a key in partition {}, the partition of {region}",
            partition(region)
        );
        return Err(invalid("kms_key", text, fix));
    }
    Ok(KmsKey::Existing(text))
}

/// Validates the IAM role ARNs that may read the secret.
pub fn validate_role_arns(arns: Vec<String>, region: &str) -> Result<Vec<String>, ConfigError> {
    let mut seen = Vec::with_capacity(arns.len());
    for arn in arns {
        validate_role_arn(&arn, region)?;
        if seen.contains(&arn) {
            return Err(invalid("application_role_arns", arn, "list each role once"));
        }
        seen.push(arn);
    }
    Ok(seen)
}

fn validate_role_arn(arn: &str, region: &str) -> Result<(), ConfigError> {
    let fix = "use an IAM role ARN, arn:<partition>:iam::<12-digit account id>:role/<name>, with letters, digits and +=.@_- in the name";
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ["arn", role_partition, "iam", "", account, resource] = parts[..] else {
        return Err(invalid("application_role_arns", arn, fix));
    };
    let Some(path_and_name) = resource.strip_prefix("role/") else {
        return Err(invalid("application_role_arns", arn, fix));
    };

    // A comma would split the ARN in the template's comma-separated parameter.
    let valid_name = path_and_name.split('/').all(|segment| {
        !segment.is_empty()
            && segment
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+=.@_-".contains(c))
    });
    let name_length = path_and_name.rsplit('/').next().map_or(0, str::len);
    if !role_partition.starts_with("aws")
        || !is_account_id(account)
        || !valid_name
        || name_length > 64
    {
        return Err(invalid("application_role_arns", arn, fix));
    }

    if role_partition != partition(region) {
        let fix = format!(
            "use a role in partition {}, the partition of {region}",
            partition(region)
        );
        return Err(invalid("application_role_arns", arn, fix));
    }
    Ok(())
}

fn is_account_id(text: &str) -> bool {
    text.len() == 12 && text.chars().all(|c| c.is_ascii_digit())
}

/// Validates the e-mail address that alarm notifications go to.
pub fn validate_alarm_email(address: String) -> Result<String, ConfigError> {
    let (local, domain) = address.split_once('@').unwrap_or_default();
    let valid = !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !address.chars().any(|c| c.is_whitespace() || c == ',');
    if !valid {
        return Err(invalid(
            "alarm_email",
            address,
            "use one e-mail address such as ops@example.com",
        ));
    }
    Ok(address)
}
