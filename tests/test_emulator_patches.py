"""Each patch in localenv.ministack_patches makes MiniStack behave as AWS does.

Rotations use a small Python rotation function deployed to the emulator. It
records every event it receives in an SSM parameter, fills in the AWSPENDING
version in createSecret and moves AWSCURRENT in finishSecret, as AWS's own
rotation templates do.
"""

import io
import json
import time
import uuid
import zipfile

import pytest
from botocore.exceptions import ClientError

ROTATION_STEPS = ["createSecret", "setSecret", "testSecret", "finishSecret"]
FUNCTION_ROLE = "arn:aws:iam::000000000000:role/rotation-test"
SECRETS_MANAGER_PRINCIPAL = "secretsmanager.amazonaws.com"
INITIAL_VALUE = {"username": "app_user", "generation": 0}
# Long enough for a cold start of the function's Python worker and four steps.
ROTATION_TIMEOUT_SECONDS = 60
# How long a test waits to be sure that nothing was invoked.
QUIET_PERIOD_SECONDS = 2

ROTATION_FUNCTION_SOURCE = '''
import json
import os
import time

import boto3

secrets = boto3.client("secretsmanager")
ssm = boto3.client("ssm")


def record(event):
    name = os.environ["RECORD_PARAMETER"]
    try:
        events = json.loads(ssm.get_parameter(Name=name)["Parameter"]["Value"])
    except ssm.exceptions.ParameterNotFound:
        events = []
    events.append(event)
    ssm.put_parameter(Name=name, Value=json.dumps(events), Type="String", Overwrite=True)


def handler(event, context):
    record(event)
    step, arn, token = event["Step"], event["SecretId"], event["ClientRequestToken"]
    if step == os.environ.get("FAIL_STEP"):
        raise RuntimeError(step + " fails on purpose")
    if step == "createSecret":
        time.sleep(float(os.environ.get("CREATE_DELAY_SECONDS", "0")))
        try:
            secrets.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING")
        except secrets.exceptions.ResourceNotFoundException:
            current = json.loads(secrets.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"])
            current["generation"] += 1
            secrets.put_secret_value(
                SecretId=arn, ClientRequestToken=token,
                SecretString=json.dumps(current), VersionStages=["AWSPENDING"],
            )
    elif step == "finishSecret":
        stages = secrets.describe_secret(SecretId=arn)["VersionIdsToStages"]
        current = next(version for version, labels in stages.items() if "AWSCURRENT" in labels)
        if current != token:
            secrets.update_secret_version_stage(
                SecretId=arn, VersionStage="AWSCURRENT", MoveToVersionId=token, RemoveFromVersionId=current,
            )
'''


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_for(condition, description, timeout=ROTATION_TIMEOUT_SECONDS):
    """Poll `condition` until it returns a true value, and return that value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout} s waiting for {description}")


def error_code(call, **kwargs):
    """Call `call` and return the AWS error code it raised, or None."""
    try:
        call(**kwargs)
    except ClientError as exc:
        return exc.response["Error"]["Code"]
    return None


def function_zip():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("lambda_function.py", ROTATION_FUNCTION_SOURCE)
    return buffer.getvalue()


def stages_of(secrets, secret_id):
    return secrets.describe_secret(SecretId=secret_id)["VersionIdsToStages"]


def version_with(stages, label):
    return next(version for version, labels in stages.items() if label in labels)


class RotationFunction:
    """A rotation function in the emulator and the events it recorded."""

    def __init__(self, emulator, *, fail_step=None, create_delay_seconds=0, allow_secrets_manager=True):
        self.lambda_client = emulator.client("lambda")
        self.ssm = emulator.client("ssm")
        self.name = unique("rotation")
        self.record_parameter = f"/localenv-test/{self.name}/events"
        variables = {"RECORD_PARAMETER": self.record_parameter, "CREATE_DELAY_SECONDS": str(create_delay_seconds)}
        if fail_step:
            variables["FAIL_STEP"] = fail_step
        self.arn = self.lambda_client.create_function(
            FunctionName=self.name,
            Runtime="python3.12",
            Role=FUNCTION_ROLE,
            Handler="lambda_function.handler",
            Code={"ZipFile": function_zip()},
            Timeout=30,
            Environment={"Variables": variables},
        )["FunctionArn"]
        if allow_secrets_manager:
            self.lambda_client.add_permission(
                FunctionName=self.name,
                StatementId="SecretsManagerInvoke",
                Action="lambda:InvokeFunction",
                Principal=SECRETS_MANAGER_PRINCIPAL,
            )

    def events(self):
        try:
            value = self.ssm.get_parameter(Name=self.record_parameter)["Parameter"]["Value"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ParameterNotFound":
                return []
            raise
        return json.loads(value)

    def steps(self):
        return [event["Step"] for event in self.events()]


def rotation_log_line(emulator, secret_arn, version_id, outcome):
    """Return whether the emulator's log has the rotation runner's line for
    `outcome` ("finished" or "failed at step X") of this rotation."""
    return f"Rotation of {secret_arn} (version {version_id}) {outcome}" in emulator.log_tail(200_000)


@pytest.fixture(scope="module")
def secrets(emulator):
    return emulator.client("secretsmanager")


def create_secret(secrets, value=None):
    name = unique("secret")
    arn = secrets.create_secret(Name=name, SecretString=json.dumps(value or INITIAL_VALUE))["ARN"]
    return name, arn


# ---------------------------------------------------------------------------
# RotateSecret: a rotation that succeeds
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def completed_rotation(emulator, secrets):
    """Rotate a secret with a function whose createSecret waits 3 s, observe
    the secret right after RotateSecret returns, then wait for the end."""
    function = RotationFunction(emulator, create_delay_seconds=3)
    name, arn = create_secret(secrets)
    original_version = version_with(stages_of(secrets, name), "AWSCURRENT")
    rules = {"ScheduleExpression": "rate(4 hours)", "Duration": "2h"}

    response = secrets.rotate_secret(SecretId=name, RotationLambdaARN=function.arn, RotationRules=rules)
    version = response["VersionId"]
    stages_during = stages_of(secrets, name)
    pending_by_stage_error = error_code(secrets.get_secret_value, SecretId=name, VersionStage="AWSPENDING")
    pending_by_id_error = error_code(secrets.get_secret_value, SecretId=name, VersionId=version)

    wait_for(lambda: rotation_log_line(emulator, arn, version, "finished"), "the rotation to finish")
    return {
        "function": function,
        "name": name,
        "arn": arn,
        "rules": rules,
        "original_version": original_version,
        "version": version,
        "stages_during": stages_during,
        "pending_by_stage_error": pending_by_stage_error,
        "pending_by_id_error": pending_by_id_error,
        "events": function.events(),
        "description": secrets.describe_secret(SecretId=name),
        "current_value": json.loads(secrets.get_secret_value(SecretId=name)["SecretString"]),
    }


def test_rotate_secret_creates_pending_version(completed_rotation):
    """RotateSecret creates the new version with the AWSPENDING label before it
    returns, and AWSCURRENT stays where it was."""
    stages = completed_rotation["stages_during"]
    assert stages[completed_rotation["version"]] == ["AWSPENDING"]
    assert stages[completed_rotation["original_version"]] == ["AWSCURRENT"]


def test_pending_version_has_no_value(completed_rotation):
    """The new version has no value until createSecret stores one, so
    GetSecretValue raises ResourceNotFoundException, by stage and by id."""
    assert completed_rotation["pending_by_stage_error"] == "ResourceNotFoundException"
    assert completed_rotation["pending_by_id_error"] == "ResourceNotFoundException"


def test_rotation_steps_run_in_order(completed_rotation):
    assert [event["Step"] for event in completed_rotation["events"]] == ROTATION_STEPS


def test_rotation_events_name_secret_and_version(completed_rotation):
    """Every event carries the secret's ARN (even when RotateSecret got its
    name), the new version id as ClientRequestToken, and one RotationToken."""
    events = completed_rotation["events"]
    assert {event["SecretId"] for event in events} == {completed_rotation["arn"]}
    assert {event["ClientRequestToken"] for event in events} == {completed_rotation["version"]}
    rotation_tokens = {event["RotationToken"] for event in events}
    assert len(rotation_tokens) == 1
    assert all(rotation_tokens)


def test_finish_secret_promotes_new_version(completed_rotation):
    """After finishSecret the new version is AWSCURRENT and the old one
    AWSPREVIOUS. The function moved the label, not Secrets Manager."""
    stages = completed_rotation["description"]["VersionIdsToStages"]
    assert "AWSCURRENT" in stages[completed_rotation["version"]]
    assert stages[completed_rotation["original_version"]] == ["AWSPREVIOUS"]
    assert completed_rotation["current_value"]["generation"] == 1


def test_describe_secret_reports_rotation(completed_rotation):
    """DescribeSecret reports rotation as enabled, with the function, the rules
    and LastRotatedDate."""
    description = completed_rotation["description"]
    assert description["RotationEnabled"] is True
    assert description["RotationLambdaARN"] == completed_rotation["function"].arn
    assert description["RotationRules"] == completed_rotation["rules"]
    assert "LastRotatedDate" in description


def test_second_rotation_after_success(completed_rotation, secrets, emulator):
    """AWSPENDING left on the current version does not block a new rotation,
    which moves the label to its own new version."""
    name, arn = completed_rotation["name"], completed_rotation["arn"]
    version = secrets.rotate_secret(SecretId=name)["VersionId"]
    wait_for(lambda: rotation_log_line(emulator, arn, version, "finished"), "the second rotation to finish")

    stages = stages_of(secrets, name)
    assert "AWSCURRENT" in stages[version]
    assert stages[completed_rotation["version"]] == ["AWSPREVIOUS"]
    assert completed_rotation["original_version"] not in stages
    assert json.loads(secrets.get_secret_value(SecretId=name)["SecretString"])["generation"] == 2


# ---------------------------------------------------------------------------
# RotateSecret: a rotation whose setSecret fails
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def failed_rotation(emulator, secrets):
    function = RotationFunction(emulator, fail_step="setSecret")
    name, arn = create_secret(secrets)
    original_version = version_with(stages_of(secrets, name), "AWSCURRENT")
    version = secrets.rotate_secret(SecretId=name, RotationLambdaARN=function.arn)["VersionId"]
    wait_for(lambda: rotation_log_line(emulator, arn, version, "failed at step setSecret"),
             "the rotation to fail at setSecret")
    return {
        "function": function,
        "name": name,
        "original_version": original_version,
        "version": version,
    }


def test_failing_step_stops_rotation(failed_rotation):
    """The first step that fails ends the rotation: no later step runs."""
    assert failed_rotation["function"].steps() == ["createSecret", "setSecret"]


def test_failed_rotation_keeps_current_version(failed_rotation, secrets):
    current = secrets.get_secret_value(SecretId=failed_rotation["name"])
    assert current["VersionId"] == failed_rotation["original_version"]
    assert json.loads(current["SecretString"]) == INITIAL_VALUE


def test_failed_rotation_leaves_pending_version(failed_rotation, secrets):
    """The AWSPENDING version that createSecret filled in stays, as on AWS."""
    pending = secrets.get_secret_value(SecretId=failed_rotation["name"], VersionStage="AWSPENDING")
    assert pending["VersionId"] == failed_rotation["version"]
    assert json.loads(pending["SecretString"])["generation"] == 1


def test_failed_rotation_sets_no_rotation_date(failed_rotation, secrets):
    assert "LastRotatedDate" not in secrets.describe_secret(SecretId=failed_rotation["name"])


def test_unfinished_rotation_rejects_new_one(failed_rotation, secrets):
    """While AWSPENDING is on a version other than AWSCURRENT, RotateSecret with
    a new token raises InvalidRequestException and creates nothing."""
    name = failed_rotation["name"]
    versions_before = set(stages_of(secrets, name))
    with pytest.raises(ClientError) as raised:
        secrets.rotate_secret(SecretId=name, ClientRequestToken=str(uuid.uuid4()))
    error = raised.value.response["Error"]
    assert error["Code"] == "InvalidRequestException"
    assert error["Message"] == "A previous rotation isn't complete. That rotation will be reattempted."
    assert set(stages_of(secrets, name)) == versions_before


def test_repeated_token_is_idempotent(failed_rotation, secrets):
    """RotateSecret with the ClientRequestToken of the pending version returns
    that version and invokes nothing."""
    name, function = failed_rotation["name"], failed_rotation["function"]
    events_before = function.events()
    response = secrets.rotate_secret(SecretId=name, ClientRequestToken=failed_rotation["version"])
    time.sleep(QUIET_PERIOD_SECONDS)
    assert response["VersionId"] == failed_rotation["version"]
    assert stages_of(secrets, name)[failed_rotation["version"]] == ["AWSPENDING"]
    assert function.events() == events_before


# ---------------------------------------------------------------------------
# RotateSecret: validation and configuration only
# ---------------------------------------------------------------------------


def test_rotate_secret_needs_function(secrets):
    """A secret with no rotation function cannot be rotated."""
    name, _arn = create_secret(secrets)
    with pytest.raises(ClientError) as raised:
        secrets.rotate_secret(SecretId=name)
    assert raised.value.response["Error"]["Code"] == "InvalidRequestException"
    assert list(stages_of(secrets, name).values()) == [["AWSCURRENT"]]


def test_rotate_secret_needs_invoke_permission(emulator, secrets):
    """Without a function policy that lets secretsmanager.amazonaws.com invoke
    the function, RotateSecret raises AccessDeniedException and changes nothing."""
    function = RotationFunction(emulator, allow_secrets_manager=False)
    name, _arn = create_secret(secrets)
    with pytest.raises(ClientError) as raised:
        secrets.rotate_secret(SecretId=name, RotationLambdaARN=function.arn)
    error = raised.value.response["Error"]
    assert error["Code"] == "AccessDeniedException"
    assert SECRETS_MANAGER_PRINCIPAL in error["Message"]
    assert list(stages_of(secrets, name).values()) == [["AWSCURRENT"]]
    assert secrets.describe_secret(SecretId=name)["RotationEnabled"] is False


def test_permission_for_other_secret_denied(emulator, secrets):
    """A permission whose SourceArn names another secret does not let Secrets
    Manager invoke the function for this one."""
    function = RotationFunction(emulator, allow_secrets_manager=False)
    function.lambda_client.add_permission(
        FunctionName=function.name,
        StatementId="OtherSecretOnly",
        Action="lambda:InvokeFunction",
        Principal=SECRETS_MANAGER_PRINCIPAL,
        SourceArn="arn:aws:secretsmanager:us-east-1:000000000000:secret:other-??????",
    )
    name, _arn = create_secret(secrets)
    assert error_code(secrets.rotate_secret, SecretId=name, RotationLambdaARN=function.arn) == "AccessDeniedException"


@pytest.mark.parametrize("rules", [
    {"ScheduleExpression": "rate(2 hours)"},
    {"ScheduleExpression": "every day"},
    {"ScheduleExpression": "rate(1001 days)"},
    {"ScheduleExpression": "cron(0 12 * * ?)"},
    {"AutomaticallyAfterDays": 7, "Duration": "0h"},
    {"AutomaticallyAfterDays": 7, "ScheduleExpression": "rate(7 days)"},
    {"ScheduleExpression": "rate(4 hours)", "Duration": "5h"},
    {"ScheduleExpression": "rate(1 days)", "Duration": "25h"},
])
def test_rotate_secret_rejects_invalid_rules(emulator, secrets, rules):
    """Rules outside Secrets Manager's limits raise InvalidParameterException.
    botocore checks only AutomaticallyAfterDays' range itself, so the cases
    here reach the server."""
    function = RotationFunction(emulator)
    name, _arn = create_secret(secrets)
    code = error_code(secrets.rotate_secret, SecretId=name, RotationLambdaARN=function.arn, RotationRules=rules)
    assert code == "InvalidParameterException"


def test_rotate_later_only_configures(emulator, secrets):
    """RotateImmediately=false stores the function and rules and enables
    rotation, but creates no version and invokes nothing."""
    function = RotationFunction(emulator)
    name, _arn = create_secret(secrets)
    versions_before = stages_of(secrets, name)
    rules = {"AutomaticallyAfterDays": 30}
    secrets.rotate_secret(SecretId=name, RotationLambdaARN=function.arn, RotationRules=rules, RotateImmediately=False)
    time.sleep(QUIET_PERIOD_SECONDS)

    description = secrets.describe_secret(SecretId=name)
    assert description["VersionIdsToStages"] == versions_before
    assert description["RotationEnabled"] is True
    assert description["RotationRules"] == rules
    assert description["RotationLambdaARN"] == function.arn
    assert function.events() == []


# ---------------------------------------------------------------------------
# PutSecretValue and GetSecretValue
# ---------------------------------------------------------------------------


def test_put_value_rejects_changed_version(secrets):
    """A version cannot be changed: the same ClientRequestToken with another
    value raises ResourceExistsException."""
    name, _arn = create_secret(secrets)
    token = str(uuid.uuid4())
    secrets.put_secret_value(SecretId=name, ClientRequestToken=token, SecretString="first")
    code = error_code(secrets.put_secret_value, SecretId=name, ClientRequestToken=token, SecretString="second")
    assert code == "ResourceExistsException"
    assert secrets.get_secret_value(SecretId=name, VersionId=token)["SecretString"] == "first"


def test_put_value_repeat_is_idempotent(secrets):
    """The same ClientRequestToken with the same value succeeds and changes
    nothing."""
    name, _arn = create_secret(secrets)
    token = str(uuid.uuid4())
    secrets.put_secret_value(SecretId=name, ClientRequestToken=token, SecretString="value")
    stages_before = stages_of(secrets, name)
    response = secrets.put_secret_value(SecretId=name, ClientRequestToken=token, SecretString="value")
    assert response["VersionId"] == token
    assert stages_of(secrets, name) == stages_before


def test_put_value_moves_staging_label(secrets):
    """A staging label is on one version at most: putting a version with
    AWSPENDING takes the label from the version that had it."""
    name, _arn = create_secret(secrets)
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    secrets.put_secret_value(SecretId=name, ClientRequestToken=first, SecretString="1", VersionStages=["AWSPENDING"])
    secrets.put_secret_value(SecretId=name, ClientRequestToken=second, SecretString="2", VersionStages=["AWSPENDING"])
    stages = stages_of(secrets, name)
    assert stages[second] == ["AWSPENDING"]
    assert first not in stages


def test_get_value_of_current_version(secrets):
    """A version with a value still reads as before the patches."""
    name, _arn = create_secret(secrets)
    assert json.loads(secrets.get_secret_value(SecretId=name)["SecretString"]) == INITIAL_VALUE


# ---------------------------------------------------------------------------
# PutResourcePolicy
# ---------------------------------------------------------------------------

PUBLIC_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}],
}
DENY_DELETE_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "secretsmanager:DeleteSecret", "Resource": "*"}],
}


def test_block_public_policy_rejects_public_policy(secrets):
    name, _arn = create_secret(secrets)
    code = error_code(secrets.put_resource_policy, SecretId=name,
                      ResourcePolicy=json.dumps(PUBLIC_POLICY), BlockPublicPolicy=True)
    assert code == "PublicPolicyException"
    assert "ResourcePolicy" not in secrets.get_resource_policy(SecretId=name)


def test_public_policy_allowed_without_block(secrets):
    name, _arn = create_secret(secrets)
    secrets.put_resource_policy(SecretId=name, ResourcePolicy=json.dumps(PUBLIC_POLICY), BlockPublicPolicy=False)
    assert json.loads(secrets.get_resource_policy(SecretId=name)["ResourcePolicy"]) == PUBLIC_POLICY


def test_block_public_policy_accepts_deny_policy(secrets):
    name, _arn = create_secret(secrets)
    secrets.put_resource_policy(SecretId=name, ResourcePolicy=json.dumps(DENY_DELETE_POLICY), BlockPublicPolicy=True)
    assert json.loads(secrets.get_resource_policy(SecretId=name)["ResourcePolicy"]) == DENY_DELETE_POLICY


# ---------------------------------------------------------------------------
# CloudFormation
# ---------------------------------------------------------------------------


def rotation_template(secret_name, *, rotate_immediately=True, schedule=True, policy=DENY_DELETE_POLICY,
                      rules=None, description="rotated by the tests"):
    """Return a template with a secret, its resource policy, a permission for
    Secrets Manager to invoke the function given as parameter for this secret
    only, and a rotation schedule that depends on that permission."""
    resources = {
        "Secret": {
            "Type": "AWS::SecretsManager::Secret",
            "Properties": {"Name": secret_name, "Description": description,
                           "SecretString": json.dumps(INITIAL_VALUE)},
        },
    }
    outputs = {"SecretRef": {"Value": {"Ref": "Secret"}}}
    if policy is not None:
        resources["SecretPolicy"] = {
            "Type": "AWS::SecretsManager::ResourcePolicy",
            "Properties": {"SecretId": {"Ref": "Secret"}, "BlockPublicPolicy": True, "ResourcePolicy": policy},
        }
        outputs["PolicyRef"] = {"Value": {"Ref": "SecretPolicy"}}
    if schedule:
        resources["InvokePermission"] = {
            "Type": "AWS::Lambda::Permission",
            "Properties": {"FunctionName": {"Ref": "FunctionArn"}, "Action": "lambda:InvokeFunction",
                           "Principal": SECRETS_MANAGER_PRINCIPAL,
                           "SourceAccount": {"Ref": "AWS::AccountId"}, "SourceArn": {"Ref": "Secret"}},
        }
        resources["Schedule"] = {
            "Type": "AWS::SecretsManager::RotationSchedule",
            "DependsOn": "InvokePermission",
            "Properties": {
                "SecretId": {"Ref": "Secret"},
                "RotationLambdaARN": {"Ref": "FunctionArn"},
                "RotationRules": rules or {"ScheduleExpression": "rate(4 hours)", "Duration": "2h"},
                "RotateImmediatelyOnUpdate": rotate_immediately,
            },
        }
        outputs["ScheduleRef"] = {"Value": {"Ref": "Schedule"}}
    return json.dumps({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Parameters": {"FunctionArn": {"Type": "String"}},
        "Resources": resources,
        "Outputs": outputs,
    })


class Stack:
    """A CloudFormation stack in the emulator, driven to a settled status."""

    def __init__(self, emulator, function_arn):
        self.cloudformation = emulator.client("cloudformation")
        self.name = unique("rotation-stack")
        self.parameters = [{"ParameterKey": "FunctionArn", "ParameterValue": function_arn}]

    def status(self):
        return self.cloudformation.describe_stacks(StackName=self.name)["Stacks"][0]["StackStatus"]

    def wait_until_settled(self):
        return wait_for(lambda: None if self.status().endswith("_IN_PROGRESS") else self.status(),
                        f"stack {self.name} to settle")

    def create(self, template):
        self.cloudformation.create_stack(StackName=self.name, TemplateBody=template, Parameters=self.parameters)
        return self.wait_until_settled()

    def update(self, template):
        self.cloudformation.update_stack(StackName=self.name, TemplateBody=template, Parameters=self.parameters)
        return self.wait_until_settled()

    def delete(self):
        self.cloudformation.delete_stack(StackName=self.name)
        return wait_for(lambda: self._deleted(), f"stack {self.name} to be deleted")

    def _deleted(self):
        try:
            return self.status() == "DELETE_COMPLETE"
        except ClientError as exc:
            return "does not exist" in str(exc)

    def outputs(self):
        stack = self.cloudformation.describe_stacks(StackName=self.name)["Stacks"][0]
        return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}

    def failure_reasons(self):
        events = self.cloudformation.describe_stack_events(StackName=self.name)["StackEvents"]
        return [event.get("ResourceStatusReason", "") for event in events if event["ResourceStatus"].endswith("FAILED")]


@pytest.fixture(scope="module")
def stack_function(emulator):
    """A rotation function without a permission of its own: each stack grants
    Secrets Manager the right to invoke it."""
    return RotationFunction(emulator, allow_secrets_manager=False)


@pytest.fixture(scope="module")
def rotated_stack(emulator, secrets, stack_function):
    """A stack whose RotationSchedule rotates at once (the default), after the
    rotation finished."""
    stack = Stack(emulator, stack_function.arn)
    secret_name = unique("stack-secret")
    status = stack.create(rotation_template(secret_name))
    assert status == "CREATE_COMPLETE", stack.failure_reasons()
    arn = secrets.describe_secret(SecretId=secret_name)["ARN"]
    wait_for(lambda: "LastRotatedDate" in secrets.describe_secret(SecretId=secret_name),
             "the stack's rotation to finish")
    return {"stack": stack, "secret_name": secret_name, "arn": arn}


def test_secret_ref_returns_arn(rotated_stack):
    """Ref of an AWS::SecretsManager::Secret returns its ARN, not its name."""
    assert rotated_stack["stack"].outputs()["SecretRef"] == rotated_stack["arn"]


def test_policy_and_schedule_ref_return_secret_arn(rotated_stack):
    outputs = rotated_stack["stack"].outputs()
    assert outputs["PolicyRef"] == rotated_stack["arn"]
    assert outputs["ScheduleRef"] == rotated_stack["arn"]


def test_resource_policy_attached(rotated_stack, secrets):
    policy = secrets.get_resource_policy(SecretId=rotated_stack["arn"])["ResourcePolicy"]
    assert json.loads(policy) == DENY_DELETE_POLICY


def test_rotation_schedule_rotates_at_once(rotated_stack, secrets, stack_function):
    """RotateImmediatelyOnUpdate defaults to true, so creating the schedule runs
    a rotation through the function."""
    description = secrets.describe_secret(SecretId=rotated_stack["arn"])
    assert description["RotationEnabled"] is True
    assert description["RotationRules"] == {"ScheduleExpression": "rate(4 hours)", "Duration": "2h"}
    assert description["RotationLambdaARN"] == stack_function.arn
    value = json.loads(secrets.get_secret_value(SecretId=rotated_stack["arn"])["SecretString"])
    assert value["generation"] == 1


def test_secret_drift_in_sync(rotated_stack):
    """Drift detection finds the secret under its ARN physical id."""
    stack = rotated_stack["stack"]
    drift = stack.cloudformation.detect_stack_resource_drift(StackName=stack.name, LogicalResourceId="Secret")
    assert drift["StackResourceDrift"]["StackResourceDriftStatus"] == "IN_SYNC"


def test_schedule_without_immediate_rotation(emulator, secrets, stack_function):
    """RotateImmediatelyOnUpdate false only enables rotation and stores the
    rules: the secret keeps its single version."""
    stack = Stack(emulator, stack_function.arn)
    secret_name = unique("stack-secret")
    rules = {"AutomaticallyAfterDays": 7}
    status = stack.create(rotation_template(secret_name, rotate_immediately=False, rules=rules))
    assert status == "CREATE_COMPLETE", stack.failure_reasons()

    description = secrets.describe_secret(SecretId=secret_name)
    assert description["RotationEnabled"] is True
    assert description["RotationRules"] == rules
    assert list(description["VersionIdsToStages"].values()) == [["AWSCURRENT"]]


def test_removed_schedule_disables_rotation(emulator, secrets, stack_function):
    """Removing the RotationSchedule turns rotation off, as CancelRotateSecret
    does, and removing the ResourcePolicy deletes the policy."""
    stack = Stack(emulator, stack_function.arn)
    secret_name = unique("stack-secret")
    assert stack.create(rotation_template(secret_name, rotate_immediately=False)) == "CREATE_COMPLETE"
    status = stack.update(rotation_template(secret_name, schedule=False, policy=None))
    assert status == "UPDATE_COMPLETE", stack.failure_reasons()

    assert secrets.describe_secret(SecretId=secret_name)["RotationEnabled"] is False
    assert "ResourcePolicy" not in secrets.get_resource_policy(SecretId=secret_name)


def test_secret_update_keeps_arn(emulator, secrets, stack_function):
    """Updating the secret in place keeps its ARN, which is also its physical id."""
    stack = Stack(emulator, stack_function.arn)
    secret_name = unique("stack-secret")
    assert stack.create(rotation_template(secret_name, schedule=False)) == "CREATE_COMPLETE"
    arn = stack.outputs()["SecretRef"]
    status = stack.update(rotation_template(secret_name, schedule=False, description="changed"))
    assert status == "UPDATE_COMPLETE", stack.failure_reasons()

    assert stack.outputs()["SecretRef"] == arn
    assert secrets.describe_secret(SecretId=arn)["Description"] == "changed"


def test_stack_delete_removes_secret(emulator, secrets, stack_function):
    stack = Stack(emulator, stack_function.arn)
    secret_name = unique("stack-secret")
    assert stack.create(rotation_template(secret_name, rotate_immediately=False)) == "CREATE_COMPLETE"
    stack.delete()
    assert error_code(secrets.describe_secret, SecretId=secret_name) == "ResourceNotFoundException"


def test_public_policy_fails_stack(emulator, secrets, stack_function):
    """BlockPublicPolicy true with a policy open to everyone fails the
    ResourcePolicy resource, and so the stack."""
    stack = Stack(emulator, stack_function.arn)
    status = stack.create(rotation_template(unique("stack-secret"), schedule=False, policy=PUBLIC_POLICY))
    assert status in ("CREATE_FAILED", "ROLLBACK_COMPLETE")
    assert any("PublicPolicyException" in reason for reason in stack.failure_reasons())
