"""`deployer status` and `deployer rotate` against the emulator, whose
rotations run the real rotator against the DSQL stand-in."""

import json
import socket
import subprocess
import time
from datetime import datetime, timedelta, timezone

import pytest

from deployer_cli import (
    DEPLOYER,
    EXIT_FAILED,
    EXIT_OK,
    build_deployer,
    deployer_env,
    local_settings,
    rotator_binary,
    run_deployer,
)
from localenv.emulator import Emulator
from localenv.standin import DsqlStandin

# Default token lifetime: twice the rotation period, the 4-hour interval plus the 1-hour window.
DEFAULT_LIFETIME_SECONDS = 36000


@pytest.fixture(scope="module")
def environment(tmp_path_factory):
    """The stand-in, an emulator whose functions trust its CA, and the rotator binary."""
    build_deployer()
    binary = rotator_binary(tmp_path_factory.mktemp("rotator"))
    with DsqlStandin() as standin:
        workdir = tmp_path_factory.mktemp("status-emulator")
        with Emulator(workdir, extra_env={"SSL_CERT_FILE": str(standin.ca_path)}) as emulator:
            yield emulator, standin, binary


def deployer(environment, command, stack, *extra, binary=None):
    """Run a deployer command on `stack` with `--output json`."""
    emulator, standin, default_binary = environment
    args = [command, *local_settings(stack, standin), *extra, "--output", "json"]
    if command in ("up", "status"):
        args += ["--rotator-binary", binary or default_binary]
    return run_deployer(args, env=deployer_env(emulator.endpoint_url))


def deploy_and_wait_for_token(environment, stack):
    """Deploy `stack`, wait until its first rotation stored a token, and
    return the secret's ARN and that token."""
    emulator, _, _ = environment
    result = deployer(environment, "up", stack)
    assert result.returncode == EXIT_OK, result.stderr
    secret_arn = json.loads(result.stdout)["outputs"]["SecretArn"]

    secrets = emulator.client("secretsmanager")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        password = json.loads(secrets.get_secret_value(SecretId=secret_arn)["SecretString"])["password"]
        if "X-Amz-Date=" in password:
            return secret_arn, password
        time.sleep(1)
    raise AssertionError(f"the first rotation of {secret_arn} stored no token within 90 s")


def current_version(emulator, secret_arn):
    stages = emulator.client("secretsmanager").describe_secret(SecretId=secret_arn)["VersionIdsToStages"]
    [version] = [version for version, labels in stages.items() if "AWSCURRENT" in labels]
    return version


def test_status_after_rotation(environment):
    started = datetime.now(timezone.utc).replace(microsecond=0)
    _, token = deploy_and_wait_for_token(environment, "status-rotated")

    result = deployer(environment, "status", "status-rotated")

    assert result.returncode == EXIT_OK, result.stderr
    document = json.loads(result.stdout)
    assert document["stack_status"] == "CREATE_COMPLETE"
    assert document["rotation"]["enabled"] is True
    assert document["rotation"]["schedule"] == "rate(4 hours)"
    assert document["rotation"]["window"] == "1h"
    signed_at = datetime.fromisoformat(document["token"]["signed_at"].replace("Z", "+00:00"))
    expires_at = datetime.fromisoformat(document["token"]["expires_at"].replace("Z", "+00:00"))
    assert started - timedelta(seconds=5) <= signed_at <= datetime.now(timezone.utc)
    assert expires_at - signed_at == timedelta(seconds=DEFAULT_LIFETIME_SECONDS)
    assert document["token"]["lifetime_seconds"] == DEFAULT_LIFETIME_SECONDS
    assert document["token"]["expired"] is False
    assert document["code"]["matches"] is True
    assert token not in result.stdout
    assert token not in result.stderr


def test_status_text_never_shows_token(environment):
    emulator, standin, binary = environment
    _, token = deploy_and_wait_for_token(environment, "status-text")

    result = run_deployer(["status", *local_settings("status-text", standin), "--rotator-binary", binary],
                          env=deployer_env(emulator.endpoint_url))

    assert result.returncode == EXIT_OK, result.stderr
    assert "rotation: enabled, schedule rate(4 hours), window 1h" in result.stdout
    assert "code: the deployed rotator matches a fresh package" in result.stdout
    assert token not in result.stdout
    assert token not in result.stderr


def test_status_detects_other_code(environment, tmp_path):
    _, _, binary = environment
    deploy_and_wait_for_token(environment, "status-code")
    changed = tmp_path / "rotator"
    changed.write_bytes(open(binary, "rb").read() + b"\0" * 16)

    result = deployer(environment, "status", "status-code", binary=str(changed))

    assert result.returncode == EXIT_OK, result.stderr
    code = json.loads(result.stdout)["code"]
    assert code["matches"] is False
    assert code["deployed_sha256"] != code["packaged_sha256"]


def test_status_of_missing_stack_fails(environment):
    result = deployer(environment, "status", "status-absent")

    assert result.returncode == EXIT_FAILED, result.stderr
    assert "stack status-absent does not exist; create it with `deployer up`" in result.stderr


def test_rotate_promotes_new_version(environment):
    emulator, _, _ = environment
    secret_arn, first_token = deploy_and_wait_for_token(environment, "rotate-ok")
    before = current_version(emulator, secret_arn)

    result = deployer(environment, "rotate", "rotate-ok")

    assert result.returncode == EXIT_OK, result.stderr
    document = json.loads(result.stdout)
    assert document["previous_version_id"] == before
    assert document["version_id"] != before
    assert current_version(emulator, secret_arn) == document["version_id"]
    password = json.loads(emulator.client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"])
    assert password["password"] != first_token
    assert first_token not in result.stdout + result.stderr


def test_rotate_fails_when_database_is_down(environment):
    """With the stand-in stopped, testSecret cannot log in, so the new
    version stays AWSPENDING and `rotate` reports the failure."""
    emulator, standin, _ = environment
    secret_arn, _ = deploy_and_wait_for_token(environment, "rotate-fail")
    before = current_version(emulator, secret_arn)

    standin.stop_server()
    try:
        result = deployer(environment, "rotate", "rotate-fail", "--timeout-seconds", "20")
    finally:
        standin.start_server()

    assert result.returncode == EXIT_FAILED, result.stderr
    document = json.loads(result.stdout)
    assert document["error"]["kind"] == "failed"
    assert "was not promoted to AWSCURRENT" in document["error"]["message"]
    assert "is still AWSPENDING" in document["error"]["message"]
    assert "/aws/lambda/rotate-fail-rotator" in document["error"]["message"]
    assert current_version(emulator, secret_arn) == before

    status = deployer(environment, "status", "rotate-fail")

    assert status.returncode == EXIT_OK, status.stderr
    pending = json.loads(status.stdout)["rotation"]["pending_version"]
    stages = emulator.client("secretsmanager").describe_secret(SecretId=secret_arn)["VersionIdsToStages"]
    assert stages[pending] == ["AWSPENDING"]

    # The emulator does not retry the failed rotation, so waiting for it times out.
    again = deployer(environment, "rotate", "rotate-fail", "--timeout-seconds", "3")

    assert again.returncode == EXIT_FAILED, again.stderr
    assert f"version {pending} is already AWSPENDING" in again.stderr
    assert "RotateSecret" not in again.stderr


def test_status_names_placeholder_token(environment):
    """Before the first rotation finishes, the secret contains the template's
    placeholder, and `status` says so instead of failing to parse it."""
    emulator, _, _ = environment
    secret_arn, _ = deploy_and_wait_for_token(environment, "placeholder")
    secrets = emulator.client("secretsmanager")
    value = json.loads(secrets.get_secret_value(SecretId=secret_arn)["SecretString"])
    secrets.put_secret_value(SecretId=secret_arn, SecretString=json.dumps({**value, "password": "pending-first-rotation"}),
                             VersionStages=["AWSCURRENT"])

    result = deployer(environment, "status", "placeholder")

    assert result.returncode == EXIT_OK, result.stderr
    token = json.loads(result.stdout)["token"]
    assert "placeholder" in token["error"]
    assert "first rotation has not finished" in token["error"]


def test_unreachable_endpoint_error_is_short():
    """A connection failure shows its causes in words, not the SDK's debug dump."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    build_deployer()

    result = run_deployer(["down", "--stack-name", "nowhere", "--cluster-endpoint", "localhost",
                           "--allow-local-endpoint"],
                          env=deployer_env(f"http://127.0.0.1:{closed_port}"))

    assert result.returncode == EXIT_FAILED, result.stderr
    assert "DescribeStacks on stack nowhere failed" in result.stderr
    assert "Connection refused" in result.stderr
    assert "DispatchFailure(" not in result.stderr


def test_concurrent_rotates_both_succeed(environment):
    """A second `rotate` that finds the first one's version AWSPENDING waits
    for it instead of failing on Secrets Manager's refusal."""
    emulator, standin, _ = environment
    secret_arn, _ = deploy_and_wait_for_token(environment, "rotate-twice")
    args = [str(DEPLOYER), "rotate", *local_settings("rotate-twice", standin), "--output", "json"]

    processes = [subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  env=deployer_env(emulator.endpoint_url), text=True) for _ in range(2)]
    outputs = [process.communicate(timeout=300) for process in processes]

    for process, (_, stderr) in zip(processes, outputs):
        assert process.returncode == EXIT_OK, stderr
    versions = {json.loads(stdout)["version_id"] for stdout, _ in outputs}
    assert current_version(emulator, secret_arn) in versions
