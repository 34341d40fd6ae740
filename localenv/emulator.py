"""The patched MiniStack AWS emulator, run as a subprocess on 127.0.0.1.

MiniStack runs every Lambda function as a local process that inherits the
server's environment, so the variables set here reach the functions too.
AWS_ENDPOINT_URL points their SDKs back at the emulator. `extra_env` can add
more, for example SSL_CERT_FILE for the DSQL stand-in's test CA.
"""

import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

logger = logging.getLogger("localenv.emulator")

REPO_ROOT = Path(__file__).resolve().parent.parent
HEALTH_PATH = "/_ministack/health"
DUMMY_ACCESS_KEY_ID = "test"
DUMMY_SECRET_ACCESS_KEY = "test"


class EmulatorError(RuntimeError):
    """The emulator could not be started."""


def free_port():
    """Return a TCP port on 127.0.0.1 that is free at the time of the call."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_process_group(pid, timeout=10.0):
    """Send SIGTERM to the process group `pid` leads, wait up to `timeout`
    seconds for its leader to exit, then SIGKILL whatever is left in the group,
    such as function processes the emulator spawned."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _process_alive(pid):
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _process_alive(pid):
    try:
        waited_pid, _status = os.waitpid(pid, os.WNOHANG)
        if waited_pid == pid:
            return False
    except ChildProcessError:
        pass  # Not a child of this process (the CLI's stop), so probe it with signal 0.
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class Emulator:
    """MiniStack with the localenv patches, on 127.0.0.1 and a free port.

    Use it as a context manager or call `start()` and `stop()`. Attributes:
    `port`, `endpoint_url`, `region`, `log_path` and `pid` (the server process,
    which leads its own process group).
    """

    def __init__(self, workdir, *, port=None, region="us-east-1", extra_env=None,
                 python=sys.executable, startup_timeout=60.0, server_module="localenv.serve"):
        """`workdir` contains the server's log, TMPDIR and STATE_DIR and is
        created if missing. `extra_env` is added to the server's environment,
        which every function inherits. `python` must have MiniStack installed.
        `server_module` is run with `python -m` and must apply the localenv
        patches before it starts MiniStack, as `localenv.serve` does."""
        self.workdir = Path(workdir)
        self.port = port
        self.region = region
        self.extra_env = dict(extra_env or {})
        self.python = python
        self.startup_timeout = startup_timeout
        self.server_module = server_module
        self.log_path = self.workdir / "emulator.log"
        self.pid = None
        self._process = None

    @property
    def endpoint_url(self):
        return f"http://127.0.0.1:{self.port}"

    def server_env(self):
        """Return the server's environment: the caller's, without any AWS_*
        variable, plus loopback settings, dummy credentials and `extra_env`."""
        env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
        python_path = [str(REPO_ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
        env.update({
            "BIND_HOST": "127.0.0.1",
            "GATEWAY_PORT": str(self.port),
            "TMPDIR": str(self.workdir / "tmp"),
            "STATE_DIR": str(self.workdir / "state"),
            "MINISTACK_REGION": self.region,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_ACCESS_KEY,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            # Keeps SDKs in functions from probing the instance metadata address.
            "AWS_EC2_METADATA_DISABLED": "true",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "PYTHONPATH": os.pathsep.join(python_path),
            "PYTHONUNBUFFERED": "1",
            # MiniStack binds its IoT mTLS listener to 0.0.0.0 when enabled.
            "IOT_MTLS_ENABLED": "0",
        })
        env.update(self.extra_env)
        return env

    def start(self):
        """Start the server and wait until its health check returns 200. Returns self."""
        if self._process is not None:
            raise EmulatorError(f"emulator already running with pid {self.pid}")
        self.port = self.port or free_port()
        for folder in (self.workdir, self.workdir / "tmp", self.workdir / "state"):
            folder.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                [self.python, "-m", self.server_module],
                cwd=REPO_ROOT,
                env=self.server_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid = self._process.pid
        try:
            self._wait_until_healthy()
        except BaseException:
            self.stop()
            raise
        logger.info("emulator pid %d serving %s after %.1f s", self.pid, self.endpoint_url,
                    time.monotonic() - started)
        return self

    def _wait_until_healthy(self):
        # No proxy: the health check goes straight to 127.0.0.1.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise EmulatorError(
                    f"emulator exited with status {self._process.returncode} during startup; "
                    f"see {self.log_path}:\n{self.log_tail()}"
                )
            try:
                with opener.open(self.endpoint_url + HEALTH_PATH, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        raise EmulatorError(
            f"emulator health check {HEALTH_PATH} timed out after {self.startup_timeout:.0f} s; "
            f"see {self.log_path}:\n{self.log_tail()}"
        )

    def stop(self, timeout=10.0):
        """Stop the server and every process left in its process group. Safe to
        call more than once."""
        if self.pid is None:
            return
        stop_process_group(self.pid, timeout)
        if self._process is not None:
            self._process.wait()
            self._process = None
        logger.info("emulator pid %d stopped", self.pid)
        self.pid = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def log_tail(self, max_bytes=4000):
        """Return the end of the server's log."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(0, os.SEEK_END)
                log.seek(max(0, log.tell() - max_bytes))
                return log.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    def client(self, service, **kwargs):
        """Return a boto3 client for `service` at this emulator, with dummy
        credentials and path-style S3 addressing (a bucket name cannot become a
        subdomain of 127.0.0.1)."""
        import boto3
        from botocore.config import Config

        session = boto3.session.Session(
            aws_access_key_id=DUMMY_ACCESS_KEY_ID,
            aws_secret_access_key=DUMMY_SECRET_ACCESS_KEY,
            region_name=self.region,
        )
        kwargs.setdefault("config", Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}))
        return session.client(service, endpoint_url=self.endpoint_url, **kwargs)
