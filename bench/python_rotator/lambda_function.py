"""Secrets Manager rotation function for an Aurora DSQL IAM auth token, in Python.

It exists only so that the benchmark can compare the Rust rotator with the
usual Python route. It has the structure of the common Secrets Manager rotation
templates for PostgreSQL: `lambda_handler` checks the event against the
secret's versions and calls `create_secret`, `set_secret`, `test_secret` or
`finish_secret`. It follows the same protocol as the Rust rotator and makes the
same Secrets Manager calls: the token comes from botocore's DSQL token
generator, and `test_secret` logs in with psycopg over TLS verify-full and runs
`SELECT 1`.

The clients are built once per execution environment, as in the Rust rotator.
The templates build them in every invocation, which costs a warm invocation
more time than here.
"""

import datetime
import json
import logging
import os
import tempfile
import time

import boto3
import botocore
import psycopg
from botocore.exceptions import ClientError

# Lambda's Python runtime gives the root logger a handler that writes to the
# function's log, so basicConfig does nothing there. MiniStack's Python worker
# adds none, and basicConfig then adds one that writes to stderr, which
# MiniStack forwards to the function's log group.
logging.basicConfig(level=logging.INFO)
logger = logging.getLogger()
logger.setLevel(logging.INFO)

AWSCURRENT = "AWSCURRENT"
AWSPENDING = "AWSPENDING"
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")

# DSQL accepts tokens that live up to 7 days.
MAX_TOKEN_LIFETIME_SECONDS = 604_800
# The Rust rotator's defaults: 12 hours per token, and 5 hours (rate(4 hours)
# plus a 1 hour window) until the next rotation replaces it.
DEFAULT_TOKEN_LIFETIME_SECONDS = 43_200
DEFAULT_ROTATION_PERIOD_SECONDS = 18_000
CONNECT_TIMEOUT_SECONDS = 10
STATEMENT_TIMEOUT_MILLISECONDS = 5_000
DEFAULT_PORT = 5432
DEFAULT_DBNAME = "postgres"


def _seconds_setting(name, default):
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or not 1 <= int(text) <= MAX_TOKEN_LIFETIME_SECONDS:
        raise ValueError(f"{name}={text} is invalid: expected 1 to {MAX_TOKEN_LIFETIME_SECONDS} seconds")
    return int(text)


def _root_certificates():
    """Write the trusted roots for the login test to a file and return its path.

    The roots are botocore's bundled Mozilla set, which contains Amazon Root
    CA 1, plus the file that SSL_CERT_FILE names, if any. The Rust rotator
    trusts the same two sources.
    """
    bundle = os.path.join(os.path.dirname(botocore.__file__), "cacert.pem")
    with open(bundle, "rb") as source:
        roots = source.read()
    extra = os.environ.get("SSL_CERT_FILE")
    if extra:
        with open(extra, "rb") as source:
            roots += b"\n" + source.read()
    descriptor, path = tempfile.mkstemp(prefix="dsql-roots-", suffix=".pem")
    with os.fdopen(descriptor, "wb") as target:
        target.write(roots)
    return path


TOKEN_LIFETIME_SECONDS = _seconds_setting("TOKEN_LIFETIME_SECONDS", DEFAULT_TOKEN_LIFETIME_SECONDS)
ROTATION_PERIOD_SECONDS = _seconds_setting("ROTATION_PERIOD_SECONDS", DEFAULT_ROTATION_PERIOD_SECONDS)
if TOKEN_LIFETIME_SECONDS <= ROTATION_PERIOD_SECONDS:
    raise ValueError(
        f"TOKEN_LIFETIME_SECONDS={TOKEN_LIFETIME_SECONDS} must exceed "
        f"ROTATION_PERIOD_SECONDS={ROTATION_PERIOD_SECONDS}"
    )
ROOT_CERTIFICATES = _root_certificates()
secrets_manager = boto3.client("secretsmanager")
dsql = boto3.client("dsql")


def lambda_handler(event, context):
    """Check the event against the secret's versions and run its step.

    Rotation must be enabled and the ClientRequestToken must be a version
    of the secret with a staging label. A version that is already AWSCURRENT
    needs no work, and any other version must be AWSPENDING.
    """
    secret_id = event.get("SecretId") or ""
    version_id = event.get("ClientRequestToken") or ""
    step = event.get("Step")
    if not secret_id.strip() or not version_id.strip():
        raise ValueError("event fields SecretId and ClientRequestToken must not be empty")
    if step not in STEPS:
        raise ValueError(f"event field Step is {step!r}, expected one of {', '.join(STEPS)}")

    metadata = secrets_manager.describe_secret(SecretId=secret_id)
    if not metadata.get("RotationEnabled"):
        raise ValueError(f"rotation is not enabled for secret {secret_id}")
    stages = metadata.get("VersionIdsToStages", {})
    if version_id not in stages:
        raise ValueError(f"ClientRequestToken {version_id} is not a version of secret {secret_id}")
    labels = stages[version_id]
    if not labels:
        raise ValueError(f"version {version_id} of secret {secret_id} has no staging label")
    if AWSCURRENT in labels:
        logger.info("version %s of %s is already AWSCURRENT; nothing to do", version_id, secret_id)
        return
    if AWSPENDING not in labels:
        raise ValueError(f"version {version_id} of secret {secret_id} is not AWSPENDING")

    if step == "createSecret":
        create_secret(secret_id, version_id)
    elif step == "setSecret":
        set_secret(secret_id, version_id)
    elif step == "testSecret":
        test_secret(secret_id, version_id)
    else:
        finish_secret(secret_id, version_id, stages)
    logger.info("%s finished for version %s of %s", step, version_id, secret_id)


def create_secret(secret_id, version_id):
    """Fill the AWSPENDING version with a new token and a copy of the other
    AWSCURRENT fields, unless an earlier attempt already did."""
    current = parse_secret(secret_value(secret_id, AWSCURRENT), AWSCURRENT)
    if secret_value(secret_id, AWSPENDING, version_id) is not None:
        logger.info("version %s already has an AWSPENDING value; keeping it", version_id)
        return

    signed_at = time.time()
    token = generate_token(current["host"], current["username"])
    expires_at = signed_at + TOKEN_LIFETIME_SECONDS
    if expires_at < signed_at + ROTATION_PERIOD_SECONDS:
        raise ValueError("the new token would expire before the next rotation replaces it")
    value = dict(current["fields"], password=token, expires_at=format_time(expires_at))
    secrets_manager.put_secret_value(
        SecretId=secret_id,
        ClientRequestToken=version_id,
        SecretString=json.dumps(value),
        VersionStages=[AWSPENDING],
    )
    logger.info("stored a new token as AWSPENDING for version %s, expiring at %s",
                version_id, format_time(expires_at))


def set_secret(secret_id, version_id):
    """Do nothing: DSQL checks IAM auth tokens itself, so no password is set
    on the database."""
    logger.info("nothing to set for version %s: DSQL checks IAM auth tokens itself", version_id)


def test_secret(secret_id, version_id):
    """Log in with the AWSPENDING token over TLS verify-full and run SELECT 1."""
    text = secret_value(secret_id, AWSPENDING, version_id)
    if text is None:
        raise ValueError(f"version {version_id} has no AWSPENDING value; run createSecret first")
    pending = parse_secret(text, AWSPENDING)
    password = pending["fields"].get("password")
    if not password:
        raise ValueError(f"the AWSPENDING value of version {version_id} has no password field")
    check_not_expiring(pending["fields"].get("expires_at"), version_id)

    with psycopg.connect(
        host=pending["host"],
        port=pending["port"],
        user=pending["username"],
        password=password,
        dbname=pending["dbname"],
        sslmode="verify-full",
        sslrootcert=ROOT_CERTIFICATES,
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        application_name="dsql-token-rotator-python",
        options=f"-c statement_timeout={STATEMENT_TIMEOUT_MILLISECONDS}",
    ) as connection:
        (result,) = connection.execute("SELECT 1").fetchone()
    if result != 1:
        raise ValueError(f"SELECT 1 returned {result!r}")
    logger.info("the AWSPENDING token of version %s logged in to %s as %s",
                version_id, pending["host"], pending["username"])


def finish_secret(secret_id, version_id, stages):
    """Move AWSCURRENT to the new version, then remove its AWSPENDING label."""
    previous = next((version for version, labels in stages.items() if AWSCURRENT in labels), None)
    if previous == version_id:
        return
    arguments = {"SecretId": secret_id, "VersionStage": AWSCURRENT, "MoveToVersionId": version_id}
    if previous:
        arguments["RemoveFromVersionId"] = previous
    secrets_manager.update_secret_version_stage(**arguments)
    logger.info("moved AWSCURRENT from version %s to %s", previous, version_id)
    secrets_manager.update_secret_version_stage(
        SecretId=secret_id, VersionStage=AWSPENDING, RemoveFromVersionId=version_id,
    )


def secret_value(secret_id, stage, version_id=None):
    """Return a version's SecretString, or None when the version has no value."""
    arguments = {"SecretId": secret_id, "VersionStage": stage}
    if version_id:
        arguments["VersionId"] = version_id
    try:
        return secrets_manager.get_secret_value(**arguments).get("SecretString")
    except ClientError as error:
        if error.response["Error"]["Code"] == "ResourceNotFoundException":
            return None
        raise


def parse_secret(text, stage):
    """Parse and validate a secret value as the Rust rotator does: engine
    postgres, username and host present, port a number or a string of digits."""
    try:
        fields = json.loads(text)
    except (TypeError, json.JSONDecodeError) as error:
        raise ValueError(f"the {stage} value is not valid JSON: {error.msg}") from None
    if not isinstance(fields, dict):
        raise ValueError(f"the {stage} value is not a JSON object")
    if fields.get("engine") != "postgres":
        raise ValueError(f"the {stage} value has engine {fields.get('engine')!r}, expected 'postgres'")
    for field in ("username", "host"):
        if not isinstance(fields.get(field), str) or not fields[field].strip():
            raise ValueError(f"the {stage} value has no {field}")
    port = fields.get("port", DEFAULT_PORT)
    if not str(port).strip().isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"the {stage} value has port {port!r}, expected 1 to 65535")
    return {
        "fields": fields,
        "username": fields["username"],
        "host": fields["host"],
        "port": int(port),
        "dbname": fields.get("dbname") or DEFAULT_DBNAME,
    }


def generate_token(host, username):
    """Sign a DbConnectAdmin token for `admin` and a DbConnect token otherwise."""
    region = signing_region(host)
    if username.lower() == "admin":
        return dsql.generate_db_connect_admin_auth_token(host, region, TOKEN_LIFETIME_SECONDS)
    return dsql.generate_db_connect_auth_token(host, region, TOKEN_LIFETIME_SECONDS)


def signing_region(host):
    """Return the region of a `<cluster-id>.dsql.<region>.on.aws` host, or the
    function's own region for any other host (a PrivateLink name has
    `dsql-xxxx` as its second label)."""
    labels = host.rstrip(".").split(".")
    if len(labels) == 5 and labels[3:] == ["on", "aws"] and labels[1].startswith("dsql"):
        return labels[2]
    return dsql.meta.region_name


def check_not_expiring(expires_at, version_id):
    """Reject a pending token that an earlier createSecret stored so long ago
    that it no longer outlives the next rotation."""
    if not expires_at:
        return
    expiry = datetime.datetime.strptime(expires_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    if expiry.timestamp() < time.time() + ROTATION_PERIOD_SECONDS:
        raise ValueError(f"the AWSPENDING token of version {version_id} expires at {expires_at}, "
                         "before the next rotation can replace it")


def format_time(seconds):
    """Format a Unix time as RFC 3339 in UTC, as the Rust rotator does."""
    return datetime.datetime.fromtimestamp(int(seconds), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
