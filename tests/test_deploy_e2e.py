"""End to end: `deployer up` and `down` against the patched emulator.

The emulator runs the uploaded rotator zip as a real process, and the DSQL
stand-in (PostgreSQL checking tokens) is the cluster endpoint, so the first
rotation that the schedule starts runs for real. These tests check what was
deployed; the rotation itself has its own tests.
"""

import base64
import contextlib
import hashlib
import io
import json
import threading
import zipfile
from http.server import ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError

from deployer_cli import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    build_deployer,
    deployer_env,
    local_settings,
    run_deployer,
    run_json,
)
from bench.proxy import CallLog, handler_class
from localenv.emulator import Emulator
from localenv.standin import DsqlStandin

STACK = "e2e-deploy"
FUNCTION = f"{STACK}-rotator"
SECRET_NAME = f"{STACK}/dsql-auth-token"
LOG_GROUP = f"/aws/lambda/{FUNCTION}"


@pytest.fixture(scope="module")
def environment(tmp_path_factory):
    """The stand-in, then an emulator whose functions trust the stand-in's CA."""
    build_deployer()
    with DsqlStandin() as standin:
        workdir = tmp_path_factory.mktemp("deploy-emulator")
        with Emulator(workdir, extra_env={"SSL_CERT_FILE": str(standin.ca_path)}) as emulator:
            yield emulator, standin


@pytest.fixture(scope="module")
def deployed(environment):
    """Runs `up` once and returns its JSON result; later tests inspect it."""
    emulator, standin = environment
    env = deployer_env(emulator.endpoint_url)

    result = run_json(["up", *local_settings(STACK, standin)], env=env)

    yield result
    run_deployer(["down", *local_settings(STACK, standin)], env=env)


def test_up_reports_created_stack(deployed):
    assert deployed["stack"] == STACK
    assert deployed["outcome"] == "created"
    assert deployed["artifact_uploaded"] is True
    assert set(deployed["outputs"]) == {"SecretArn", "FunctionName", "RoleArn", "LogGroupName", "AlertTopicArn"}
    assert deployed["outputs"]["FunctionName"] == FUNCTION


def test_secret_holds_connection_fields(environment, deployed):
    emulator, standin = environment
    secrets = emulator.client("secretsmanager")

    value = json.loads(secrets.get_secret_value(SecretId=deployed["outputs"]["SecretArn"])["SecretString"])

    assert value["username"] == "admin"
    assert value["host"] == standin.host
    assert value["port"] == standin.port
    assert value["dbname"] == "postgres"
    assert value["engine"] == "postgres"
    assert isinstance(value.get("password"), str), "the secret has no password field"


def test_secret_arn_output_is_arn(deployed):
    arn = deployed["outputs"]["SecretArn"]

    assert arn.startswith("arn:aws:secretsmanager:us-east-1:")
    assert f":secret:{SECRET_NAME}-" in arn


def test_resource_policy_denies_others(environment, deployed):
    emulator, _ = environment
    secrets = emulator.client("secretsmanager")

    policy = json.loads(secrets.get_resource_policy(SecretId=deployed["outputs"]["SecretArn"])["ResourcePolicy"])
    statements = {statement["Sid"]: statement for statement in policy["Statement"]}

    assert statements["DenyDeleteWhilePolicyAttached"]["Effect"] == "Deny"
    assert statements["DenyDeleteWhilePolicyAttached"]["Action"] == "secretsmanager:DeleteSecret"
    assert set(statements) == {
        "DenyDeleteWhilePolicyAttached",
        "DenyValueReadToOtherPrincipals",
        "DenyValueWriteToOtherPrincipals",
    }
    read = statements["DenyValueReadToOtherPrincipals"]
    assert read["Effect"] == "Deny"
    assert read["Action"] == "secretsmanager:GetSecretValue"
    assert read["Condition"]["StringNotEquals"]["aws:PrincipalArn"] == deployed["outputs"]["RoleArn"]
    assert read["Condition"]["Bool"]["aws:PrincipalIsAWSService"] == "false"
    write = statements["DenyValueWriteToOtherPrincipals"]
    assert write["Effect"] == "Deny"
    assert sorted(write["Action"]) == [
        "secretsmanager:PutSecretValue",
        "secretsmanager:UpdateSecretVersionStage",
    ]
    assert write["Condition"]["StringNotEquals"]["aws:PrincipalArn"] == deployed["outputs"]["RoleArn"]
    assert write["Condition"]["Bool"]["aws:PrincipalIsAWSService"] == "false"


def test_rotation_enabled_with_schedule(environment, deployed):
    emulator, _ = environment
    secrets = emulator.client("secretsmanager")
    function_arn = emulator.client("lambda").get_function(FunctionName=FUNCTION)["Configuration"]["FunctionArn"]

    description = secrets.describe_secret(SecretId=deployed["outputs"]["SecretArn"])

    assert description["RotationEnabled"] is True
    assert description["RotationLambdaARN"] == function_arn
    assert description["RotationRules"]["ScheduleExpression"] == "rate(4 hours)"
    assert description["RotationRules"]["Duration"] == "1h"


def test_role_trusts_only_lambda(environment, deployed):
    emulator, _ = environment
    iam = emulator.client("iam")
    role_name = deployed["outputs"]["RoleArn"].rsplit("/", 1)[1]

    document = iam.get_role(RoleName=role_name)["Role"]["AssumeRolePolicyDocument"]
    if isinstance(document, str):
        document = json.loads(document)

    [statement] = document["Statement"]
    assert statement["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert statement["Action"] == "sts:AssumeRole"
    assert "aws:SourceAccount" in statement["Condition"]["StringEquals"]


def test_role_policy_grants_only_rotation(environment, deployed):
    emulator, _ = environment
    iam = emulator.client("iam")
    role_name = deployed["outputs"]["RoleArn"].rsplit("/", 1)[1]

    [policy_name] = iam.list_role_policies(RoleName=role_name)["PolicyNames"]
    document = iam.get_role_policy(RoleName=role_name, PolicyName=policy_name)["PolicyDocument"]
    if isinstance(document, str):
        document = json.loads(document)
    statements = {statement["Sid"]: statement for statement in document["Statement"]}

    assert set(statements) == {"RotateThisSecret", "SignTokensForThisCluster", "WriteOwnLogs"}
    assert sorted(statements["RotateThisSecret"]["Action"]) == [
        "secretsmanager:DescribeSecret",
        "secretsmanager:GetSecretValue",
        "secretsmanager:PutSecretValue",
        "secretsmanager:UpdateSecretVersionStage",
    ]
    assert statements["RotateThisSecret"]["Resource"] == deployed["outputs"]["SecretArn"]
    assert statements["SignTokensForThisCluster"]["Action"] == "dsql:DbConnectAdmin"
    assert statements["SignTokensForThisCluster"]["Resource"].endswith(":dsql:us-east-1:000000000000:cluster/local")
    assert sorted(statements["WriteOwnLogs"]["Action"]) == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert LOG_GROUP in statements["WriteOwnLogs"]["Resource"]


def test_function_runs_uploaded_zip(environment, deployed):
    emulator, _ = environment
    zip_bytes = emulator.client("s3").get_object(Bucket=deployed["code_bucket"], Key=deployed["code_key"])["Body"].read()

    configuration = emulator.client("lambda").get_function(FunctionName=FUNCTION)["Configuration"]

    assert configuration["CodeSha256"] == base64.b64encode(hashlib.sha256(zip_bytes).digest()).decode()
    assert configuration["Runtime"] == "provided.al2023"
    assert configuration["Handler"] == "bootstrap"
    assert configuration["Architectures"] == ["x86_64"]
    assert configuration["MemorySize"] == 128
    assert configuration["Timeout"] == 30
    assert configuration["Environment"]["Variables"]["TOKEN_LIFETIME_SECONDS"] == "36000"
    assert configuration["Environment"]["Variables"]["ROTATION_PERIOD_SECONDS"] == "18000"


def test_zip_holds_only_bootstrap(environment, deployed):
    emulator, _ = environment
    zip_bytes = emulator.client("s3").get_object(Bucket=deployed["code_bucket"], Key=deployed["code_key"])["Body"].read()

    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
        [entry] = archive.infolist()

    assert entry.filename == "bootstrap"
    assert (entry.external_attr >> 16) & 0o777 == 0o755
    assert entry.date_time == (1980, 1, 1, 0, 0, 0)
    assert deployed["code_key"] == f"rotator/{hashlib.sha256(zip_bytes).hexdigest()}.zip"


def test_log_group_has_retention(environment, deployed):
    emulator, _ = environment

    groups = emulator.client("logs").describe_log_groups(logGroupNamePrefix=LOG_GROUP)["logGroups"]

    [group] = [group for group in groups if group["logGroupName"] == LOG_GROUP]
    assert group["retentionInDays"] == 30


def test_permission_limits_invoker(environment, deployed):
    emulator, _ = environment

    policy = json.loads(emulator.client("lambda").get_policy(FunctionName=FUNCTION)["Policy"])

    [statement] = policy["Statement"]
    assert statement["Principal"] == {"Service": "secretsmanager.amazonaws.com"}
    assert statement["Action"] == "lambda:InvokeFunction"
    assert statement["Condition"]["StringEquals"]["AWS:SourceAccount"] == "000000000000"
    assert statement["Condition"]["ArnLike"]["AWS:SourceArn"] == deployed["outputs"]["SecretArn"]


def test_second_up_changes_nothing(environment, deployed):
    emulator, standin = environment
    cloudformation = emulator.client("cloudformation")
    events_before = cloudformation.describe_stack_events(StackName=STACK)["StackEvents"]
    change_sets_before = cloudformation.list_change_sets(StackName=STACK)["Summaries"]

    again = run_json(["up", *local_settings(STACK, standin)], env=deployer_env(emulator.endpoint_url))

    events_after = cloudformation.describe_stack_events(StackName=STACK)["StackEvents"]
    change_sets_after = cloudformation.list_change_sets(StackName=STACK)["Summaries"]
    assert again["outcome"] == "unchanged"
    assert again["artifact_uploaded"] is False
    assert again["code_key"] == deployed["code_key"]
    assert len(events_after) == len(events_before)
    # The empty change set is deleted, and no other one was executed.
    assert change_sets_after == change_sets_before


@contextlib.contextmanager
def counting_proxy(upstream_url, log_path):
    """Yields the URL of the benchmark's counting proxy in front of the emulator."""
    upstream = urlsplit(upstream_url)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_class(upstream.hostname, upstream.port, CallLog(log_path)))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_unchanged_up_makes_three_calls(environment, deployed, tmp_path):
    """An up with nothing to change reads the stack, its template and the
    function's code hash, and makes no other AWS call."""
    emulator, standin = environment
    calls_path = tmp_path / "calls.jsonl"

    with counting_proxy(emulator.endpoint_url, calls_path) as proxy_url:
        again = run_json(["up", *local_settings(STACK, standin)], env=deployer_env(proxy_url))

    operations = [json.loads(line)["operation"] for line in calls_path.read_text().splitlines()]
    assert operations == ["DescribeStacks", "GetTemplate", "GetFunctionConfiguration"]
    assert again["outcome"] == "unchanged"
    assert again["code_bucket"] == deployed["code_bucket"]
    assert again["code_key"] == deployed["code_key"]
    assert again["outputs"] == deployed["outputs"]


def test_output_never_contains_password(environment, deployed):
    emulator, standin = environment
    secrets = emulator.client("secretsmanager")
    password = json.loads(secrets.get_secret_value(SecretId=deployed["outputs"]["SecretArn"])["SecretString"])["password"]

    result = run_deployer(["up", *local_settings(STACK, standin)], env=deployer_env(emulator.endpoint_url))

    assert result.returncode == EXIT_OK
    assert password not in result.stdout
    assert password not in result.stderr


def test_down_removes_everything_and_reruns(environment, deployed):
    emulator, standin = environment
    env = deployer_env(emulator.endpoint_url)
    role_name = deployed["outputs"]["RoleArn"].rsplit("/", 1)[1]

    first = run_json(["down", *local_settings(STACK, standin)], env=env)
    second = run_json(["down", *local_settings(STACK, standin)], env=env)

    assert first["stack_deleted"] is True
    assert second["stack_deleted"] is False
    with pytest.raises(ClientError):
        emulator.client("cloudformation").describe_stacks(StackName=STACK)
    with pytest.raises(ClientError):
        emulator.client("lambda").get_function(FunctionName=FUNCTION)
    with pytest.raises(ClientError):
        emulator.client("iam").get_role(RoleName=role_name)
    with pytest.raises(ClientError):
        emulator.client("secretsmanager").describe_secret(SecretId=SECRET_NAME)
    groups = emulator.client("logs").describe_log_groups(logGroupNamePrefix=LOG_GROUP)["logGroups"]
    assert groups == []


BAD_INPUT_CASES = [
    pytest.param({"--region": None}, "missing setting `region`", id="missing-region"),
    pytest.param({"--cluster-endpoint": "db.example.com"}, "invalid `cluster_endpoint` \"db.example.com\"",
                 id="endpoint-not-dsql"),
    pytest.param({"--stack-name": "bad_name"}, "invalid `stack_name` \"bad_name\"", id="invalid-stack-name"),
]


@pytest.mark.parametrize(("overrides", "message"), BAD_INPUT_CASES)
def test_bad_input_fails_before_aws(overrides, message, tmp_path):
    """The endpoint points at a closed port: an AWS call would fail with a
    connection error and exit 1, so exit 2 with the message shows that the
    settings were rejected first."""
    build_deployer()
    env = deployer_env("http://127.0.0.1:9")
    env.pop("AWS_REGION")
    flags = {"--stack-name": "ok", "--region": "us-east-1", "--cluster-endpoint": "abc.dsql.us-east-1.on.aws"}
    flags.update(overrides)
    arguments = [item for name, value in flags.items() if value is not None for item in (name, value)]

    result = run_deployer(["up", *arguments], env=env, cwd=tmp_path)

    assert result.returncode == EXIT_BAD_INPUT, result.stderr
    assert message in result.stderr


def test_unknown_settings_key_fails(tmp_path):
    build_deployer()
    settings = tmp_path / "deploy.yaml"
    settings.write_text("stack_name: ok\nregion: us-east-1\ncluster_endpont: abc.dsql.us-east-1.on.aws\n")

    result = run_deployer(["up"], env=deployer_env("http://127.0.0.1:9"), cwd=tmp_path)

    assert result.returncode == EXIT_BAD_INPUT, result.stderr
    assert "unknown setting `cluster_endpont`" in result.stderr
    assert "did you mean `cluster_endpoint`?" in result.stderr
