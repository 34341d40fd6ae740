"""Cold start, warm invocation and full rotation of a rotation function in the emulator.

Each measurement starts from a known state. A cold start is forced by
changing an environment variable of the function: MiniStack then stops the
function's process, as Lambda discards its execution environments after a
configuration update, and the next invocation starts a new one.
"""

import base64
import json
import logging
import time
import uuid
from dataclasses import dataclass, field

import psycopg

from bench import procstats

logger = logging.getLogger("bench.functions")

COLD_START_VARIABLE = "BENCH_ENVIRONMENT"
ROTATION_TIMEOUT_SECONDS = 120
UPDATE_TIMEOUT_SECONDS = 60
LOG_POLL_SECONDS = 0.005
PYTHON_FUNCTION = "bench-python-rotator"
PYTHON_SECRET = "bench-python/dsql-auth-token"
PLACEHOLDER_PASSWORD = "pending-first-rotation"


class BenchmarkError(RuntimeError):
    """A function did not behave as the benchmark expects."""


@dataclass
class FunctionSamples:
    """The measurements of one function over all runs, in seconds and bytes."""

    cold_start: list = field(default_factory=list)
    warm: list = field(default_factory=list)
    rotation_wall: list = field(default_factory=list)
    rotation_cpu: list = field(default_factory=list)
    peak_rss: list = field(default_factory=list)
    standin_login: list = field(default_factory=list)
    zip_bytes: int = 0
    notes: dict = field(default_factory=dict)


@dataclass
class RotationFunction:
    """A deployed rotation function and the secret it rotates.

    `process_marker` is a string in the command line of the function's
    process: the code folder of a `provided.*` function, the worker folder
    of a Python one.
    """

    name: str
    secret_arn: str
    process_marker: str


class FunctionBench:
    def __init__(self, emulator):
        self.emulator = emulator
        self.lambdas = emulator.client("lambda")
        self.secrets = emulator.client("secretsmanager")
        self._cold_starts = 0

    # -- setup ---------------------------------------------------------------

    def rust_function(self, function_name, secret_arn):
        """Describe the rotator that `deployer up` deployed."""
        configuration = self.lambdas.get_function_configuration(FunctionName=function_name)
        code_hex = base64.b64decode(configuration["CodeSha256"]).hex()
        # MiniStack extracts a provided.* zip into a folder named after its SHA-256.
        return RotationFunction(function_name, secret_arn, f"/{code_hex}/bootstrap")

    def deploy_python_function(self, zip_path, like_function, like_secret_arn):
        """Create the Python function and its secret, configured like the Rust
        rotator and its secret, and run a first rotation to check that it works."""
        template = self.lambdas.get_function_configuration(FunctionName=like_function)
        current = json.loads(self.secrets.get_secret_value(SecretId=like_secret_arn)["SecretString"])
        value = {key: item for key, item in current.items() if key != "expires_at"}
        value["password"] = PLACEHOLDER_PASSWORD
        secret_arn = self.secrets.create_secret(Name=PYTHON_SECRET, SecretString=json.dumps(value))["ARN"]

        function_arn = self.lambdas.create_function(
            FunctionName=PYTHON_FUNCTION,
            Runtime="python3.12",
            Handler="lambda_function.lambda_handler",
            Role=template["Role"],
            Code={"ZipFile": zip_path.read_bytes()},
            MemorySize=template["MemorySize"],
            Timeout=template["Timeout"],
            Environment={"Variables": template.get("Environment", {}).get("Variables", {})},
            Architectures=["x86_64"],
        )["FunctionArn"]
        self._wait_until_updated(PYTHON_FUNCTION)
        self.lambdas.add_permission(
            FunctionName=PYTHON_FUNCTION,
            StatementId="SecretsManagerRotation",
            Action="lambda:InvokeFunction",
            Principal="secretsmanager.amazonaws.com",
            SourceArn=secret_arn,
            SourceAccount=secret_arn.split(":")[4],
        )
        function = RotationFunction(PYTHON_FUNCTION, secret_arn, f"ministack-lambda-{PYTHON_FUNCTION}-")
        self._rotate(function, RotationLambdaARN=function_arn,
                     RotationRules={"ScheduleExpression": "rate(4 hours)", "Duration": "1h"})
        return function

    def wait_for_idle_secret(self, function):
        """Wait until no rotation of the function's secret is unfinished, such
        as the first rotation that `deployer up` starts."""
        deadline = time.monotonic() + ROTATION_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            stages = self.secrets.describe_secret(SecretId=function.secret_arn)["VersionIdsToStages"]
            if not any("AWSPENDING" in labels and "AWSCURRENT" not in labels for labels in stages.values()):
                return
            time.sleep(0.2)
        raise BenchmarkError(f"a rotation of {function.secret_arn} is still unfinished "
                             f"after {ROTATION_TIMEOUT_SECONDS} s")

    # -- measurements --------------------------------------------------------

    def measure_invocations(self, function, samples, warm_count):
        """Record one cold invocation and `warm_count` warm ones of an event
        that the handler returns from after one DescribeSecret call: a step for the
        version that is already AWSCURRENT."""
        event = {
            "Step": "createSecret",
            "SecretId": function.secret_arn,
            "ClientRequestToken": self._current_version(function),
            "RotationToken": str(uuid.uuid4()),
        }
        self.force_cold_start(function)
        before = procstats.function_pids(self.emulator.pid, function.process_marker)
        samples.cold_start.append(self._invoke(function, event))
        started = procstats.function_pids(self.emulator.pid, function.process_marker) - before
        if len(started) != 1:
            raise BenchmarkError(f"expected one new process for {function.name}, found {sorted(started)}")
        pid = next(iter(started))
        samples.notes["process"] = " ".join(procstats.command_line(pid)).strip()
        if function.name == PYTHON_FUNCTION:
            samples.notes["psycopg_loaded_from"] = self._psycopg_location(pid)
        for _ in range(warm_count):
            samples.warm.append(self._invoke(function, event))

    def measure_rotation(self, function, samples):
        """Record the wall time of a rotation that starts in a new execution
        environment, and the CPU time and peak RSS of that environment's
        process, which ran nothing else."""
        self.force_cold_start(function)
        before = procstats.function_pids(self.emulator.pid, function.process_marker)
        wall_seconds, version_id = self._rotate(function)
        started = procstats.function_pids(self.emulator.pid, function.process_marker) - before
        if len(started) != 1:
            raise BenchmarkError(f"expected one new process for {function.name}, found {sorted(started)}")
        usage = procstats.usage(next(iter(started)))
        samples.rotation_wall.append(wall_seconds)
        samples.rotation_cpu.append(usage.cpu_seconds)
        samples.peak_rss.append(usage.peak_rss_bytes)
        if self._current_version(function) != version_id:
            raise BenchmarkError(f"rotation of {function.secret_arn} finished, "
                                 f"but version {version_id} is not AWSCURRENT")

    def measure_login(self, function, standin, samples):
        """Record how long one login to the stand-in with the AWSCURRENT token
        takes from the benchmark's process. testSecret pays the same token
        check, which the stand-in runs in a separate verifier process."""
        value = json.loads(self.secrets.get_secret_value(SecretId=function.secret_arn)["SecretString"])
        arguments = standin.connect_kwargs(value["username"], value["password"])
        started = time.perf_counter()
        with psycopg.connect(**arguments) as connection:
            connection.execute("SELECT 1").fetchone()
        samples.standin_login.append(time.perf_counter() - started)

    def zip_size(self, function):
        """Return the size of the function's zip as Lambda reports it (CodeSize)."""
        return self.lambdas.get_function_configuration(FunctionName=function.name)["CodeSize"]

    def force_cold_start(self, function):
        """Change an environment variable, which makes MiniStack stop the
        function's process, and wait until the update is applied."""
        configuration = self.lambdas.get_function_configuration(FunctionName=function.name)
        variables = dict(configuration.get("Environment", {}).get("Variables", {}))
        self._cold_starts += 1
        variables[COLD_START_VARIABLE] = str(self._cold_starts)
        self.lambdas.update_function_configuration(FunctionName=function.name,
                                                   Environment={"Variables": variables})
        self._wait_until_updated(function.name)

    # -- helpers -------------------------------------------------------------

    def _invoke(self, function, event):
        started = time.perf_counter()
        response = self.lambdas.invoke(FunctionName=function.name, Payload=json.dumps(event).encode())
        payload = response["Payload"].read()
        elapsed = time.perf_counter() - started
        if "FunctionError" in response:
            raise BenchmarkError(f"{function.name} failed: {payload.decode(errors='replace')[:2000]}")
        return elapsed

    def _rotate(self, function, **arguments):
        """Call RotateSecret and wait for the emulator to log the rotation's
        end. Returns the wall time in seconds and the new version id."""
        log = self.emulator.log_path.open("r", encoding="utf-8", errors="replace")
        with log:
            log.seek(0, 2)
            started = time.perf_counter()
            version_id = self.secrets.rotate_secret(SecretId=function.secret_arn, **arguments)["VersionId"]
            finished = f"Rotation of {function.secret_arn} (version {version_id}) finished"
            failed = f"Rotation of {function.secret_arn} (version {version_id}) failed"
            deadline = time.monotonic() + ROTATION_TIMEOUT_SECONDS
            text = ""
            while time.monotonic() < deadline:
                text += log.read()
                if finished in text:
                    return time.perf_counter() - started, version_id
                if failed in text:
                    line = next(line for line in text.splitlines() if failed in line)
                    raise BenchmarkError(f"{function.name}: {line}")
                time.sleep(LOG_POLL_SECONDS)
        raise BenchmarkError(f"rotation of {function.secret_arn} did not end within {ROTATION_TIMEOUT_SECONDS} s")

    def _current_version(self, function):
        stages = self.secrets.describe_secret(SecretId=function.secret_arn)["VersionIdsToStages"]
        return next(version for version, labels in stages.items() if "AWSCURRENT" in labels)

    def _wait_until_updated(self, function_name):
        deadline = time.monotonic() + UPDATE_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            configuration = self.lambdas.get_function_configuration(FunctionName=function_name)
            if configuration.get("State", "Active") == "Active" and \
                    configuration.get("LastUpdateStatus", "Successful") == "Successful":
                return
            time.sleep(0.05)
        raise BenchmarkError(f"function {function_name} was still updating after {UPDATE_TIMEOUT_SECONDS} s")

    @staticmethod
    def _psycopg_location(pid):
        """Return where the Python function's process loaded libpq's wrapper
        from, to show that it runs the psycopg vendored in its zip rather than
        the copy in the emulator's virtualenv."""
        modules = sorted(path for path in procstats.mapped_files(pid) if "psycopg_binary" in path)
        if not modules:
            raise BenchmarkError(f"process {pid} has no psycopg_binary module mapped")
        marker = f"ministack-lambda-{PYTHON_FUNCTION}-"
        if not all(marker in path for path in modules):
            raise BenchmarkError(f"process {pid} loaded psycopg_binary from outside its zip: {modules}")
        return modules[0]
