//! Resource changes that a change set plans, and which of them a person
//! should confirm before they run.

use aws_sdk_cloudformation::types::{Change, ChangeAction, Replacement as SdkReplacement};
use serde::Serialize;

/// The secret's resource type; replacing or removing it changes its ARN and
/// drops its versions, so every reader must be pointed at the new one.
const SECRET_TYPE: &str = "AWS::SecretsManager::Secret";

/// Action that a change set takes on one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Add,
    Modify,
    Remove,
    /// Import, Dynamic or an action this SDK version does not know.
    Other,
}

/// CloudFormation's prediction of whether a modification replaces the resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Replacement {
    No,
    /// Replaced only if a value that is known at execution time requires it.
    Conditional,
    Yes,
}

/// One resource change that a change set would make.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedChange {
    pub action: Action,
    pub logical_id: String,
    pub resource_type: String,
    pub replacement: Replacement,
    /// The resource grants IAM or network access, so the change may widen it.
    pub access_change: bool,
}

impl PlannedChange {
    /// Builds a planned change from a change set entry; `None` for entries
    /// that are not resource changes (hook invocations).
    pub fn from_change(change: &Change) -> Option<Self> {
        let resource = change.resource_change()?;
        let resource_type = resource.resource_type().unwrap_or_default().to_string();
        let replacement = match resource.replacement() {
            Some(SdkReplacement::True) => Replacement::Yes,
            Some(SdkReplacement::Conditional) => Replacement::Conditional,
            _ => Replacement::No,
        };
        let action = match resource.action() {
            Some(ChangeAction::Add) => Action::Add,
            Some(ChangeAction::Modify) => Action::Modify,
            Some(ChangeAction::Remove) => Action::Remove,
            _ => Action::Other,
        };

        Some(PlannedChange {
            action,
            logical_id: resource
                .logical_resource_id()
                .unwrap_or_default()
                .to_string(),
            access_change: grants_access(&resource_type),
            resource_type,
            replacement,
        })
    }

    /// Checks whether the change replaces the resource or may do so.
    pub fn replaces(&self) -> bool {
        self.action == Action::Modify && self.replacement != Replacement::No
    }

    /// Checks whether the change replaces or removes the secret.
    pub fn replaces_secret(&self) -> bool {
        self.resource_type == SECRET_TYPE && (self.replaces() || self.action == Action::Remove)
    }

    /// Returns why a person should confirm this change, or `None`.
    pub fn confirmation_reason(&self) -> Option<&'static str> {
        if self.replaces_secret() {
            Some("replaces or removes the secret, which changes its ARN")
        } else if self.access_change {
            Some("changes IAM or network access")
        } else {
            None
        }
    }
}

/// Checks whether resources of `resource_type` grant IAM or network access:
/// IAM entities and policies, resource policies of any service, Lambda
/// permissions, security groups and their rules, VPC endpoints and KMS keys
/// (whose key policy grants use of the key).
pub fn grants_access(resource_type: &str) -> bool {
    resource_type.starts_with("AWS::IAM::")
        || resource_type.starts_with("AWS::EC2::SecurityGroup")
        || resource_type.ends_with("Policy")
        || matches!(
            resource_type,
            "AWS::Lambda::Permission" | "AWS::EC2::VPCEndpoint" | "AWS::KMS::Key"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(action: Action, resource_type: &str, replacement: Replacement) -> PlannedChange {
        PlannedChange {
            action,
            logical_id: "Resource".into(),
            resource_type: resource_type.into(),
            replacement,
            access_change: grants_access(resource_type),
        }
    }

    #[test]
    fn access_types_are_recognised() {
        for resource_type in [
            "AWS::IAM::Role",
            "AWS::IAM::Policy",
            "AWS::EC2::SecurityGroup",
            "AWS::EC2::SecurityGroupIngress",
            "AWS::EC2::SecurityGroupEgress",
            "AWS::EC2::VPCEndpoint",
            "AWS::SecretsManager::ResourcePolicy",
            "AWS::SNS::TopicPolicy",
            "AWS::S3::BucketPolicy",
            "AWS::Lambda::Permission",
            "AWS::KMS::Key",
        ] {
            assert!(grants_access(resource_type), "{resource_type}");
        }
    }

    #[test]
    fn other_types_grant_no_access() {
        for resource_type in [
            "AWS::Lambda::Function",
            "AWS::Logs::LogGroup",
            "AWS::SecretsManager::Secret",
            "AWS::SecretsManager::RotationSchedule",
            "AWS::SNS::Topic",
        ] {
            assert!(!grants_access(resource_type), "{resource_type}");
        }
    }

    #[test]
    fn secret_replacement_needs_confirmation() {
        let replaced = change(Action::Modify, SECRET_TYPE, Replacement::Yes);
        let maybe = change(Action::Modify, SECRET_TYPE, Replacement::Conditional);
        let removed = change(Action::Remove, SECRET_TYPE, Replacement::No);
        let modified = change(Action::Modify, SECRET_TYPE, Replacement::No);

        assert!(replaced.confirmation_reason().is_some());
        assert!(maybe.confirmation_reason().is_some());
        assert!(removed.confirmation_reason().is_some());
        assert_eq!(modified.confirmation_reason(), None);
    }

    #[test]
    fn access_change_needs_confirmation() {
        let policy = change(Action::Modify, "AWS::IAM::Policy", Replacement::No);
        let function = change(Action::Modify, "AWS::Lambda::Function", Replacement::Yes);

        assert_eq!(
            policy.confirmation_reason(),
            Some("changes IAM or network access")
        );
        assert_eq!(function.confirmation_reason(), None);
    }
}
