"""The rotation template as written deploys without the deployer.

CloudFormation receives templates/rotation.yaml unrendered, with its
Conditions, and parameters as a CLI user would pass them, here for the
largest variant: a VPC with new endpoints, a new key, log encryption, two
application roles and an alarm e-mail. The secret's host is a closed port on
127.0.0.1, so the first rotation, which the emulator runs with the real
rotator, fails locally instead of resolving a DSQL hostname.
"""

import io
import json
import os
import time
import zipfile
from pathlib import Path

import pytest

from deployer_cli import REPO_ROOT

STACK = "standalone-template"
ROTATOR = Path(os.environ.get("CARGO_TARGET_DIR", REPO_ROOT / "target")) / "lambda" / "rotator"
ROLES = ["arn:aws:iam::000000000000:role/app/a", "arn:aws:iam::000000000000:role/app/b"]


def rotator_zip():
    """Zip the lambda-profile rotator as `bootstrap` with mode 0755."""
    assert ROTATOR.exists(), f"{ROTATOR} is missing; run cargo build --package rotator --profile lambda"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        entry = zipfile.ZipInfo("bootstrap", date_time=(1980, 1, 1, 0, 0, 0))
        entry.external_attr = 0o100755 << 16
        archive.writestr(entry, ROTATOR.read_bytes())
    return buffer.getvalue()


def wait_for_stack(cloudformation, status_prefix, timeout=180):
    """Poll the stack until its status leaves *_IN_PROGRESS and return the status."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stacks = cloudformation.describe_stacks(StackName=STACK)["Stacks"]
        status = stacks[0]["StackStatus"]
        if not status.endswith("_IN_PROGRESS"):
            return status
        time.sleep(1)
    pytest.fail(f"stack {STACK} still {status_prefix} after {timeout} s")


@pytest.fixture(scope="module")
def stack(emulator):
    ec2 = emulator.client("ec2")
    vpc_id = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.30.1.0/24")["Subnet"]["SubnetId"]
    s3 = emulator.client("s3")
    s3.create_bucket(Bucket="standalone-code")
    s3.put_object(Bucket="standalone-code", Key="rotator.zip", Body=rotator_zip())
    parameters = {
        "ClusterEndpoint": "abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws",
        "ClusterId": "abcdefghijklmnopqrstuvwxyz",
        "DatabasePort": "9",
        "SecretName": f"{STACK}/dsql-auth-token",
        "CodeBucket": "standalone-code",
        "CodeKey": "rotator.zip",
        "ConnectHost": "127.0.0.1",
        "ApplicationRoleArns": ",".join(ROLES),
        "KmsKey": "create",
        "EncryptLogs": "true",
        "VpcId": vpc_id,
        "VpcCidr": "10.30.0.0/16",
        "SubnetIds": subnet_id,
        "DsqlServiceName": "com.amazonaws.us-east-1.dsql-a1b2",
        "AlarmEmail": "ops@example.com",
    }
    cloudformation = emulator.client("cloudformation")

    cloudformation.create_stack(
        StackName=STACK,
        TemplateBody=(REPO_ROOT / "templates" / "rotation.yaml").read_text(),
        Parameters=[{"ParameterKey": key, "ParameterValue": value} for key, value in parameters.items()],
        Capabilities=["CAPABILITY_IAM"],
    )
    status = wait_for_stack(cloudformation, "creating")
    yield cloudformation, status
    cloudformation.delete_stack(StackName=STACK)


def test_raw_template_creates(stack):
    _, status = stack

    assert status == "CREATE_COMPLETE"


def test_raw_template_creates_conditional_resources(stack):
    cloudformation, _ = stack

    resources = cloudformation.list_stack_resources(StackName=STACK)["StackResourceSummaries"]

    names = {resource["LogicalResourceId"] for resource in resources}
    assert {"SecretKey", "FunctionSecurityGroup", "SecretsManagerEndpoint", "DsqlEndpoint",
            "AlertEmailSubscription", "RotationFailedRule", "RotatorErrorsAlarm"} <= names


def test_raw_template_lists_readers(emulator, stack):
    cloudformation, _ = stack
    outputs = {output["OutputKey"]: output["OutputValue"]
               for output in cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]["Outputs"]}

    text = emulator.client("secretsmanager").get_resource_policy(SecretId=outputs["SecretArn"])["ResourcePolicy"]

    statements = {statement["Sid"]: statement for statement in json.loads(text)["Statement"]}
    readers = statements["DenyValueReadToOtherPrincipals"]["Condition"]["StringNotEquals"]["aws:PrincipalArn"]
    assert readers == [outputs["RoleArn"], *ROLES]
    assert statements["AllowApplicationsToReadValue"]["Principal"]["AWS"] == ROLES
