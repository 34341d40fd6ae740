"""Benchmark the Rust rotator against a Python rotation function, and the
deployer against the AWS CLI, in the local emulator.

    python -m bench [--runs N] [--warm-invocations N]

`scripts/bench` builds the binaries and installs the AWS CLI, then runs this.
It starts its own DSQL stand-in, emulator and counting proxy on 127.0.0.1,
and prints a line about the machine and one Markdown table on stdout. It
writes every sample and the calls of each deploy command to
target/bench/results.json and logs progress on stderr. docs/benchmarks.md
explains each figure and its limits.
"""

import argparse
import dataclasses
import json
import logging
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from bench import report
from bench.deploys import CallLog, DeployBench, DeploySamples
from bench.functions import FunctionBench, FunctionSamples
from bench.packaging import build_python_zip
from localenv.emulator import Emulator, stop_process_group
from localenv.standin import DsqlStandin

logger = logging.getLogger("bench")

REPO_ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
PROXY_START_TIMEOUT_SECONDS = 10


def parse_arguments(argv):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7,
                        help="rounds of each measurement (default: %(default)s)")
    parser.add_argument("--warm-invocations", type=int, default=3,
                        help="warm invocations after each cold start (default: %(default)s)")
    parser.add_argument("--work-dir", type=Path, default=REPO_ROOT / "target" / "bench",
                        help="folder for the servers' files, the zips and results.json (default: %(default)s)")
    parser.add_argument("--deployer", type=Path, default=REPO_ROOT / "target" / "debug" / "deployer",
                        help="deployer binary (default: %(default)s)")
    parser.add_argument("--aws-cli", type=Path,
                        default=REPO_ROOT / "target" / "bench" / "awscli-venv" / "bin" / "aws",
                        help="AWS CLI executable (default: %(default)s)")
    arguments = parser.parse_args(argv)
    if arguments.runs < 1 or arguments.warm_invocations < 1:
        parser.error("--runs and --warm-invocations must be at least 1")
    for path in (arguments.deployer, arguments.aws_cli):
        if not os.access(path, os.X_OK):
            parser.error(f"{path} is not an executable file; scripts/bench builds and installs it")
    return arguments


def machine():
    """Describe the machine the figures were measured on."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown")
    memory_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal:"))
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average_at_start": os.getloadavg(),
    }


class CountingProxy:
    """The counting reverse proxy, run as a subprocess in front of the emulator."""

    def __init__(self, upstream, work_dir):
        self.upstream = upstream
        self.log_path = work_dir / "proxy-calls.jsonl"
        self.port_path = work_dir / "proxy.port"
        self.process = None
        self.url = None

    def __enter__(self):
        self.log_path.unlink(missing_ok=True)
        self.port_path.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.proxy", "--upstream", self.upstream,
             "--log", str(self.log_path), "--port-file", str(self.port_path)],
            cwd=REPO_ROOT, start_new_session=True, stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + PROXY_START_TIMEOUT_SECONDS
        while not self.port_path.exists() or not self.port_path.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the counting proxy did not start (exit status {self.process.poll()})")
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.port_path.read_text()}"
        logger.info("counting proxy at %s in front of %s", self.url, self.upstream)
        return self

    def __exit__(self, *exc_info):
        stop_process_group(self.process.pid)
        self.process.wait()


def run(arguments):
    work_dir = arguments.work_dir.resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    python_zip = build_python_zip(work_dir / "python-rotator")
    environment = machine()
    functions = {"rust": FunctionSamples(), "python": FunctionSamples()}
    deploys = DeploySamples()

    with DsqlStandin(region=REGION) as standin:
        emulator = Emulator(work_dir / "emulator", region=REGION, server_module="bench.serve",
                            extra_env={"SSL_CERT_FILE": str(standin.ca_path)})
        with emulator, CountingProxy(emulator.endpoint_url, work_dir) as proxy:
            bench = DeployBench(repo=REPO_ROOT, deployer=arguments.deployer, aws_cli=arguments.aws_cli,
                                proxy_url=proxy.url, call_log=CallLog(proxy.log_path), standin=standin,
                                region=REGION, work_dir=work_dir)
            for run_number in range(1, arguments.runs + 1):
                logger.info("deploy round %d of %d", run_number, arguments.runs)
                bench.run_once(deploys)

            deployed = bench.deploy()
            measure_functions(emulator, standin, deployed, python_zip, arguments, functions)
            bench.remove()

    environment["load_average_at_end"] = os.getloadavg()
    table = report.markdown_table(report.rows(functions, deploys))
    write_results(work_dir / "results.json", arguments, environment, functions, deploys, table)
    load = environment["load_average_at_start"][0], environment["load_average_at_end"][0]
    print(f"{arguments.runs} runs each, median (min to max); {environment['cpus']} CPUs "
          f"({environment['cpu_model']}), {environment['memory_gib']} GiB memory, "
          f"1-minute load average {load[0]:.1f} at the start and {load[1]:.1f} at the end\n")
    print(table)


def measure_functions(emulator, standin, deployed, python_zip, arguments, functions):
    bench = FunctionBench(emulator)
    rust = bench.rust_function(deployed["outputs"]["FunctionName"], deployed["outputs"]["SecretArn"])
    bench.wait_for_idle_secret(rust)
    python = bench.deploy_python_function(python_zip, rust.name, rust.secret_arn)
    for run_number in range(1, arguments.runs + 1):
        logger.info("function round %d of %d", run_number, arguments.runs)
        for kind, function in (("rust", rust), ("python", python)):
            bench.measure_invocations(function, functions[kind], arguments.warm_invocations)
            bench.measure_rotation(function, functions[kind])
        bench.measure_login(rust, standin, functions["rust"])
    functions["rust"].zip_bytes = bench.zip_size(rust)
    functions["python"].zip_bytes = bench.zip_size(python)


def write_results(path, arguments, environment, functions, deploys, table):
    results = {
        "runs": arguments.runs,
        "warm_invocations_per_run": arguments.warm_invocations,
        "machine": environment,
        "functions": {kind: dataclasses.asdict(samples) for kind, samples in functions.items()},
        "deploys": dataclasses.asdict(deploys),
        "table": table,
    }
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    logger.info("wrote %s", path)


def main(argv=None):
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="bench: %(message)s")
    run(parse_arguments(argv))


if __name__ == "__main__":
    main()
