"""End to end: each template variant deploys with `up` and goes with `down`.

All 54 combinations are deployed, each in a few seconds. They combine the
database role (admin or not), the network (no VPC, a VPC with new endpoints,
a VPC with existing ones), the key (none, new, given) and 0, 1 or 3
application roles.

Emulator gaps that limit what these tests can see: MiniStack 1.5.33 drops
the function's VpcConfig and does not report the endpoints' private DNS
setting, so those are checked only in the rendered template (the Rust unit
tests). The secret's host is the DSQL stand-in (connect_host), because the
PrivateLink name would not resolve here and the first rotation runs for real.
"""

import json

import pytest
from botocore.exceptions import ClientError

from deployer_cli import build_deployer, deployer_env, local_settings, run_deployer, run_json
from localenv.emulator import Emulator
from localenv.standin import DsqlStandin
from template_variants import VPC_CIDR, all_variants, variant_flags

ACCOUNT = "000000000000"
VARIANTS = list(all_variants())


@pytest.fixture(scope="module")
def environment(tmp_path_factory):
    build_deployer()
    with DsqlStandin() as standin:
        workdir = tmp_path_factory.mktemp("variants-emulator")
        with Emulator(workdir, extra_env={"SSL_CERT_FILE": str(standin.ca_path)}) as emulator:
            yield emulator, standin


@pytest.fixture(scope="module")
def network(environment):
    """A VPC with two subnets and two existing interface endpoints in the emulator."""
    emulator, _ = environment
    ec2 = emulator.client("ec2")
    vpc_id = ec2.create_vpc(CidrBlock=VPC_CIDR)["Vpc"]["VpcId"]
    subnet_ids = [
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=cidr)["Subnet"]["SubnetId"]
        for cidr in ("10.20.1.0/24", "10.20.2.0/24")
    ]
    endpoint_ids = [
        ec2.create_vpc_endpoint(VpcId=vpc_id, ServiceName=service, VpcEndpointType="Interface",
                                SubnetIds=subnet_ids)["VpcEndpoint"]["VpcEndpointId"]
        for service in ("com.amazonaws.us-east-1.secretsmanager", "com.amazonaws.us-east-1.dsql-a1b2")
    ]
    return vpc_id, subnet_ids, endpoint_ids


@pytest.fixture(scope="module")
def given_key_arn(environment):
    emulator, _ = environment
    return emulator.client("kms").create_key(Description="existing key for the given-key variants")["KeyMetadata"]["Arn"]


def statements_by_sid(document):
    if isinstance(document, str):
        document = json.loads(document)
    return {statement["Sid"]: statement for statement in document["Statement"]}


def role_policy(iam, role_arn):
    role_name = role_arn.rsplit("/", 1)[1]
    [policy_name] = iam.list_role_policies(RoleName=role_name)["PolicyNames"]
    return statements_by_sid(iam.get_role_policy(RoleName=role_name, PolicyName=policy_name)["PolicyDocument"])


@pytest.mark.parametrize(("name", "admin", "network_kind", "key", "roles"), VARIANTS, ids=[v[0] for v in VARIANTS])
def test_variant_deploys_and_goes(environment, network, given_key_arn, name, admin, network_kind, key, roles):
    emulator, standin = environment
    vpc_id, subnet_ids, endpoint_ids = network
    stack = f"v-{name}"[:56]
    flags = [
        *local_settings(stack, standin, connect_host=standin.host),
        *variant_flags(admin, network_kind, key, roles, account=ACCOUNT, given_key_arn=given_key_arn,
                       vpc_id=vpc_id, subnet_ids=",".join(subnet_ids), endpoint_ids=endpoint_ids),
    ]
    env = deployer_env(emulator.endpoint_url)

    deployed = run_json(["up", *flags], env=env)
    try:
        check_deployed(emulator, deployed, admin, network_kind, key, roles, given_key_arn, vpc_id)
    finally:
        removed = run_json(["down", *flags], env=env)

    assert removed["stack_deleted"] is True
    check_removed(emulator, stack, deployed, vpc_id)


def check_deployed(emulator, deployed, admin, network_kind, key, roles, given_key_arn, vpc_id):
    outputs = deployed["outputs"]
    secrets = emulator.client("secretsmanager")
    role_arns = [f"arn:aws:iam::{ACCOUNT}:role/app/reader-{number}" for number in range(1, roles + 1)]

    assert deployed["outcome"] == "created"
    assert ("KeyArn" in outputs) == (key == "create")

    description = secrets.describe_secret(SecretId=outputs["SecretArn"])
    expected_key = {"aws-managed": None, "create": outputs.get("KeyArn"), "given": given_key_arn}[key]
    # The emulator may store the key id or the key ARN that the template passed.
    stored_key = description.get("KmsKeyId")
    assert stored_key in (expected_key, expected_key and expected_key.rsplit("/", 1)[1])
    assert description["RotationEnabled"] is True

    policy = statements_by_sid(secrets.get_resource_policy(SecretId=outputs["SecretArn"])["ResourcePolicy"])
    readers = policy["DenyValueReadToOtherPrincipals"]["Condition"]["StringNotEquals"]["aws:PrincipalArn"]
    if roles:
        assert readers == [outputs["RoleArn"], *role_arns]
        assert policy["AllowApplicationsToReadValue"]["Principal"]["AWS"] == role_arns
    else:
        assert readers == outputs["RoleArn"]
        assert "AllowApplicationsToReadValue" not in policy

    statements = role_policy(emulator.client("iam"), outputs["RoleArn"])
    expected_sids = {"RotateThisSecret", "SignTokensForThisCluster", "WriteOwnLogs"}
    if key != "aws-managed":
        expected_sids.add("UseKeyThroughSecretsManager")
    if network_kind != "public":
        expected_sids |= {"CreateNetworkInterfacesInFunctionVpc", "ManageFunctionNetworkInterfaces",
                          "DescribeNetworkInterfaces"}
    assert set(statements) == expected_sids
    connect = statements["SignTokensForThisCluster"]["Action"]
    assert connect == ("dsql:DbConnectAdmin" if admin else "dsql:DbConnect")

    if key == "create":
        key_policy = emulator.client("kms").get_key_policy(KeyId=outputs["KeyArn"], PolicyName="default")["Policy"]
        principals = statements_by_sid(key_policy)["RotatorUsesKeyThroughSecretsManager"]["Principal"]["AWS"]
        assert principals == outputs["RoleArn"]

    ec2 = emulator.client("ec2")
    groups = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["SecurityGroups"]
    function_groups = [group for group in groups if group["Description"].startswith("Rotation function")]
    endpoints = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["VpcEndpoints"]
    if network_kind == "public":
        assert function_groups == []
    else:
        [group] = function_groups
        ports = sorted(rule["FromPort"] for rule in group["IpPermissionsEgress"])
        assert ports == [443, 5432]
        assert all(rule["IpRanges"] == [{"CidrIp": VPC_CIDR, "Description": rule["IpRanges"][0].get("Description")}]
                   for rule in group["IpPermissionsEgress"])
    created_endpoints = 2 if network_kind == "vpc" else 0
    assert len(endpoints) == 2 + created_endpoints

    topic = outputs["AlertTopicArn"]
    alarms = emulator.client("cloudwatch").describe_alarms()["MetricAlarms"]
    [alarm] = [alarm for alarm in alarms if alarm.get("AlarmActions") == [topic]]
    assert alarm["MetricName"] == "Errors"
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": outputs["FunctionName"]}]


def check_removed(emulator, stack, deployed, vpc_id):
    outputs = deployed["outputs"]

    with pytest.raises(ClientError):
        emulator.client("cloudformation").describe_stacks(StackName=stack)
    with pytest.raises(ClientError):
        emulator.client("lambda").get_function(FunctionName=outputs["FunctionName"])
    with pytest.raises(ClientError):
        emulator.client("secretsmanager").describe_secret(SecretId=outputs["SecretArn"])
    with pytest.raises(ClientError):
        emulator.client("sns").get_topic_attributes(TopicArn=outputs["AlertTopicArn"])
    ec2 = emulator.client("ec2")
    groups = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["SecurityGroups"]
    assert [group for group in groups if group["GroupName"].startswith(stack)] == []
    endpoints = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["VpcEndpoints"]
    assert len(endpoints) == 2, "only the two endpoints that existed before remain"
    if "KeyArn" in outputs:
        # The key is retained on purpose (DeletionPolicy Retain), so that a
        # secret restored within its recovery window can still be decrypted.
        state = emulator.client("kms").describe_key(KeyId=outputs["KeyArn"])["KeyMetadata"]["KeyState"]
        assert state == "Enabled"
