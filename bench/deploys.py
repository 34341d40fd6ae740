"""Wall time and AWS API calls of `deployer up` and `down`, and of the same
no-op deploy through `aws cloudformation deploy`.

Both clients reach the emulator through the counting proxy, so every call
they make is counted, retries and polling included.
"""

import json
import logging
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from localenv.emulator import DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY

logger = logging.getLogger("bench.deploys")

STACK = "bench-rotation"
ARTIFACTS_STACK = "bench-rotation-artifacts"
COMMAND_TIMEOUT_SECONDS = 600


class DeployError(RuntimeError):
    """A deploy command failed."""


@dataclass
class Timed:
    """One command's wall time in seconds and the API calls it made."""

    seconds: float
    calls: list

    @property
    def call_count(self):
        return len(self.calls)


@dataclass
class DeploySamples:
    """The measurements of every run, by command."""

    up_from_nothing: list = field(default_factory=list)
    up_unchanged: list = field(default_factory=list)
    down: list = field(default_factory=list)
    cli_unchanged: list = field(default_factory=list)
    noop_build_seconds: list = field(default_factory=list)
    packaging_seconds: list = field(default_factory=list)


class CallLog:
    """The counting proxy's log of calls, read by line position."""

    def __init__(self, path):
        self.path = Path(path)

    def mark(self):
        return self._line_count()

    def calls_since(self, mark):
        with self.path.open(encoding="utf-8") as log:
            lines = log.read().splitlines()[mark:]
        return [json.loads(line) for line in lines]

    def _line_count(self):
        if not self.path.exists():
            return 0
        with self.path.open(encoding="utf-8") as log:
            return sum(1 for _ in log)


def client_env(endpoint_url, region):
    """Return an environment that sends every AWS call to `endpoint_url` with
    dummy credentials: no profile, no config file, no metadata service."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update({
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_ACCESS_KEY,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_PAGER": "",
        "NO_COLOR": "1",
    })
    return env


class DeployBench:
    def __init__(self, *, repo, deployer, aws_cli, proxy_url, call_log, standin, region, work_dir):
        self.repo = Path(repo)
        self.deployer = Path(deployer)
        self.aws_cli = Path(aws_cli)
        self.proxy_url = proxy_url
        self.call_log = call_log
        self.env = client_env(proxy_url, region)
        self.work_dir = Path(work_dir)
        self.settings = [
            "--stack-name", STACK,
            "--artifacts-stack-name", ARTIFACTS_STACK,
            "--cluster-endpoint", standin.host,
            "--allow-local-endpoint",
            "--database-port", str(standin.port),
        ]

    def run_once(self, samples):
        """Measure one round from nothing: up, up again, the AWS CLI's no-op
        deploy, down. Then remove the artifacts stack, so that the next
        round starts from nothing too."""
        samples.noop_build_seconds.append(self.time_noop_build())
        samples.packaging_seconds.append(self.time_packaging())
        up, result = self._deployer_json(["up"])
        if result["outcome"] != "created":
            raise DeployError(f"deployer up from nothing reported {result['outcome']!r}, expected 'created'")
        samples.up_from_nothing.append(up)

        again, result = self._deployer_json(["up"])
        if result["outcome"] != "unchanged":
            raise DeployError(f"deployer up with nothing changed reported {result['outcome']!r}")
        samples.up_unchanged.append(again)

        samples.cli_unchanged.append(self._cli_deploy(result))

        down, _ = self._deployer_json(["down"])
        samples.down.append(down)
        self._deployer_json(["down", "--artifacts"])

    def deploy(self):
        """Run `deployer up` without measuring it and return its result."""
        return self._deployer_json(["up"])[1]

    def remove(self):
        """Delete both stacks."""
        self._deployer_json(["down", "--artifacts"])

    def time_noop_build(self):
        """Return the seconds that the rotator's cargo build takes when
        nothing changed. `deployer up` skips it when it finds the zip of
        unchanged sources in the target folder."""
        command = ["cargo", "build", "--locked", "--package", "rotator", "--profile", "lambda"]
        started = time.perf_counter()
        subprocess.run(command, cwd=self.repo, check=True, capture_output=True, timeout=COMMAND_TIMEOUT_SECONDS)
        return time.perf_counter() - started

    def time_packaging(self):
        """Return the seconds that the deployer takes to read, check and zip
        the built rotator, which `deployer up` pays after the rotator's
        sources change. `deployer render` with a code bucket and a given
        binary does that work every time and makes no AWS call."""
        command = [str(self.deployer), "render", "--rotator-binary", str(self.rotator_binary()),
                   "--code-bucket", "bench-packaging-only", *self.settings]
        timed, _ = self._timed(command, "deployer render", cwd=self.repo)
        if timed.calls:
            raise DeployError(f"deployer render made {len(timed.calls)} AWS calls, expected none")
        return timed.seconds

    def _deployer_json(self, args):
        command = [str(self.deployer), *args, *self.settings, "--output", "json"]
        timed, stdout = self._timed(command, f"deployer {' '.join(args)}", cwd=self.repo)
        return timed, json.loads(stdout)

    def _cli_deploy(self, up_result):
        """Deploy the template that `up` deployed, unchanged, through the AWS CLI."""
        template = self.work_dir / "rotation-template.yaml"
        render = subprocess.run(
            [str(self.deployer), "render", "--rotator-binary", str(self.rotator_binary()),
             "--code-bucket", up_result["code_bucket"], "--code-key", up_result["code_key"],
             *self.settings],
            cwd=self.repo, env=self.env, capture_output=True, text=True, check=False,
            timeout=COMMAND_TIMEOUT_SECONDS,
        )
        if render.returncode != 0:
            raise DeployError(f"deployer render failed:\n{render.stderr}")
        template.write_text(render.stdout, encoding="utf-8")
        timed, stdout = self._timed(
            [str(self.aws_cli), "--endpoint-url", self.proxy_url, "cloudformation", "deploy",
             "--template-file", str(template), "--stack-name", STACK,
             "--capabilities", "CAPABILITY_IAM", "--no-fail-on-empty-changeset"],
            "aws cloudformation deploy",
            cwd=self.work_dir,
        )
        # The AWS CLI prints this line when the change set it created is empty.
        if "No changes to deploy" not in stdout:
            raise DeployError(f"aws cloudformation deploy changed the stack that up left unchanged:\n{stdout}")
        return timed

    def rotator_binary(self):
        return self.repo / "target" / "lambda" / "rotator"

    def _timed(self, command, label, *, cwd):
        mark = self.call_log.mark()
        started = time.perf_counter()
        result = subprocess.run(command, cwd=cwd, env=self.env, capture_output=True, text=True,
                                stdin=subprocess.DEVNULL, check=False, timeout=COMMAND_TIMEOUT_SECONDS)
        seconds = time.perf_counter() - started
        if result.returncode != 0:
            raise DeployError(f"{label} failed with exit status {result.returncode}:\n{result.stderr[-4000:]}")
        calls = self.call_log.calls_since(mark)
        logger.info("%s: %.2f s, %d AWS API calls", label, seconds, len(calls))
        return Timed(seconds, calls), result.stdout
