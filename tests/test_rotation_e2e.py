"""End to end: the rotator, deployed by `deployer up`, rotating the token in
the patched emulator against the DSQL stand-in.

Secrets Manager (the emulator with the localenv patches) creates the
AWSPENDING version and invokes the uploaded zip for createSecret, setSecret,
testSecret and finishSecret. The stand-in is PostgreSQL that accepts only a
correctly signed, unexpired token for its host, region and user, over TLS from
a test CA. The emulator passes SSL_CERT_FILE to the function, so the rotator
trusts that CA through its system roots.

Faults are injected the way they happen in production: the database goes
down, the signing key is wrong, a step runs twice, a rotation is left
unfinished. Secrets Manager reattempts an unfinished rotation by invoking the
steps again with the same ClientRequestToken; the emulator does not, so these
tests do it through Lambda Invoke. Every test ends with AWSCURRENT on a token
that logs in.
"""

import json
import time
import uuid

import psycopg
import pytest
from botocore.exceptions import ClientError

from deployer_cli import build_deployer, deployer_env, local_settings, run_deployer
from localenv.emulator import Emulator
from localenv.standin import DsqlStandin

STACK = "e2e-rotation"
FUNCTION = f"{STACK}-rotator"
LOG_GROUP = f"/aws/lambda/{FUNCTION}"
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
PLACEHOLDER_PASSWORD = "pending-first-rotation"
ROTATION_TIMEOUT_SECONDS = 120


@pytest.fixture(scope="module")
def environment(tmp_path_factory):
    """The stand-in, then an emulator whose functions trust the stand-in's CA."""
    build_deployer()
    with DsqlStandin() as standin:
        workdir = tmp_path_factory.mktemp("rotation-emulator")
        with Emulator(workdir, extra_env={"SSL_CERT_FILE": str(standin.ca_path)}) as emulator:
            yield emulator, standin


@pytest.fixture(scope="module")
def stack(environment):
    """Deploys the stack once and waits for the first rotation, which the
    schedule starts. Returns the deployer's JSON result and its whole output."""
    emulator, standin = environment
    env = deployer_env(emulator.endpoint_url)
    up = run_deployer(["up", *local_settings(STACK, standin), "--output", "json"], env=env)
    assert up.returncode == 0, f"deployer up exited {up.returncode}:\n{up.stderr}"
    result = json.loads(up.stdout)
    secret_arn = result["outputs"]["SecretArn"]
    first_version = pending_version(emulator.client("secretsmanager"), secret_arn)
    if first_version:
        wait_for_rotation(emulator, secret_arn, first_version)

    yield {"result": result, "output": up.stdout + up.stderr}
    run_deployer(["down", *local_settings(STACK, standin)], env=env)


@pytest.fixture
def rotation(environment, stack):
    """A handle on the deployed rotation. After each test it brings the
    database back and completes any rotation that the test left unfinished."""
    emulator, standin = environment
    handle = Rotation(emulator, standin, stack["result"]["outputs"]["SecretArn"])
    yield handle
    handle.start_database()
    pending = pending_version(handle.secrets, handle.secret_arn)
    if pending:
        handle.run_steps(pending)
    handle.assert_current_logs_in()


class Rotation:
    """The deployed secret and function, with the calls that tests repeat."""

    def __init__(self, emulator, standin, secret_arn):
        self.emulator = emulator
        self.standin = standin
        self.secret_arn = secret_arn
        self.secrets = emulator.client("secretsmanager")
        self.functions = emulator.client("lambda")
        self._database_stopped = False

    def stop_database(self):
        self.standin.stop_server()
        self._database_stopped = True

    def start_database(self):
        if self._database_stopped:
            self.standin.start_server()
            self._database_stopped = False

    def stages(self):
        return self.secrets.describe_secret(SecretId=self.secret_arn)["VersionIdsToStages"]

    def current_version(self):
        return version_with(self.stages(), "AWSCURRENT")

    def value(self, **selector):
        response = self.secrets.get_secret_value(SecretId=self.secret_arn, **selector)
        return json.loads(response["SecretString"])

    def rotate(self):
        """Starts a rotation and waits until the emulator reports its end.
        Returns the new version id and whether all four steps succeeded."""
        version_id = self.secrets.rotate_secret(SecretId=self.secret_arn)["VersionId"]
        return version_id, wait_for_rotation(self.emulator, self.secret_arn, version_id)

    def invoke(self, step, version_id, secret_id=None):
        """Invokes one step as Secrets Manager does. Returns the error
        message, or None when the step succeeded."""
        event = {
            "Step": step,
            "SecretId": secret_id or self.secret_arn,
            "ClientRequestToken": version_id,
            "RotationToken": str(uuid.uuid4()),
        }
        return invoke_function(self.functions, event)

    def run_steps(self, version_id):
        """Reattempts a rotation, as Secrets Manager does for an unfinished one."""
        for step in STEPS:
            error = self.invoke(step, version_id)
            assert error is None, f"{step} failed: {error}"

    def assert_current_logs_in(self):
        value = self.value()
        assert value["password"] != PLACEHOLDER_PASSWORD, "AWSCURRENT still holds the placeholder"
        login(self.standin, value)

    def snapshot(self, secret_arn=None):
        """Returns every version's labels and value, to show that nothing changed."""
        secret_arn = secret_arn or self.secret_arn
        stages = self.secrets.describe_secret(SecretId=secret_arn)["VersionIdsToStages"]
        versions = {}
        for version_id, labels in stages.items():
            try:
                text = self.secrets.get_secret_value(SecretId=secret_arn, VersionId=version_id)["SecretString"]
            except ClientError as error:
                text = error.response["Error"]["Code"]
            versions[version_id] = (sorted(labels), text)
        return versions


def version_with(stages, label):
    for version_id, labels in stages.items():
        if label in labels:
            return version_id
    return None


def pending_version(secrets, secret_arn):
    """Returns the version of an unfinished rotation: AWSPENDING on a version
    that is not AWSCURRENT."""
    stages = secrets.describe_secret(SecretId=secret_arn)["VersionIdsToStages"]
    pending = version_with(stages, "AWSPENDING")
    if pending and "AWSCURRENT" not in stages[pending]:
        return pending
    return None


def wait_for_rotation(emulator, secret_arn, version_id):
    """Waits for the emulator's rotation runner to log the end of a rotation.
    Returns True when all four steps succeeded, False when one failed."""
    finished = f"Rotation of {secret_arn} (version {version_id}) finished"
    failed = f"Rotation of {secret_arn} (version {version_id}) failed at step"
    deadline = time.monotonic() + ROTATION_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        log = emulator.log_path.read_text(encoding="utf-8", errors="replace")
        if finished in log:
            return True
        if failed in log:
            return False
        time.sleep(0.5)
    raise AssertionError(f"rotation of version {version_id} did not end within {ROTATION_TIMEOUT_SECONDS} s")


def rotation_failure(emulator, secret_arn, version_id):
    """Returns the emulator's log line for a failed rotation of `version_id`."""
    marker = f"Rotation of {secret_arn} (version {version_id}) failed at step"
    log = emulator.log_path.read_text(encoding="utf-8", errors="replace")
    return next((line for line in log.splitlines() if marker in line), None)


def invoke_function(functions, event):
    response = functions.invoke(FunctionName=FUNCTION, Payload=json.dumps(event).encode())
    payload = response["Payload"].read().decode("utf-8")
    if "FunctionError" not in response:
        return None
    try:
        return json.loads(payload).get("errorMessage", payload)
    except (json.JSONDecodeError, AttributeError):
        return payload


def login(standin, value):
    """Logs into the stand-in with a secret value over verify-full TLS and runs SELECT 1."""
    kwargs = standin.connect_kwargs(value["username"], value["password"])
    kwargs["port"] = int(value["port"])
    kwargs["dbname"] = value["dbname"]
    with psycopg.connect(**kwargs) as connection:
        assert connection.execute("SELECT 1").fetchone() == (1,)


def login_fails(standin, value):
    try:
        login(standin, value)
    except psycopg.OperationalError:
        return True
    return False


# -- the normal path ---------------------------------------------------------


def test_first_rotation_replaces_placeholder(rotation):
    stages = rotation.stages()
    current = version_with(stages, "AWSCURRENT")
    previous = version_with(stages, "AWSPREVIOUS")

    assert previous is not None, f"no AWSPREVIOUS version: {stages}"
    assert rotation.value(VersionId=previous)["password"] == PLACEHOLDER_PASSWORD
    assert rotation.value(VersionId=current)["password"] != PLACEHOLDER_PASSWORD
    rotation.assert_current_logs_in()


def test_rotate_secret_promotes_new_token(rotation):
    old_version = rotation.current_version()
    old_value = rotation.value()

    new_version, succeeded = rotation.rotate()

    assert succeeded, rotation_failure(rotation.emulator, rotation.secret_arn, new_version)
    stages = rotation.stages()
    assert "AWSCURRENT" in stages[new_version]
    assert "AWSPENDING" not in stages[new_version]
    assert "AWSPREVIOUS" in stages[old_version]
    new_value = rotation.value()
    assert new_value["password"] != old_value["password"]
    login(rotation.standin, new_value)


def test_rotation_keeps_other_fields(rotation):
    old_value = rotation.value()

    _, succeeded = rotation.rotate()

    assert succeeded
    new_value = rotation.value()
    for field in ("username", "host", "port", "dbname", "engine"):
        assert new_value[field] == old_value[field], field
    assert new_value["expires_at"].endswith("Z")


def test_token_signed_with_admin_action(rotation):
    password = rotation.value()["password"]

    assert password.startswith(f"{rotation.standin.host}/?Action=DbConnectAdmin&")
    assert "X-Amz-Expires=" in password
    # The emulator gives functions an empty AWS_SESSION_TOKEN, which means none.
    assert "X-Amz-Security-Token" not in password


def test_app_user_gets_db_connect_token(rotation):
    good_text = json.dumps(rotation.value())
    rotation.secrets.put_secret_value(
        SecretId=rotation.secret_arn, SecretString=json.dumps({**json.loads(good_text), "username": "app_user"}),
    )

    _, succeeded = rotation.rotate()

    assert succeeded
    value = rotation.value()
    assert value["password"].startswith(f"{rotation.standin.host}/?Action=DbConnect&")
    login(rotation.standin, value)
    rotation.secrets.put_secret_value(SecretId=rotation.secret_arn, SecretString=good_text)


# -- faults --------------------------------------------------------------------


def test_database_down_fails_test_secret(rotation):
    old_version = rotation.current_version()
    old_value = rotation.value()
    rotation.stop_database()

    new_version, succeeded = rotation.rotate()

    assert not succeeded
    failure = rotation_failure(rotation.emulator, rotation.secret_arn, new_version)
    assert "testSecret" in failure
    assert rotation.current_version() == old_version
    rotation.start_database()
    login(rotation.standin, old_value)

    rotation.run_steps(new_version)

    assert rotation.current_version() == new_version
    login(rotation.standin, rotation.value())
    later_version, later_succeeded = rotation.rotate()
    assert later_succeeded
    assert rotation.current_version() == later_version


def test_rejected_token_is_not_promoted(rotation):
    """The stand-in accepts only tokens signed for `localhost`. Pointing the
    secret at 127.0.0.1, the same server under another name, makes the
    rotator sign for 127.0.0.1, as a client that signs for the wrong host
    name would, and the stand-in rejects that token."""
    good_text = json.dumps(rotation.value())
    renamed = {**json.loads(good_text), "host": "127.0.0.1"}
    renamed_version = rotation.secrets.put_secret_value(
        SecretId=rotation.secret_arn, SecretString=json.dumps(renamed),
    )["VersionId"]

    new_version, succeeded = rotation.rotate()

    assert not succeeded
    failure = rotation_failure(rotation.emulator, rotation.secret_arn, new_version)
    assert "testSecret" in failure
    assert "does not log in" in failure
    assert rotation.current_version() == renamed_version
    assert login_fails(rotation.standin, rotation.value(VersionId=new_version))
    login(rotation.standin, rotation.value())
    rotation.secrets.update_secret_version_stage(
        SecretId=rotation.secret_arn, VersionStage="AWSPENDING", RemoveFromVersionId=new_version,
    )
    rotation.secrets.put_secret_value(SecretId=rotation.secret_arn, SecretString=good_text)


def test_each_step_twice(rotation):
    old_version = rotation.current_version()
    rotation.stop_database()
    new_version, _ = rotation.rotate()
    rotation.start_database()

    for step in STEPS:
        for attempt in (1, 2):
            error = rotation.invoke(step, new_version)
            assert error is None, f"{step} attempt {attempt}: {error}"

    stages = rotation.stages()
    assert "AWSCURRENT" in stages[new_version]
    assert "AWSPREVIOUS" in stages[old_version]
    login(rotation.standin, rotation.value())


def test_create_secret_keeps_pending_value(rotation):
    rotation.stop_database()
    new_version, _ = rotation.rotate()
    rotation.start_database()
    stored = rotation.secrets.get_secret_value(
        SecretId=rotation.secret_arn, VersionId=new_version, VersionStage="AWSPENDING",
    )["SecretString"]

    error = rotation.invoke("createSecret", new_version)

    assert error is None
    again = rotation.secrets.get_secret_value(
        SecretId=rotation.secret_arn, VersionId=new_version, VersionStage="AWSPENDING",
    )["SecretString"]
    assert again == stored
    rotation.run_steps(new_version)
    assert rotation.value() == json.loads(stored)


def test_stray_pending_on_current_version(rotation):
    current = rotation.current_version()
    rotation.secrets.update_secret_version_stage(
        SecretId=rotation.secret_arn, VersionStage="AWSPENDING", MoveToVersionId=current,
    )
    before = rotation.snapshot()

    for step in STEPS:
        assert rotation.invoke(step, current) is None, step

    assert rotation.snapshot() == before
    new_version, succeeded = rotation.rotate()
    assert succeeded
    assert rotation.current_version() == new_version


def test_second_rotate_secret_while_unfinished(rotation):
    old_version = rotation.current_version()
    rotation.stop_database()
    new_version, _ = rotation.rotate()

    with pytest.raises(ClientError) as raised:
        rotation.secrets.rotate_secret(SecretId=rotation.secret_arn)

    assert raised.value.response["Error"]["Code"] == "InvalidRequestException"
    assert rotation.current_version() == old_version
    rotation.start_database()
    rotation.run_steps(new_version)
    assert rotation.current_version() == new_version


# -- bad secrets and events ----------------------------------------------------


BAD_SECRETS = [
    ("not JSON", lambda value: "this is not json", "not valid JSON"),
    ("host missing", lambda value: json.dumps({k: v for k, v in value.items() if k != "host"}), "`host` is missing"),
    ("username empty", lambda value: json.dumps({**value, "username": ""}), "`username` is empty"),
    ("engine mysql", lambda value: json.dumps({**value, "engine": "mysql"}), "`engine` is \"mysql\""),
    ("port abc", lambda value: json.dumps({**value, "port": "abc"}), "`port` is \"abc\""),
]


@pytest.mark.parametrize("make_value, expected", [case[1:] for case in BAD_SECRETS],
                         ids=[case[0] for case in BAD_SECRETS])
def test_bad_secret_changes_nothing(rotation, make_value, expected):
    good_text = json.dumps(rotation.value())
    bad_text = make_value(json.loads(good_text))
    bad_version = rotation.secrets.put_secret_value(SecretId=rotation.secret_arn, SecretString=bad_text)["VersionId"]

    new_version, succeeded = rotation.rotate()
    before = rotation.snapshot()
    error = rotation.invoke("createSecret", new_version)
    after = rotation.snapshot()

    assert not succeeded
    assert error is not None
    assert expected in error
    assert "createSecret" in rotation_failure(rotation.emulator, rotation.secret_arn, new_version)
    assert after == before
    assert after[new_version][1] == "ResourceNotFoundException"
    assert rotation.current_version() == bad_version
    # Put the working value back and drop the failed rotation's version.
    rotation.secrets.update_secret_version_stage(
        SecretId=rotation.secret_arn, VersionStage="AWSPENDING", RemoveFromVersionId=new_version,
    )
    rotation.secrets.put_secret_value(SecretId=rotation.secret_arn, SecretString=good_text)


def test_unknown_step_changes_nothing(rotation):
    before = rotation.snapshot()

    error = rotation.invoke("deleteSecret", rotation.current_version())

    assert "`Step`" in error
    assert "deleteSecret" in error
    assert rotation.snapshot() == before


def test_missing_secret_id_changes_nothing(rotation):
    before = rotation.snapshot()

    error = rotation.invoke("createSecret", rotation.current_version(), secret_id=" ")

    assert "`SecretId`" in error
    assert rotation.snapshot() == before


def test_rotation_disabled_changes_nothing(rotation):
    unrotated = rotation.secrets.create_secret(
        Name=f"{STACK}-unrotated-{uuid.uuid4()}", SecretString=json.dumps(rotation.value()),
    )
    before = rotation.snapshot(unrotated["ARN"])

    error = rotation.invoke("createSecret", unrotated["VersionId"], secret_id=unrotated["ARN"])

    assert "rotation is not enabled" in error
    assert unrotated["ARN"] in error
    assert rotation.snapshot(unrotated["ARN"]) == before
    rotation.secrets.delete_secret(SecretId=unrotated["ARN"], ForceDeleteWithoutRecovery=True)


def test_token_of_other_secret_changes_nothing(rotation):
    other = rotation.secrets.create_secret(Name=f"{STACK}-other-{uuid.uuid4()}", SecretString="{}")
    before = rotation.snapshot()

    error = rotation.invoke("createSecret", other["VersionId"])

    assert "`ClientRequestToken`" in error
    assert other["VersionId"] in error
    assert rotation.snapshot() == before
    rotation.secrets.delete_secret(SecretId=other["ARN"], ForceDeleteWithoutRecovery=True)


def test_invalid_setting_stops_function(rotation):
    config = rotation.functions.get_function_configuration(FunctionName=FUNCTION)
    variables = config["Environment"]["Variables"]
    before = rotation.snapshot()
    update_environment(rotation.functions, {**variables, "TOKEN_LIFETIME_SECONDS": "8h"})
    try:
        error = rotation.invoke("createSecret", rotation.current_version())
    finally:
        update_environment(rotation.functions, variables)

    # The function exits during init. Lambda keeps its log line and the
    # emulator returns it in the invocation's error message.
    assert error is not None
    assert "TOKEN_LIFETIME_SECONDS=8h is not a whole number of seconds" in error
    assert rotation.snapshot() == before


def update_environment(functions, variables):
    functions.update_function_configuration(FunctionName=FUNCTION, Environment={"Variables": variables})
    waiter = functions.get_waiter("function_updated_v2")
    waiter.wait(FunctionName=FUNCTION, WaiterConfig={"Delay": 1, "MaxAttempts": 60})


# -- secrecy -------------------------------------------------------------------


def test_output_has_no_token_or_password(rotation, stack):
    """Runs a full rotation, then reads everything that the function, the
    emulator and the deployer printed, and looks for any token, signature or
    password value that the secret ever held."""
    new_version, succeeded = rotation.rotate()
    assert succeeded

    output = "\n".join([
        function_logs(rotation.emulator),
        rotation.emulator.log_path.read_text(encoding="utf-8", errors="replace"),
        stack["output"],
    ])
    secrets_seen = secret_values(rotation)

    assert "X-Amz-Signature" not in output
    for password in secrets_seen:
        assert password not in output, "a password value appears in the output"
        signature = password.rsplit("X-Amz-Signature=", 1)[-1]
        assert signature not in output, "a token signature appears in the output"
    assert "step finished" in output, "the function's own log lines are missing from the capture"


def function_logs(emulator):
    logs = emulator.client("logs")
    lines = []
    streams = logs.describe_log_streams(logGroupName=LOG_GROUP)["logStreams"]
    for stream in streams:
        events = logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=stream["logStreamName"])
        lines += [event["message"] for event in events["events"]]
    return "\n".join(lines)


def secret_values(rotation):
    """Returns every password the secret held that is long enough to be a token."""
    passwords = set()
    for version_id in rotation.stages():
        try:
            value = rotation.value(VersionId=version_id)
        except ClientError:
            continue
        if isinstance(value, dict) and len(value.get("password", "")) > 100:
            passwords.add(value["password"])
    assert passwords, "no token found in any version"
    return passwords
