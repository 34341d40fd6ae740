//! Renders every combination of the settings that change the template
//! (database role, VPC, key, application roles) and checks the exact
//! statements, actions, resources and principals of each.
//!
//! The rendered templates still hold intrinsic functions, so `resolve`
//! evaluates them the way CloudFormation would, with fixed pseudo parameters
//! and placeholders `<Resource>` for `Ref` and `<Resource.Attribute>` for
//! `Fn::GetAtt` of resources.

use serde_json::{json, Value as Json};
use serde_yaml::Value;

use super::{render_rotation, CodeLocation};
use crate::config::{RawSettings, Settings};

const ACCOUNT: &str = "111122223333";
const CLUSTER_ID: &str = "abcdefghijklmnopqrstuvwxyz";
const GIVEN_KEY: &str =
    "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const SERVICE_NAME: &str = "com.amazonaws.us-east-1.dsql-a1b2";
const SUBNETS: [&str; 2] = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"];
const VIA_SECRETS_MANAGER: &str = "secretsmanager.us-east-1.amazonaws.com";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Key {
    AwsManaged,
    Create,
    Given,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Network {
    Public,
    /// In a VPC, with both endpoints created by the stack.
    Vpc,
    /// In a VPC whose endpoints already exist.
    VpcWithEndpoints,
}

#[derive(Debug, Clone, Copy)]
struct Variant {
    admin: bool,
    network: Network,
    key: Key,
    roles: usize,
}

impl Variant {
    fn role_arns(&self) -> Vec<String> {
        (1..=self.roles)
            .map(|i| format!("arn:aws:iam::444455556666:role/app/reader-{i}"))
            .collect()
    }

    fn in_vpc(&self) -> bool {
        self.network != Network::Public
    }

    fn settings(&self) -> Settings {
        let mut raw = RawSettings {
            stack_name: Some("dsql-tokens".into()),
            region: Some("us-east-1".into()),
            cluster_endpoint: Some(format!("{CLUSTER_ID}.dsql.us-east-1.on.aws")),
            database_user: Some(if self.admin { "admin" } else { "app_reader" }.into()),
            application_role_arns: Some(self.role_arns()),
            kms_key: Some(
                match self.key {
                    Key::AwsManaged => "aws-managed",
                    Key::Create => "create",
                    Key::Given => GIVEN_KEY,
                }
                .into(),
            ),
            ..RawSettings::default()
        };
        if self.in_vpc() {
            raw.vpc_id = Some("vpc-0123456789abcdef0".into());
            raw.vpc_cidr = Some("10.20.0.0/16".into());
            raw.subnet_ids = Some(SUBNETS.map(String::from).to_vec());
            raw.dsql_service_name = Some(SERVICE_NAME.into());
        }
        if self.network == Network::VpcWithEndpoints {
            raw.secretsmanager_endpoint_id = Some("vpce-0123456789abcdef0".into());
            raw.dsql_endpoint_id = Some("vpce-0123456789abcdef1".into());
        }
        raw.validate(None).unwrap()
    }

    fn render(&self) -> Rendered {
        let code = CodeLocation {
            bucket: "artifacts-bucket".into(),
            key: "rotator/0123abcd.zip".into(),
        };
        let text = render_rotation(&self.settings(), &code).unwrap();
        Rendered(serde_yaml::from_str(&text).unwrap())
    }
}

fn variants() -> Vec<Variant> {
    let mut all = Vec::new();
    for admin in [true, false] {
        for network in [Network::Public, Network::Vpc, Network::VpcWithEndpoints] {
            for key in [Key::AwsManaged, Key::Create, Key::Given] {
                for roles in [0, 1, 3] {
                    all.push(Variant {
                        admin,
                        network,
                        key,
                        roles,
                    });
                }
            }
        }
    }
    all
}

struct Rendered(Value);

impl Rendered {
    fn resource(&self, name: &str) -> Option<&Value> {
        self.0["Resources"].get(name)
    }

    fn property(&self, resource: &str, path: &[&str]) -> Json {
        let mut value = &self.0["Resources"][resource]["Properties"];
        for key in path {
            value = &value[*key];
        }
        self.resolve(value)
    }

    fn statements(&self, resource: &str, document: &str) -> Vec<Json> {
        match self.property(resource, &[document, "Statement"]) {
            Json::Array(statements) => statements,
            other => panic!("{resource} has no statement list: {other}"),
        }
    }

    fn resource_names(&self) -> Vec<String> {
        let resources = self.0["Resources"].as_mapping().unwrap();
        resources
            .keys()
            .filter_map(|name| name.as_str().map(str::to_string))
            .collect()
    }

    fn skipped_checks(&self, resource: &str) -> Vec<String> {
        let skips = &self.0["Resources"][resource]["Metadata"]["checkov"]["skip"];
        let mut ids: Vec<String> = skips
            .as_sequence()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| item["id"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        ids
    }

    /// Evaluates the intrinsic functions left in a rendered value.
    fn resolve(&self, value: &Value) -> Json {
        match value {
            Value::Null => Json::Null,
            Value::Bool(flag) => json!(flag),
            Value::Number(number) => serde_json::to_value(number).unwrap(),
            Value::String(text) => json!(text),
            Value::Sequence(items) => items.iter().map(|item| self.resolve(item)).collect(),
            Value::Mapping(mapping) => {
                if let Some(resolved) = self.resolve_function(value) {
                    return resolved;
                }
                let mut object = serde_json::Map::new();
                for (key, item) in mapping {
                    object.insert(key.as_str().unwrap().to_string(), self.resolve(item));
                }
                Json::Object(object)
            }
            Value::Tagged(_) => panic!("tagged YAML value in a rendered template"),
        }
    }

    fn resolve_function(&self, value: &Value) -> Option<Json> {
        let mapping = value.as_mapping()?;
        if mapping.len() != 1 {
            return None;
        }
        let (name, argument) = mapping.iter().next()?;
        let resolved = match name.as_str()? {
            "Ref" => self.reference(argument.as_str().unwrap()),
            "Fn::GetAtt" => {
                let parts = argument.as_sequence().unwrap();
                json!(format!(
                    "<{}.{}>",
                    parts[0].as_str().unwrap(),
                    parts[1].as_str().unwrap()
                ))
            }
            "Fn::Sub" => json!(self.substitute(argument)),
            "Fn::Join" => {
                let arguments = argument.as_sequence().unwrap();
                let delimiter = self.resolve(&arguments[0]);
                let items = self.flatten(&arguments[1]);
                json!(items.join(delimiter.as_str().unwrap()))
            }
            "Fn::Split" => {
                let arguments = argument.as_sequence().unwrap();
                let delimiter = self.resolve(&arguments[0]);
                let text = self.resolve(&arguments[1]);
                let parts: Vec<&str> = text
                    .as_str()
                    .unwrap()
                    .split(delimiter.as_str().unwrap())
                    .collect();
                json!(parts)
            }
            "Fn::Select" => {
                let arguments = argument.as_sequence().unwrap();
                let index = self.resolve(&arguments[0]).as_u64().unwrap() as usize;
                self.resolve(&arguments[1])[index].clone()
            }
            _ => return None,
        };
        Some(resolved)
    }

    fn flatten(&self, value: &Value) -> Vec<String> {
        match self.resolve(value) {
            Json::Array(items) => items
                .into_iter()
                .flat_map(|item| match item {
                    Json::Array(inner) => inner,
                    other => vec![other],
                })
                .map(|item| item.as_str().unwrap().to_string())
                .collect(),
            other => vec![other.as_str().unwrap().to_string()],
        }
    }

    fn reference(&self, name: &str) -> Json {
        match name {
            "AWS::Partition" => return json!("aws"),
            "AWS::Region" => return json!("us-east-1"),
            "AWS::AccountId" => return json!(ACCOUNT),
            "AWS::StackName" => return json!("dsql-tokens"),
            _ => {}
        }
        let Some(parameter) = self.0["Parameters"].get(name) else {
            assert!(self.resource(name).is_some(), "Ref to unknown {name}");
            return json!(format!("<{name}>"));
        };
        let default = &parameter["Default"];
        let text = match default {
            Value::String(text) => text.clone(),
            Value::Number(number) => number.to_string(),
            other => panic!("parameter {name} has default {other:?}"),
        };
        match parameter["Type"].as_str() {
            Some("CommaDelimitedList") => json!(text.split(',').collect::<Vec<_>>()),
            _ => json!(text),
        }
    }

    fn substitute(&self, argument: &Value) -> String {
        let (text, variables) = match argument {
            Value::String(text) => (text.as_str(), None),
            Value::Sequence(items) => (items[0].as_str().unwrap(), items[1].as_mapping()),
            other => panic!("Fn::Sub of {other:?}"),
        };

        let mut output = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            output.push_str(&rest[..start]);
            let end = rest[start..].find('}').unwrap() + start;
            let name = &rest[start + 2..end];
            let value = match variables.and_then(|variables| variables.get(name)) {
                Some(value) => self.resolve(value),
                None => match name.split_once('.') {
                    Some((resource, attribute)) => json!(format!("<{resource}.{attribute}>")),
                    None => self.reference(name),
                },
            };
            match value {
                Json::String(text) => output.push_str(&text),
                other => output.push_str(&other.to_string()),
            }
            rest = &rest[end + 1..];
        }
        output.push_str(rest);
        output
    }
}

fn arn(service: &str, resource: &str) -> String {
    format!("arn:aws:{service}:us-east-1:{ACCOUNT}:{resource}")
}

fn via_secrets_manager() -> Json {
    json!({"StringEquals": {"kms:ViaService": VIA_SECRETS_MANAGER}})
}

/// Returns the principal list of the value-read statements: the rotator's
/// role alone, or the rotator's role then the application roles.
fn readers(variant: &Variant) -> Json {
    if variant.roles == 0 {
        return json!("<RotatorRole.Arn>");
    }
    let mut arns = vec!["<RotatorRole.Arn>".to_string()];
    arns.extend(variant.role_arns());
    json!(arns)
}

fn key_arn(variant: &Variant) -> Option<Json> {
    match variant.key {
        Key::AwsManaged => None,
        Key::Create => Some(json!("<SecretKey.Arn>")),
        Key::Given => Some(json!(GIVEN_KEY)),
    }
}

fn expected_rotator_statements(variant: &Variant) -> Vec<Json> {
    let mut statements = vec![
        json!({
            "Sid": "RotateThisSecret",
            "Effect": "Allow",
            "Action": [
                "secretsmanager:DescribeSecret",
                "secretsmanager:GetSecretValue",
                "secretsmanager:PutSecretValue",
                "secretsmanager:UpdateSecretVersionStage",
            ],
            "Resource": "<TokenSecret>",
        }),
        json!({
            "Sid": "SignTokensForThisCluster",
            "Effect": "Allow",
            "Action": if variant.admin { "dsql:DbConnectAdmin" } else { "dsql:DbConnect" },
            "Resource": arn("dsql", &format!("cluster/{CLUSTER_ID}")),
        }),
        json!({
            "Sid": "WriteOwnLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "<RotatorLogGroup.Arn>",
        }),
    ];
    if let Some(key) = key_arn(variant) {
        statements.push(json!({
            "Sid": "UseKeyThroughSecretsManager",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": key,
            "Condition": via_secrets_manager(),
        }));
    }
    if variant.in_vpc() {
        statements.push(json!({
            "Sid": "CreateNetworkInterfacesInFunctionVpc",
            "Effect": "Allow",
            "Action": "ec2:CreateNetworkInterface",
            "Resource": [
                arn("ec2", "network-interface/*"),
                arn("ec2", "subnet/*"),
                arn("ec2", "security-group/<FunctionSecurityGroup>"),
            ],
        }));
        statements.push(json!({
            "Sid": "ManageFunctionNetworkInterfaces",
            "Effect": "Allow",
            "Action": [
                "ec2:AssignPrivateIpAddresses",
                "ec2:DeleteNetworkInterface",
                "ec2:UnassignPrivateIpAddresses",
            ],
            "Resource": arn("ec2", "network-interface/*"),
        }));
        statements.push(json!({
            "Sid": "DescribeNetworkInterfaces",
            "Effect": "Allow",
            "Action": ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"],
            "Resource": "*",
        }));
    }
    statements
}

fn expected_secret_policy(variant: &Variant) -> Vec<Json> {
    let others_are_not = |principals: Json| {
        json!({
            "StringNotEquals": {"aws:PrincipalArn": principals},
            "Bool": {"aws:PrincipalIsAWSService": "false"},
        })
    };
    let mut statements = vec![
        json!({
            "Sid": "DenyDeleteWhilePolicyAttached",
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "secretsmanager:DeleteSecret",
            "Resource": "*",
        }),
        json!({
            "Sid": "DenyValueReadToOtherPrincipals",
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "secretsmanager:GetSecretValue",
            "Resource": "*",
            "Condition": others_are_not(readers(variant)),
        }),
        json!({
            "Sid": "DenyValueWriteToOtherPrincipals",
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": [
                "secretsmanager:PutSecretValue",
                "secretsmanager:UpdateSecretVersionStage",
            ],
            "Resource": "*",
            "Condition": others_are_not(json!("<RotatorRole.Arn>")),
        }),
    ];
    if variant.roles > 0 {
        statements.push(json!({
            "Sid": "AllowApplicationsToReadValue",
            "Effect": "Allow",
            "Principal": {"AWS": variant.role_arns()},
            "Action": "secretsmanager:GetSecretValue",
            "Resource": "*",
        }));
    }
    statements
}

fn expected_key_policy(variant: &Variant) -> Vec<Json> {
    let root = format!("arn:aws:iam::{ACCOUNT}:root");
    let mut statements = vec![
        json!({
            "Sid": "AdministerKey",
            "Effect": "Allow",
            "Principal": {"AWS": root},
            "Action": [
                "kms:CancelKeyDeletion", "kms:CreateAlias",
                "kms:DeleteAlias", "kms:DescribeKey", "kms:DisableKey",
                "kms:DisableKeyRotation", "kms:EnableKey", "kms:EnableKeyRotation",
                "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:ListAliases",
                "kms:ListGrants", "kms:ListKeyPolicies", "kms:ListResourceTags",
                "kms:PutKeyPolicy", "kms:RetireGrant", "kms:RevokeGrant",
                "kms:ScheduleKeyDeletion", "kms:TagResource", "kms:UntagResource",
                "kms:UpdateAlias", "kms:UpdateKeyDescription",
            ],
            "Resource": "*",
        }),
        json!({
            "Sid": "WriteSecretValuesInAccount",
            "Effect": "Allow",
            "Principal": {"AWS": root},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": "*",
            "Condition": {"StringEquals": {
                "kms:ViaService": VIA_SECRETS_MANAGER,
                "kms:CallerAccount": ACCOUNT,
            }},
        }),
        json!({
            "Sid": "RotatorUsesKeyThroughSecretsManager",
            "Effect": "Allow",
            "Principal": {"AWS": "<RotatorRole.Arn>"},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": "*",
            "Condition": via_secrets_manager(),
        }),
    ];
    if variant.roles > 0 {
        statements.push(json!({
            "Sid": "ApplicationsDecryptThroughSecretsManager",
            "Effect": "Allow",
            "Principal": {"AWS": variant.role_arns()},
            "Action": "kms:Decrypt",
            "Resource": "*",
            "Condition": via_secrets_manager(),
        }));
    }
    statements.push(json!({
        "Sid": "AlertsPublishToEncryptedTopic",
        "Effect": "Allow",
        "Principal": {"Service": ["cloudwatch.amazonaws.com", "events.amazonaws.com"]},
        "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
        "Resource": "*",
        "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
    }));
    statements
}

#[test]
fn rotator_policy_per_variant() {
    for variant in variants() {
        let rendered = variant.render();

        let statements = rendered.statements("RotatorPolicy", "PolicyDocument");

        assert_eq!(
            statements,
            expected_rotator_statements(&variant),
            "{variant:?}"
        );
    }
}

#[test]
fn rotator_role_trusts_only_lambda() {
    for variant in variants() {
        let rendered = variant.render();

        let statements = rendered.statements("RotatorRole", "AssumeRolePolicyDocument");

        let expected = json!([{
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
        }]);
        assert_eq!(json!(statements), expected, "{variant:?}");
    }
}

#[test]
fn secret_policy_per_variant() {
    for variant in variants() {
        let rendered = variant.render();

        let statements = rendered.statements("TokenSecretPolicy", "ResourcePolicy");
        let block_public = rendered.property("TokenSecretPolicy", &["BlockPublicPolicy"]);

        assert_eq!(statements, expected_secret_policy(&variant), "{variant:?}");
        assert_eq!(block_public, json!(true), "{variant:?}");
    }
}

#[test]
fn key_policy_per_variant() {
    for variant in variants() {
        let rendered = variant.render();

        let key = rendered.resource("SecretKey");

        if variant.key != Key::Create {
            assert!(key.is_none(), "{variant:?}");
            continue;
        }
        let statements = rendered.statements("SecretKey", "KeyPolicy");
        assert_eq!(statements, expected_key_policy(&variant), "{variant:?}");
        assert_eq!(
            rendered.property("SecretKey", &["EnableKeyRotation"]),
            json!(true)
        );
    }
}

#[test]
fn secret_key_per_variant() {
    for variant in variants() {
        let rendered = variant.render();

        let secret_key = rendered.property("TokenSecret", &["KmsKeyId"]);
        let topic_key = rendered.property("AlertTopic", &["KmsMasterKeyId"]);

        let expected = match variant.key {
            Key::AwsManaged => Json::Null,
            Key::Create => json!("<SecretKey>"),
            Key::Given => json!(GIVEN_KEY),
        };
        assert_eq!(secret_key, expected, "{variant:?}");
        let expected_topic = match variant.key {
            Key::Create => json!("<SecretKey>"),
            _ => Json::Null,
        };
        assert_eq!(topic_key, expected_topic, "{variant:?}");
    }
}

#[test]
fn secret_host_per_variant() {
    for variant in variants() {
        let rendered = variant.render();

        let text = rendered.property("TokenSecret", &["SecretString"]);
        let value: Json = serde_json::from_str(text.as_str().unwrap()).unwrap();

        let host = match variant.in_vpc() {
            true => format!("{CLUSTER_ID}.dsql-a1b2.us-east-1.on.aws"),
            false => format!("{CLUSTER_ID}.dsql.us-east-1.on.aws"),
        };
        let user = if variant.admin { "admin" } else { "app_reader" };
        let expected = json!({
            "username": user,
            "password": "pending-first-rotation",
            "host": host,
            "port": 5432,
            "dbname": "postgres",
            "engine": "postgres",
        });
        assert_eq!(value, expected, "{variant:?}");
    }
}

#[test]
fn connect_host_replaces_host() {
    for network in [Network::Public, Network::Vpc] {
        let variant = Variant {
            admin: true,
            network,
            key: Key::AwsManaged,
            roles: 0,
        };
        let mut settings = variant.settings();
        settings.connect_host = Some("db.internal.example.com".into());
        let code = CodeLocation {
            bucket: "artifacts-bucket".into(),
            key: "rotator/0123abcd.zip".into(),
        };
        let rendered =
            Rendered(serde_yaml::from_str(&render_rotation(&settings, &code).unwrap()).unwrap());

        let text = rendered.property("TokenSecret", &["SecretString"]);
        let value: Json = serde_json::from_str(text.as_str().unwrap()).unwrap();

        assert_eq!(
            value["host"],
            json!("db.internal.example.com"),
            "{network:?}"
        );
    }
}

#[test]
fn network_resources_per_variant() {
    for variant in variants() {
        let rendered = variant.render();
        let names = rendered.resource_names();
        let has = |name: &str| names.iter().any(|present| present == name);

        let created = variant.network == Network::Vpc;
        assert_eq!(
            has("FunctionSecurityGroup"),
            variant.in_vpc(),
            "{variant:?}"
        );
        assert_eq!(has("SecretsManagerEndpoint"), created, "{variant:?}");
        assert_eq!(
            has("SecretsManagerEndpointSecurityGroup"),
            created,
            "{variant:?}"
        );
        assert_eq!(has("DsqlEndpoint"), created, "{variant:?}");
        assert_eq!(has("DsqlEndpointSecurityGroup"), created, "{variant:?}");

        let vpc_config = rendered.property("RotatorFunction", &["VpcConfig"]);
        let expected = match variant.in_vpc() {
            true => json!({
                "SubnetIds": SUBNETS,
                "SecurityGroupIds": ["<FunctionSecurityGroup>"],
            }),
            false => Json::Null,
        };
        assert_eq!(vpc_config, expected, "{variant:?}");
    }
}

#[test]
fn function_egress_is_endpoint_ports_only() {
    let variant = Variant {
        admin: true,
        network: Network::VpcWithEndpoints,
        key: Key::AwsManaged,
        roles: 0,
    };
    let rendered = variant.render();

    let egress = rendered.property("FunctionSecurityGroup", &["SecurityGroupEgress"]);

    let expected = json!([
        {
            "Description": "HTTPS to the Secrets Manager interface endpoint",
            "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "10.20.0.0/16",
        },
        {
            "Description": "PostgreSQL to the cluster's DSQL PrivateLink endpoint",
            "IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "CidrIp": "10.20.0.0/16",
        },
    ]);
    assert_eq!(egress, expected);
    assert!(rendered
        .property("FunctionSecurityGroup", &["SecurityGroupIngress"])
        .is_null());
}

#[test]
fn created_endpoints_use_private_dns() {
    let variant = Variant {
        admin: true,
        network: Network::Vpc,
        key: Key::AwsManaged,
        roles: 0,
    };
    let rendered = variant.render();

    let secrets = rendered.property("SecretsManagerEndpoint", &[]);
    let dsql = rendered.property("DsqlEndpoint", &[]);
    let dsql_ingress = rendered.property("DsqlEndpointSecurityGroup", &["SecurityGroupIngress"]);

    assert_eq!(
        secrets,
        json!({
            "VpcEndpointType": "Interface",
            "ServiceName": "com.amazonaws.us-east-1.secretsmanager",
            "VpcId": "vpc-0123456789abcdef0",
            "SubnetIds": SUBNETS,
            "SecurityGroupIds": ["<SecretsManagerEndpointSecurityGroup>"],
            "PrivateDnsEnabled": true,
        })
    );
    assert_eq!(
        dsql,
        json!({
            "VpcEndpointType": "Interface",
            "ServiceName": SERVICE_NAME,
            "VpcId": "vpc-0123456789abcdef0",
            "SubnetIds": SUBNETS,
            "SecurityGroupIds": ["<DsqlEndpointSecurityGroup>"],
            "PrivateDnsEnabled": true,
        })
    );
    assert_eq!(
        dsql_ingress,
        json!([{
            "Description": "PostgreSQL from clients in the VPC",
            "IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "CidrIp": "10.20.0.0/16",
        }])
    );
}

#[test]
fn alerting_targets_topic() {
    let variant = Variant {
        admin: false,
        network: Network::Public,
        key: Key::AwsManaged,
        roles: 0,
    };
    let rendered = variant.render();

    let alarm = rendered.property("RotatorErrorsAlarm", &[]);
    let pattern = rendered.property("RotationFailedRule", &["EventPattern"]);
    let targets = rendered.property("RotationFailedRule", &["Targets"]);
    let topic_policy = rendered.statements("AlertTopicPolicy", "PolicyDocument");

    assert_eq!(alarm["Namespace"], json!("AWS/Lambda"));
    assert_eq!(alarm["MetricName"], json!("Errors"));
    assert_eq!(
        alarm["Dimensions"],
        json!([{"Name": "FunctionName", "Value": "<RotatorFunction>"}])
    );
    assert_eq!(alarm["AlarmActions"], json!(["<AlertTopic>"]));
    assert_eq!(
        pattern,
        json!({
            "source": ["aws.secretsmanager"],
            "detail-type": ["AWS Service Event via CloudTrail"],
            "detail": {
                "eventSource": ["secretsmanager.amazonaws.com"],
                "eventName": ["RotationFailed"],
                "additionalEventData": {"SecretId": ["<TokenSecret>"]},
            },
        })
    );
    assert_eq!(
        targets,
        json!([{"Id": "alert-topic", "Arn": "<AlertTopic>"}])
    );
    assert_eq!(
        json!(topic_policy),
        json!([{
            "Sid": "RotationFailureRulePublishes",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sns:Publish",
            "Resource": "<AlertTopic>",
            "Condition": {"ArnEquals": {"aws:SourceArn": "<RotationFailedRule.Arn>"}},
        }])
    );
    assert!(rendered.resource("AlertEmailSubscription").is_none());
}

#[test]
fn alarm_email_adds_subscription() {
    let variant = Variant {
        admin: true,
        network: Network::Public,
        key: Key::AwsManaged,
        roles: 0,
    };
    let mut settings = variant.settings();
    settings.alarm_email = Some("ops@example.com".into());
    let code = CodeLocation {
        bucket: "artifacts-bucket".into(),
        key: "rotator/0123abcd.zip".into(),
    };
    let rendered =
        Rendered(serde_yaml::from_str(&render_rotation(&settings, &code).unwrap()).unwrap());

    let subscription = rendered.property("AlertEmailSubscription", &[]);

    assert_eq!(
        subscription,
        json!({"TopicArn": "<AlertTopic>", "Protocol": "email", "Endpoint": "ops@example.com"})
    );
}

#[test]
fn encrypted_logs_use_customer_key() {
    let variant = Variant {
        admin: true,
        network: Network::Public,
        key: Key::Create,
        roles: 0,
    };
    let mut settings = variant.settings();
    settings.encrypt_logs = true;
    let code = CodeLocation {
        bucket: "artifacts-bucket".into(),
        key: "rotator/0123abcd.zip".into(),
    };
    let rendered =
        Rendered(serde_yaml::from_str(&render_rotation(&settings, &code).unwrap()).unwrap());

    let log_key = rendered.property("RotatorLogGroup", &["KmsKeyId"]);
    let statements = rendered.statements("SecretKey", "KeyPolicy");

    assert_eq!(log_key, json!("<SecretKey.Arn>"));
    let logs = statements
        .iter()
        .find(|statement| statement["Sid"] == "LogsEncryptRotatorLogGroup")
        .expect("no key policy statement for CloudWatch Logs");
    assert_eq!(
        logs["Principal"],
        json!({"Service": "logs.us-east-1.amazonaws.com"})
    );
    assert_eq!(
        logs["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"],
        json!(arn("logs", "log-group:/aws/lambda/dsql-tokens-rotator"))
    );
    assert_eq!(rendered.skipped_checks("RotatorLogGroup"), ["CKV_AWS_338"]);
}

#[test]
fn checkov_skips_per_variant() {
    for variant in variants() {
        let rendered = variant.render();

        let mut function = vec!["CKV_AWS_116", "CKV_AWS_173", "CKV_AWS_272"];
        if !variant.in_vpc() {
            function.push("CKV_AWS_117");
        }
        function.sort();
        let secret: Vec<&str> = match variant.key {
            Key::AwsManaged => vec!["CKV_AWS_149"],
            _ => vec![],
        };
        let topic: Vec<&str> = match variant.key {
            Key::Create => vec![],
            _ => vec!["CKV_AWS_26"],
        };
        assert_eq!(
            rendered.skipped_checks("RotatorFunction"),
            function,
            "{variant:?}"
        );
        assert_eq!(
            rendered.skipped_checks("TokenSecret"),
            secret,
            "{variant:?}"
        );
        assert_eq!(rendered.skipped_checks("AlertTopic"), topic, "{variant:?}");
        assert_eq!(
            rendered.skipped_checks("RotatorLogGroup"),
            ["CKV_AWS_158", "CKV_AWS_338"],
            "{variant:?}"
        );
    }
}

#[test]
fn reserved_concurrency_is_set() {
    let variant = Variant {
        admin: true,
        network: Network::Public,
        key: Key::AwsManaged,
        roles: 0,
    };
    let rendered = variant.render();

    let concurrency = rendered.property("RotatorFunction", &["ReservedConcurrentExecutions"]);

    assert_eq!(concurrency, json!("2"));
}
