"""Start or stop the local test environment from a shell.

    python -m localenv start DIR   start the DSQL stand-in and the emulator, record
                                   them in DIR/localenv.json and print their
                                   endpoints as shell `export` lines
    python -m localenv stop DIR    stop both and remove the stand-in's folder

Typical use: `eval "$(.venv/bin/python -m localenv start target/localenv)"`.
Log lines go to stderr, so only the export lines reach stdout.
"""

import argparse
import json
import logging
import shlex
import sys
from pathlib import Path

from localenv.emulator import (
    DUMMY_ACCESS_KEY_ID,
    DUMMY_SECRET_ACCESS_KEY,
    Emulator,
    stop_process_group,
)
from localenv.standin import EMULATOR_FUNCTION_CREDENTIALS, DsqlStandin

STATE_FILE_NAME = "localenv.json"
EMULATOR_MODULE = "localenv.serve"

logger = logging.getLogger("localenv")


def parse_arguments(argv):
    parser = argparse.ArgumentParser(prog="python -m localenv", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    start = commands.add_parser("start", help="start the emulator and the DSQL stand-in")
    start.add_argument("folder", type=Path, help="folder for the emulator's files and the state file")
    start.add_argument("--region", default="us-east-1", help="AWS region of the emulator and of the tokens (default: %(default)s)")
    start.add_argument("--hostname", default="localhost",
                       help="hostname that DSQL tokens must be signed for and clients connect to (default: %(default)s)")
    start.add_argument("--credential", action="append", default=[], metavar="KEY_ID=SECRET",
                       help="another access key id and secret key whose tokens the stand-in accepts; repeatable")

    stop = commands.add_parser("stop", help="stop what `start` started in FOLDER")
    stop.add_argument("folder", type=Path, help="folder given to `start`")
    return parser.parse_args(argv)


def accepted_credentials(extra):
    """Return the credentials the stand-in accepts: those of the emulator's
    functions, the dummy ones exported for the shell, and `extra`."""
    credentials = dict(EMULATOR_FUNCTION_CREDENTIALS)
    credentials[DUMMY_ACCESS_KEY_ID] = DUMMY_SECRET_ACCESS_KEY
    for item in extra:
        key_id, separator, secret = item.partition("=")
        if not separator or not key_id or not secret:
            raise SystemExit(f"invalid --credential {item!r}: expected KEY_ID=SECRET")
        credentials[key_id] = secret
    return credentials


def export_lines(emulator, standin):
    variables = {
        "AWS_ENDPOINT_URL": emulator.endpoint_url,
        "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_ACCESS_KEY,
        "AWS_REGION": emulator.region,
        "AWS_DEFAULT_REGION": emulator.region,
        "DSQL_STANDIN_HOST": standin.host,
        "DSQL_STANDIN_PORT": str(standin.port),
        "DSQL_STANDIN_CA": str(standin.ca_path),
    }
    return [f"export {name}={shlex.quote(value)}" for name, value in variables.items()]


def start(folder, region, hostname, credentials):
    state_path = folder / STATE_FILE_NAME
    if state_path.exists():
        raise SystemExit(f"{state_path} exists: the environment may still be running. "
                         f"Run `python -m localenv stop {folder}` first.")
    folder.mkdir(parents=True, exist_ok=True)
    standin = DsqlStandin(hostname=hostname, region=region, credentials=credentials).start()
    try:
        # Functions inherit the emulator's environment, so this makes the
        # rotator trust the stand-in's test CA.
        emulator = Emulator(folder / "emulator", region=region,
                            extra_env={"SSL_CERT_FILE": str(standin.ca_path)}).start()
    except BaseException:
        standin.stop()
        raise
    state = {
        "emulator": {"pid": emulator.pid, "port": emulator.port, "log_path": str(emulator.log_path)},
        "standin": standin.to_dict(),
    }
    state_path.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    print("\n".join(export_lines(emulator, standin)))


def _is_emulator_process(pid):
    """Return whether `pid` still runs the emulator, so that a stale pid from an
    earlier run never gets a signal."""
    try:
        command_line = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return EMULATOR_MODULE.encode() in command_line


def stop(folder):
    state_path = folder / STATE_FILE_NAME
    if not state_path.exists():
        raise SystemExit(f"{state_path} not found: nothing was started in {folder}.")
    state = json.loads(state_path.read_text(encoding="utf-8"))
    pid = state["emulator"]["pid"]
    if _is_emulator_process(pid):
        stop_process_group(pid)
        logger.info("emulator pid %d stopped", pid)
    else:
        logger.info("emulator pid %d is no longer running", pid)
    DsqlStandin.from_dict(state["standin"]).stop()
    state_path.unlink()


def main(argv=None):
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="localenv: %(message)s")
    arguments = parse_arguments(argv)
    if arguments.command == "start":
        start(arguments.folder.resolve(), arguments.region, arguments.hostname,
              accepted_credentials(arguments.credential))
    else:
        stop(arguments.folder.resolve())


if __name__ == "__main__":
    main()
