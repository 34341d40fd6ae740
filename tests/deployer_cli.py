"""Runs the deployer binary against a local emulator, as a CI job or a user would."""

import json
import os
import shutil
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEPLOYER = Path(os.environ.get("DEPLOYER_BIN", REPO_ROOT / "target" / "debug" / "deployer"))

# Exit codes that the deployer documents in its --help.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


def build_deployer():
    """Build the deployer binary in the workspace's target directory."""
    subprocess.run(["cargo", "build", "--quiet", "--package", "deployer"], cwd=REPO_ROOT, check=True)


def deployer_env(endpoint_url, region="us-east-1"):
    """Return an environment that points the AWS SDK at `endpoint_url` with
    dummy credentials, and at nothing else: no profile, no metadata service."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update({
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": region,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "NO_COLOR": "1",
    })
    return env


def run_deployer(args, *, env, cwd=REPO_ROOT, timeout=1200):
    """Run the deployer with `args` and return the completed process, with
    stdout and stderr captured as text."""
    return subprocess.run(
        [str(DEPLOYER), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def run_json(args, *, env, **kwargs):
    """Run the deployer with `--output json`, check that it succeeded and
    return the parsed document from stdout."""
    result = run_deployer([*args, "--output", "json"], env=env, **kwargs)
    assert result.returncode == EXIT_OK, f"deployer {args} exited {result.returncode}:\n{result.stderr}"
    return json.loads(result.stdout)


def local_settings(stack_name, standin, **extra):
    """Return settings flags for a stack whose cluster endpoint is the
    DSQL stand-in on 127.0.0.1."""
    flags = [
        "--stack-name", stack_name,
        "--cluster-endpoint", standin.host,
        "--allow-local-endpoint",
        "--database-port", str(standin.port),
    ]
    for name, value in extra.items():
        flags += ["--" + name.replace("_", "-"), str(value)]
    return flags


def rotator_binary(directory):
    """Build the rotator for the Lambda once and copy it to `directory`, out
    of a target folder that other builds may overwrite. ROTATOR_BIN names a
    prebuilt binary instead."""
    prebuilt = os.environ.get("ROTATOR_BIN")
    if prebuilt:
        return prebuilt
    subprocess.run(["cargo", "build", "--quiet", "--package", "rotator", "--profile", "lambda", "--locked"],
                   cwd=REPO_ROOT, check=True)
    target = REPO_ROOT / os.environ.get("CARGO_TARGET_DIR", "target")
    copy = directory / "rotator"
    shutil.copy(target / "lambda" / "rotator", copy)
    return str(copy)
