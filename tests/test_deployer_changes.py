"""`deployer diff` and `up` against the emulator: previews, confirmation of
changes that widen access or replace the secret, failures with their
resource reasons, recovery from a failed create, waiting for a stack in
progress, and the JSON documents of each command.

Each test uses its own stack so that one failure does not cascade.
"""

import json
import os
import pty
import re
import select
import signal
import subprocess
import time

import pytest
from botocore.exceptions import ClientError

from deployer_cli import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_OK,
    DEPLOYER,
    build_deployer,
    deployer_env,
    local_settings,
    rotator_binary,
    run_deployer,
)
from localenv.emulator import Emulator
from localenv.standin import DsqlStandin

# Exit code of `up` when changes need confirmation and did not get it.
EXIT_NOT_CONFIRMED = 3
EXIT_INTERRUPTED = 130

ACCESS_RESOURCES = {"RotatorRole", "RotatorPolicy", "RotatorInvokePermission", "TokenSecretPolicy"}

# A template whose only resource fails at once: the policy names a role that
# does not exist, so a stack created from it ends in ROLLBACK_COMPLETE.
FAILING_TEMPLATE = json.dumps({
    "Resources": {
        "Broken": {
            "Type": "AWS::IAM::Policy",
            "Properties": {
                "PolicyName": "broken",
                "Roles": ["role-that-does-not-exist"],
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
                },
            },
        },
    },
})

# A template that stays in CREATE_IN_PROGRESS until its wait condition times
# out after `Timeout` seconds, since nothing signals the handle.
WAITING_TEMPLATE = json.dumps({
    "Resources": {
        "Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"},
        "Wait": {
            "Type": "AWS::CloudFormation::WaitCondition",
            "Properties": {"Handle": {"Ref": "Handle"}, "Timeout": "8"},
        },
    },
})


@pytest.fixture(scope="module")
def environment(tmp_path_factory):
    """The stand-in, an emulator whose functions trust its CA, and the rotator binary."""
    build_deployer()
    binary = rotator_binary(tmp_path_factory.mktemp("rotator"))
    with DsqlStandin() as standin:
        workdir = tmp_path_factory.mktemp("changes-emulator")
        with Emulator(workdir, extra_env={"SSL_CERT_FILE": str(standin.ca_path)}) as emulator:
            yield emulator, standin, binary


def deployer(environment, command, stack, *extra, output_json=False):
    """Run a deployer command on `stack` with the local settings."""
    emulator, standin, binary = environment
    args = [command, *local_settings(stack, standin), *extra]
    if command in ("up", "diff", "render"):
        args += ["--rotator-binary", binary]
    if output_json:
        args += ["--output", "json"]
    return run_deployer(args, env=deployer_env(emulator.endpoint_url))


def run_on_terminal(environment, stack, *extra, reply):
    """Run `up` with stdin and stderr on a pseudo-terminal, send `reply`
    once it prompts, or SIGINT when `reply` is None, and return the exit code,
    the terminal's text and stdout."""
    emulator, standin, binary = environment
    args = [str(DEPLOYER), "up", *local_settings(stack, standin), "--rotator-binary", binary, *extra]
    controller, terminal = pty.openpty()
    process = subprocess.Popen(args, stdin=terminal, stderr=terminal, stdout=subprocess.PIPE,
                               env=deployer_env(emulator.endpoint_url), text=True)
    os.close(terminal)

    output = b""
    replied = False
    while True:
        ready, _, _ = select.select([controller], [], [], 120)
        assert ready, f"`up` printed nothing for 120 s:\n{output.decode(errors='replace')}"
        try:
            chunk = os.read(controller, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
        if not replied and b"[y/N]" in output:
            if reply is None:
                process.send_signal(signal.SIGINT)
            else:
                os.write(controller, reply.encode() + b"\n")
            replied = True
    stdout, _ = process.communicate(timeout=120)
    os.close(controller)
    return process.returncode, output.decode(errors="replace"), stdout


def deployed(environment, stack):
    """Deploy `stack` and return the JSON result of `up`."""
    result = deployer(environment, "up", stack, output_json=True)
    assert result.returncode == EXIT_OK, result.stderr
    return json.loads(result.stdout)


def stack_status(emulator, stack):
    return emulator.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]


def event_count(emulator, stack):
    return len(emulator.client("cloudformation").describe_stack_events(StackName=stack)["StackEvents"])


def change_set_names(emulator, stack):
    """Names of the stack's change sets. MiniStack keeps executed ones listed,
    so tests compare the names before and after a command."""
    summaries = emulator.client("cloudformation").list_change_sets(StackName=stack)["Summaries"]
    return sorted(summary["ChangeSetName"] for summary in summaries)


def wait_for_status(emulator, stack, expected, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = stack_status(emulator, stack)
        if status in expected:
            return status
        time.sleep(0.5)
    raise AssertionError(f"stack {stack} did not reach {expected}; last status {status}")


def test_diff_new_stack_lists_additions(environment):
    emulator, _, _ = environment
    stack = "diff-new"

    result = deployer(environment, "diff", stack, "--artifacts-stack-name", "diff-new-artifacts",
                      output_json=True)

    assert result.returncode == EXIT_OK, result.stderr
    document = json.loads(result.stdout)
    assert document["creates_stack"] is True
    assert {change["action"] for change in document["changes"]} == {"add"}
    changes = {change["logical_id"]: change for change in document["changes"]}
    assert {"TokenSecret", "RotatorFunction", "TokenRotationSchedule"} <= set(changes)
    access = {logical_id for logical_id, change in changes.items() if change["access_change"]}
    assert ACCESS_RESOURCES <= access
    assert "RotatorFunction" not in access
    # A new stack has nothing whose access could widen.
    assert document["needs_confirmation"] == []


def test_diff_new_stack_leaves_nothing(environment):
    emulator, _, _ = environment
    stack = "diff-empty"

    result = deployer(environment, "diff", stack, "--artifacts-stack-name", "diff-empty-artifacts")

    assert result.returncode == EXIT_OK, result.stderr
    assert "stack diff-empty would be created with" in result.stdout
    cloudformation = emulator.client("cloudformation")
    with pytest.raises(ClientError, match="does not exist"):
        cloudformation.describe_stacks(StackName=stack)
    with pytest.raises(ClientError, match="does not exist"):
        cloudformation.describe_stacks(StackName="diff-empty-artifacts")


def test_diff_changed_stack_marks_access(environment):
    emulator, _, _ = environment
    stack = "diff-changed"
    deployed(environment, stack)
    change_sets_before = change_set_names(emulator, stack)
    events_before = event_count(emulator, stack)

    result = deployer(environment, "diff", stack, "--database-user", "app", output_json=True)

    assert result.returncode == EXIT_OK, result.stderr
    document = json.loads(result.stdout)
    assert document["creates_stack"] is False
    changes = {change["logical_id"]: change for change in document["changes"]}
    assert changes["RotatorPolicy"]["action"] == "modify"
    assert changes["RotatorPolicy"]["access_change"] is True
    assert "RotatorPolicy (AWS::IAM::Policy): changes IAM or network access" in document["needs_confirmation"]
    assert change_set_names(emulator, stack) == change_sets_before
    assert stack_status(emulator, stack) == "CREATE_COMPLETE"
    assert event_count(emulator, stack) == events_before


def test_diff_unchanged_stack_reports_none(environment):
    emulator, _, _ = environment
    stack = "diff-same"
    deployed(environment, stack)
    change_sets_before = change_set_names(emulator, stack)

    result = deployer(environment, "diff", stack)

    assert result.returncode == EXIT_OK, result.stderr
    assert result.stdout.strip() == "stack diff-same: no changes"
    assert change_set_names(emulator, stack) == change_sets_before


def test_up_access_change_without_terminal_fails(environment):
    emulator, _, _ = environment
    stack = "confirm-access"
    deployed(environment, stack)
    change_sets_before = change_set_names(emulator, stack)
    events_before = event_count(emulator, stack)

    result = deployer(environment, "up", stack, "--database-user", "app")

    assert result.returncode == EXIT_NOT_CONFIRMED, result.stderr
    assert "need confirmation and there is no terminal" in result.stderr
    assert "RotatorPolicy (AWS::IAM::Policy): changes IAM or network access" in result.stderr
    assert "deployer up --yes" in result.stderr
    assert change_set_names(emulator, stack) == change_sets_before
    assert event_count(emulator, stack) == events_before


def test_up_secret_replacement_without_terminal_fails(environment):
    emulator, _, _ = environment
    stack = "confirm-secret"
    deployed(environment, stack)
    change_sets_before = change_set_names(emulator, stack)

    result = deployer(environment, "up", stack, "--secret-name", "confirm-secret/renamed", output_json=True)

    assert result.returncode == EXIT_NOT_CONFIRMED, result.stderr
    document = json.loads(result.stdout)
    assert document["error"]["kind"] == "not_confirmed"
    assert document["error"]["exit_code"] == EXIT_NOT_CONFIRMED
    assert "TokenSecret (AWS::SecretsManager::Secret): replaces or removes the secret" in document["error"]["message"]
    assert change_set_names(emulator, stack) == change_sets_before


def test_up_on_terminal_declined(environment):
    emulator, _, _ = environment
    stack = "terminal-no"
    deployed(environment, stack)
    events_before = event_count(emulator, stack)

    code, terminal, _ = run_on_terminal(environment, stack, "--database-user", "app", reply="n")

    assert code == EXIT_NOT_CONFIRMED, terminal
    assert "Apply them to stack terminal-no? [y/N]" in terminal
    assert "changes declined; nothing was changed" in terminal
    assert event_count(emulator, stack) == events_before


def test_up_on_terminal_interrupted_at_prompt(environment):
    """Ctrl-C while `up` waits for a reply ends it at once, and nothing runs."""
    emulator, _, _ = environment
    stack = "terminal-stop"
    deployed(environment, stack)
    events_before = event_count(emulator, stack)

    code, terminal, _ = run_on_terminal(environment, stack, "--database-user", "app", reply=None)

    assert code == EXIT_INTERRUPTED, terminal
    assert "interrupted by SIGINT" in terminal
    assert event_count(emulator, stack) == events_before
    assert stack_status(emulator, stack) == "CREATE_COMPLETE"


def test_up_on_terminal_confirmed(environment):
    emulator, _, _ = environment
    stack = "terminal-yes"
    deployed(environment, stack)

    code, terminal, stdout = run_on_terminal(environment, stack, "--database-user", "app", reply="y")

    assert code == EXIT_OK, terminal
    assert "Apply them to stack terminal-yes? [y/N]" in terminal
    assert f"stack {stack}: updated" in stdout
    assert stack_status(emulator, stack) == "UPDATE_COMPLETE"


def test_up_yes_applies_access_change(environment):
    emulator, _, _ = environment
    stack = "confirm-yes"
    deployed(environment, stack)

    result = deployer(environment, "up", stack, "--database-user", "app", "--yes", output_json=True)

    assert result.returncode == EXIT_OK, result.stderr
    document = json.loads(result.stdout)
    assert document["outcome"] == "updated"
    changes = {change["logical_id"]: change for change in document["changes"]}
    assert changes["RotatorPolicy"]["access_change"] is True
    role_name = document["outputs"]["RoleArn"].rsplit("/", 1)[1]
    iam = emulator.client("iam")
    [policy_name] = iam.list_role_policies(RoleName=role_name)["PolicyNames"]
    policy = iam.get_role_policy(RoleName=role_name, PolicyName=policy_name)["PolicyDocument"]
    if isinstance(policy, str):
        policy = json.loads(policy)
    actions = {statement["Sid"]: statement["Action"] for statement in policy["Statement"]}
    assert actions["SignTokensForThisCluster"] == "dsql:DbConnect"


def test_up_change_without_access_needs_no_yes(environment):
    stack = "confirm-none"
    deployed(environment, stack)

    result = deployer(environment, "up", stack, "--function-memory-mb", "256", output_json=True)

    assert result.returncode == EXIT_OK, result.stderr
    document = json.loads(result.stdout)
    assert document["outcome"] == "updated"
    assert all(not change["access_change"] for change in document["changes"])
    function = document["outputs"]["FunctionName"]
    configuration = environment[0].client("lambda").get_function_configuration(FunctionName=function)
    assert configuration["MemorySize"] == 256


def test_failed_update_names_resource_reason(environment):
    """The role is deleted behind the stack's back, so updating its policy
    fails the way IAM reports a missing role."""
    emulator, _, _ = environment
    stack = "fail-update"
    outputs = deployed(environment, stack)["outputs"]
    iam = emulator.client("iam")
    role_name = outputs["RoleArn"].rsplit("/", 1)[1]
    for policy_name in iam.list_role_policies(RoleName=role_name)["PolicyNames"]:
        iam.delete_role_policy(RoleName=role_name, PolicyName=policy_name)
    iam.delete_role(RoleName=role_name)

    result = deployer(environment, "up", stack, "--database-user", "app", "--yes", output_json=True)

    assert result.returncode == EXIT_FAILED, result.stderr
    assert f"stack {stack} ended in UPDATE_ROLLBACK_COMPLETE" in result.stderr
    assert f"RotatorPolicy (AWS::IAM::Policy) UPDATE_FAILED: The role with name {role_name} cannot be found." \
        in result.stderr
    document = json.loads(result.stdout)
    assert document["error"]["kind"] == "failed"
    assert document["error"]["exit_code"] == EXIT_FAILED
    [failure] = document["error"]["failed_resources"]
    assert failure["logical_id"] == "RotatorPolicy"
    assert failure["status"] == "UPDATE_FAILED"
    assert role_name in failure["reason"]
    assert stack_status(emulator, stack) == "UPDATE_ROLLBACK_COMPLETE"


def test_up_recreates_failed_first_create(environment):
    emulator, _, _ = environment
    stack = "recover-create"
    emulator.client("cloudformation").create_stack(StackName=stack, TemplateBody=FAILING_TEMPLATE)
    wait_for_status(emulator, stack, {"ROLLBACK_COMPLETE"})

    result = deployer(environment, "up", stack, output_json=True)

    assert result.returncode == EXIT_OK, result.stderr
    assert f"stack {stack} is in ROLLBACK_COMPLETE after a failed create; deleting it" in result.stderr
    assert json.loads(result.stdout)["outcome"] == "created"
    assert stack_status(emulator, stack) == "CREATE_COMPLETE"


def test_diff_of_failed_create_explains_recovery(environment):
    emulator, _, _ = environment
    stack = "recover-diff"
    emulator.client("cloudformation").create_stack(StackName=stack, TemplateBody=FAILING_TEMPLATE)
    wait_for_status(emulator, stack, {"ROLLBACK_COMPLETE"})

    result = deployer(environment, "diff", stack)

    assert result.returncode == EXIT_FAILED, result.stderr
    assert "ROLLBACK_COMPLETE after a failed create" in result.stderr
    assert "`deployer up` deletes it and creates it again" in result.stderr
    assert stack_status(emulator, stack) == "ROLLBACK_COMPLETE"


def test_up_waits_for_stack_in_progress(environment):
    """Another operation keeps the stack in CREATE_IN_PROGRESS until its wait
    condition times out, and `up` waits for it, then recovers the failed create."""
    emulator, _, _ = environment
    stack = "busy"
    started = time.monotonic()
    emulator.client("cloudformation").create_stack(StackName=stack, TemplateBody=WAITING_TEMPLATE)
    assert stack_status(emulator, stack) == "CREATE_IN_PROGRESS"

    result = deployer(environment, "up", stack, output_json=True)

    assert result.returncode == EXIT_OK, result.stderr
    assert f"stack {stack} is in CREATE_IN_PROGRESS; waiting for it to settle" in result.stderr
    assert time.monotonic() - started >= 8
    assert json.loads(result.stdout)["outcome"] == "created"
    assert stack_status(emulator, stack) == "CREATE_COMPLETE"


def test_interrupted_up_converges(environment):
    """SIGINT right after `up` created the stack's change set stops it with
    exit code 130, and the next `up` takes the stack from where it was left
    and finishes it."""
    emulator, standin, binary = environment
    stack = "stopped-up"
    args = [str(DEPLOYER), "up", *local_settings(stack, standin), "--rotator-binary", binary, "--output", "json"]
    process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=deployer_env(emulator.endpoint_url), text=True)

    logged = []
    for line in process.stderr:
        logged.append(line)
        if "created change set" in line and stack in line:
            process.send_signal(signal.SIGINT)
            break
    stdout, rest = process.communicate(timeout=120)
    logged.append(rest)

    assert process.returncode == EXIT_INTERRUPTED, "".join(logged)
    assert "interrupted by SIGINT" in "".join(logged)
    assert json.loads(stdout)["error"]["kind"] == "interrupted"

    again = deployer(environment, "up", stack, output_json=True)

    assert again.returncode == EXIT_OK, again.stderr
    assert json.loads(again.stdout)["outputs"]["FunctionName"] == f"{stack}-rotator"
    assert stack_status(emulator, stack) in ("CREATE_COMPLETE", "UPDATE_COMPLETE")


def test_concurrent_ups_both_succeed(environment):
    """Two `up` runs on one stack at once: CloudFormation deletes the other
    change sets of a stack when one executes, so the slower run plans again
    and applies its settings after the faster one."""
    emulator, standin, binary = environment
    stack = "racing"
    deployed(environment, stack)

    for round_number in range(3):
        memories = [256 + 256 * round_number, 384 + 256 * round_number]
        processes = [
            subprocess.Popen([str(DEPLOYER), "up", *local_settings(stack, standin), "--rotator-binary", binary,
                              "--function-memory-mb", str(memory), "--yes"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=deployer_env(emulator.endpoint_url), text=True)
            for memory in memories
        ]
        for process in processes:
            _, stderr = process.communicate(timeout=300)
            assert process.returncode == EXIT_OK, stderr

        memory = emulator.client("lambda").get_function_configuration(FunctionName=f"{stack}-rotator")["MemorySize"]
        assert memory in memories
        assert stack_status(emulator, stack) == "UPDATE_COMPLETE"


def test_down_deletes_stack_in_review(environment):
    """A stack whose creating change set never ran stays in REVIEW_IN_PROGRESS
    for good, and `down` deletes it instead of waiting for it."""
    emulator, _, _ = environment
    stack = "review-only"
    cloudformation = emulator.client("cloudformation")
    cloudformation.create_change_set(StackName=stack, ChangeSetName="never-run", ChangeSetType="CREATE",
                                     TemplateBody=json.dumps({"Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}}))
    assert wait_for_status(emulator, stack, {"REVIEW_IN_PROGRESS"}) == "REVIEW_IN_PROGRESS"

    result = deployer(environment, "down", stack, output_json=True)

    assert result.returncode == EXIT_OK, result.stderr
    assert json.loads(result.stdout)["stack_deleted"] is True
    with pytest.raises(ClientError):
        stack_status(emulator, stack)


def test_down_keeps_artifacts_in_use(environment):
    """`down --artifacts` deletes nothing while another stack's function
    code is in the artifacts bucket, and deletes both once it is the last."""
    emulator, _, _ = environment
    artifacts = ["--artifacts-stack-name", "shared-artifacts"]
    deployed_first = json.loads(deployer(environment, "up", "shared-a", *artifacts, output_json=True).stdout)
    deployer(environment, "up", "shared-b", *artifacts, output_json=True)

    rejected = deployer(environment, "down", "shared-a", "--artifacts", *artifacts)

    assert rejected.returncode == EXIT_FAILED, rejected.stderr
    assert f"bucket {deployed_first['code_bucket']}" in rejected.stderr
    assert "stack(s) shared-b" in rejected.stderr
    assert "nothing was deleted" in rejected.stderr
    assert stack_status(emulator, "shared-a") == "CREATE_COMPLETE"
    assert stack_status(emulator, "shared-artifacts") == "CREATE_COMPLETE"

    assert deployer(environment, "down", "shared-b", *artifacts).returncode == EXIT_OK
    last = deployer(environment, "down", "shared-a", "--artifacts", *artifacts, output_json=True)

    assert last.returncode == EXIT_OK, last.stderr
    assert json.loads(last.stdout)["artifacts_deleted"] is True
    with pytest.raises(ClientError):
        stack_status(emulator, "shared-artifacts")


def test_down_leaves_configured_bucket(environment):
    """With `artifacts_bucket` set, the bucket belongs to the user, and
    `down --artifacts` neither empties it nor deletes an artifacts stack."""
    emulator, _, _ = environment
    s3 = emulator.client("s3")
    s3.create_bucket(Bucket="users-own-bucket")
    s3.put_object(Bucket="users-own-bucket", Key="keep.txt", Body=b"kept")

    result = deployer(environment, "down", "not-deployed", "--artifacts", "--artifacts-bucket", "users-own-bucket",
                      output_json=True)

    assert result.returncode == EXIT_OK, result.stderr
    assert "artifacts_bucket is set" in result.stderr
    assert json.loads(result.stdout)["artifacts_deleted"] is None
    assert s3.get_object(Bucket="users-own-bucket", Key="keep.txt")["Body"].read() == b"kept"


def test_up_on_terminal_shows_spinner(environment):
    """MiniStack applies a change set before the first poll, so the spinner
    is seen while `up` waits for another operation's stack."""
    emulator, _, _ = environment
    stack = "busy-terminal"
    emulator.client("cloudformation").create_stack(StackName=stack, TemplateBody=WAITING_TEMPLATE)

    code, terminal, stdout = run_on_terminal(environment, stack, reply="n")

    assert code == EXIT_OK, terminal
    spinner = rf"\r\x1b\[2K[|/\\-] stack {stack}: CREATE_IN_PROGRESS, \d+ s"
    assert re.search(spinner, terminal), terminal
    assert "CREATE_IN_PROGRESS, " not in stdout


def test_render_json_holds_template(environment):
    result = deployer(environment, "render", "render-json", "--code-bucket", "bucket", "--code-key", "key.zip",
                      output_json=True)

    assert result.returncode == EXIT_OK, result.stderr
    document = json.loads(result.stdout)
    assert "AWS::SecretsManager::Secret" in document["template"]


def test_bad_input_json_error_document(environment):
    result = deployer(environment, "up", "bad_name", output_json=True)

    assert result.returncode == EXIT_BAD_INPUT, result.stderr
    document = json.loads(result.stdout)
    assert document["error"]["kind"] == "bad_input"
    assert document["error"]["exit_code"] == EXIT_BAD_INPUT
    assert 'invalid `stack_name` "bad_name"' in document["error"]["message"]
