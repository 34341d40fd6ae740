"""`python -m localenv start|stop` brings up both servers for a shell and takes
them down again, leaving nothing behind."""

import json
import shlex
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import boto3
import psycopg

from localenv.emulator import REPO_ROOT


def run_cli(*arguments):
    return subprocess.run(
        [sys.executable, "-m", "localenv", *arguments],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=True,
    )


def parse_exports(output):
    """Return the variables of `export NAME=value` lines."""
    variables = {}
    for line in output.splitlines():
        words = shlex.split(line)
        assert words[0] == "export"
        name, _separator, value = words[1].partition("=")
        variables[name] = value
    return variables


def port_is_open(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_cli_start_and_stop(tmp_path):
    folder = tmp_path / "env"
    started = run_cli("start", str(folder))
    variables = parse_exports(started.stdout)
    state = json.loads((folder / "localenv.json").read_text())
    standin_root = Path(state["standin"]["root_dir"])
    pam_file = Path("/etc/pam.d") / state["standin"]["pam_service"]
    try:
        assert variables["AWS_ENDPOINT_URL"] == f"http://127.0.0.1:{state['emulator']['port']}"
        no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with no_proxy.open(variables["AWS_ENDPOINT_URL"] + "/_ministack/health", timeout=5) as response:
            assert response.status == 200

        # The exported dummy credentials sign tokens the stand-in accepts.
        dsql = boto3.client(
            "dsql", region_name=variables["AWS_REGION"], endpoint_url=variables["AWS_ENDPOINT_URL"],
            aws_access_key_id=variables["AWS_ACCESS_KEY_ID"], aws_secret_access_key=variables["AWS_SECRET_ACCESS_KEY"],
        )
        token = dsql.generate_db_connect_admin_auth_token(variables["DSQL_STANDIN_HOST"], variables["AWS_REGION"])
        with psycopg.connect(
            host=variables["DSQL_STANDIN_HOST"], hostaddr="127.0.0.1", port=variables["DSQL_STANDIN_PORT"],
            dbname="postgres", user="admin", password=token,
            sslmode="verify-full", sslrootcert=variables["DSQL_STANDIN_CA"],
        ) as connection:
            assert connection.execute("SELECT current_user").fetchone()[0] == "admin"
    finally:
        run_cli("stop", str(folder))

    assert not port_is_open(state["emulator"]["port"])
    assert not port_is_open(state["standin"]["port"])
    assert not pam_file.exists()
    assert not standin_root.exists()
    assert not (folder / "localenv.json").exists()
