"""`deployer verify`, `psql` and `schema apply` against the DSQL stand-in,
logging in with the token that the deployed rotator stored in the secret."""

import json
import stat
import time

import pytest

from deployer_cli import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_OK,
    REPO_ROOT,
    build_deployer,
    deployer_env,
    local_settings,
    rotator_binary,
    run_deployer,
)
from localenv.emulator import Emulator
from localenv.standin import DsqlStandin

STACK = "db-commands"

# schema.sql with plain CREATE INDEX, because CREATE INDEX ASYNC is DSQL
# syntax and the stand-in is PostgreSQL 15. Comments, a string and a
# dollar-quoted string with semicolons inside check the statement splitter.
SCHEMA_SUFFIX = """
-- A comment; with a semicolon.
COMMENT ON TABLE customers IS 'Customers; one row per person';
/* block; comment */ SELECT $tag$ not; a split $tag$ AS note;
"""


@pytest.fixture(scope="module")
def environment(tmp_path_factory):
    """The stand-in, an emulator whose functions trust its CA, and a stack
    whose first rotation stored a token."""
    build_deployer()
    binary = rotator_binary(tmp_path_factory.mktemp("rotator"))
    with DsqlStandin() as standin:
        workdir = tmp_path_factory.mktemp("db-emulator")
        with Emulator(workdir, extra_env={"SSL_CERT_FILE": str(standin.ca_path)}) as emulator:
            env = deployer_env(emulator.endpoint_url)
            env.pop("SSL_CERT_FILE", None)
            result = run_deployer(["up", *local_settings(STACK, standin), "--rotator-binary", binary,
                                   "--output", "json"], env=env)
            assert result.returncode == EXIT_OK, result.stderr
            secret_arn = json.loads(result.stdout)["outputs"]["SecretArn"]
            wait_for_token(emulator, secret_arn)
            yield emulator, standin, env, secret_arn


def wait_for_token(emulator, secret_arn):
    secrets = emulator.client("secretsmanager")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        password = json.loads(secrets.get_secret_value(SecretId=secret_arn)["SecretString"])["password"]
        if "X-Amz-Signature=" in password:
            return
        time.sleep(1)
    raise AssertionError(f"the first rotation of {secret_arn} stored no token within 90 s")


def current_password(emulator, secret_arn):
    value = emulator.client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"]
    return json.loads(value)["password"]


def deployer(environment, *args, psql_arguments=(), env=None, ca=True):
    """Run the deployer on the module's stack; `psql_arguments` go after `--`."""
    _, standin, default_env, _ = environment
    flags = ["--ca-file", str(standin.ca_path)] if ca else []
    trailing = ["--", *psql_arguments] if psql_arguments else []
    return run_deployer([*args, *local_settings(STACK, standin), *flags, *trailing], env=env or default_env)


def test_verify_logs_in(environment):
    _, standin, _, _ = environment

    result = deployer(environment, "verify", "--output", "json")

    assert result.returncode == EXIT_OK, result.stderr
    document = json.loads(result.stdout)
    assert document["user"] == "admin"
    assert document["host"] == standin.host
    assert document["port"] == standin.port
    assert document["dbname"] == "postgres"


def test_verify_rejects_untrusted_server(environment):
    """Without the test CA the server's certificate does not verify, and
    nothing retries with weaker TLS."""
    result = deployer(environment, "verify", ca=False)

    assert result.returncode == EXIT_FAILED, result.stderr
    assert f"cannot connect to admin@{environment[1].host}" in result.stderr
    assert "certificate" in result.stderr.lower()
    assert "pass its CA file with --ca-file" in result.stderr


def test_schema_apply_runs_each_statement(environment, tmp_path):
    _, standin, _, _ = environment
    schema = (REPO_ROOT / "schema.sql").read_text().replace("CREATE INDEX ASYNC", "CREATE INDEX")
    path = tmp_path / "schema.sql"
    path.write_text(schema + SCHEMA_SUFFIX)

    result = deployer(environment, "schema", "apply", str(path), "--output", "json")

    assert result.returncode == EXIT_OK, result.stderr
    document = json.loads(result.stdout)
    assert document["statements"] == 7
    assert document["index_jobs"] == []
    tables = standin.run_sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1;").split()
    assert tables == ["addresses", "customers"]
    indexes = standin.run_sql("SELECT indexname FROM pg_indexes WHERE indexname LIKE '%_idx' ORDER BY 1;").split()
    assert indexes == ["addresses_city_idx", "customers_first_name_idx", "customers_last_name_idx"]
    comment = standin.run_sql("SELECT obj_description('customers'::regclass);").strip()
    assert comment == "Customers; one row per person"


def test_schema_apply_stops_at_failure(environment, tmp_path):
    _, standin, _, _ = environment
    path = tmp_path / "broken.sql"
    path.write_text("CREATE TABLE first_ok (id int);\n\nCREATE TABLE broken (id no_such_type);\n"
                    "CREATE TABLE never_run (id int);\n")

    result = deployer(environment, "schema", "apply", str(path), "--output", "json")

    assert result.returncode == EXIT_FAILED, result.stderr
    message = json.loads(result.stdout)["error"]["message"]
    assert "statement 2 (line 3) failed" in message
    assert "statement 1 was applied" in message
    assert "no_such_type" in message
    assert "CREATE TABLE broken (id no_such_type)" in message
    tables = standin.run_sql("SELECT tablename FROM pg_tables WHERE tablename IN "
                             "('first_ok', 'broken', 'never_run');").split()
    assert tables == ["first_ok"]


def test_psql_passes_token_in_environment(environment, tmp_path):
    """A stand-in psql records its arguments and environment, so the test
    can check that the token is in PGPASSWORD and not on the command line."""
    emulator, standin, env, secret_arn = environment
    record = tmp_path / "record.json"
    fake_psql = tmp_path / "psql"
    fake_psql.write_text(
        "#!/usr/bin/env python3\n"
        "import json, os, sys\n"
        f"json.dump({{'argv': sys.argv, 'env': dict(os.environ)}}, open({str(record)!r}, 'w'))\n"
    )
    fake_psql.chmod(fake_psql.stat().st_mode | stat.S_IXUSR)

    result = deployer(environment, "psql", psql_arguments=["-c", "SELECT 1"], env={**env, "PSQL": str(fake_psql)})

    assert result.returncode == EXIT_OK, result.stderr
    recorded = json.loads(record.read_text())
    password = current_password(emulator, secret_arn)
    assert recorded["argv"][1:] == ["-c", "SELECT 1"]
    assert all(password not in argument for argument in recorded["argv"])
    assert recorded["env"]["PGPASSWORD"] == password
    assert recorded["env"]["PGSSLMODE"] == "verify-full"
    assert recorded["env"]["PGSSLROOTCERT"] == str(standin.ca_path)
    assert recorded["env"]["PGHOST"] == standin.host
    assert recorded["env"]["PGUSER"] == "admin"
    assert password not in result.stdout + result.stderr


def test_psql_runs_query(environment):
    result = deployer(environment, "psql", psql_arguments=["-X", "-tAc", "SELECT current_user"])

    assert result.returncode == EXIT_OK, result.stderr
    assert result.stdout.strip() == "admin"


def test_psql_exit_status_passes_through(environment):
    """`psql` replaces the deployer's process, so psql's own exit status and
    error output reach the caller unchanged."""
    result = deployer(environment, "psql", psql_arguments=["-X", "-c", "SELECT * FROM no_such_table"])

    assert result.returncode == 1, result.stderr
    assert "no_such_table" in result.stderr


def test_schema_apply_missing_file_is_bad_input(environment, tmp_path):
    missing = tmp_path / "no-such.sql"

    result = deployer(environment, "schema", "apply", str(missing), "--output", "json")

    assert result.returncode == EXIT_BAD_INPUT, result.stderr
    assert f"cannot read {missing}" in result.stderr
    assert json.loads(result.stdout)["error"]["kind"] == "bad_input"


def test_schema_apply_rejects_unclosed_comment(environment, tmp_path):
    """An unclosed block comment would swallow every statement after it, so
    the file is rejected before anything runs."""
    _, standin, _, _ = environment
    path = tmp_path / "unclosed.sql"
    path.write_text("CREATE TABLE before_comment (id int);\n/* never closed;\nCREATE TABLE after_comment (id int);\n")

    result = deployer(environment, "schema", "apply", str(path))

    assert result.returncode == EXIT_BAD_INPUT, result.stderr
    assert "the block comment that starts on line 2 is not closed" in result.stderr
    tables = standin.run_sql("SELECT tablename FROM pg_tables WHERE tablename = 'before_comment';").split()
    assert tables == []
