"""The DSQL stand-in accepts the IAM auth tokens DSQL accepts and rejects the
others. Tokens come from botocore's DSQL token generator, as an application's
would."""

import datetime
import subprocess
from unittest import mock

import boto3
import psycopg
import pytest

from conftest import TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY

REGION = "us-east-1"


def make_token(host, *, admin, access_key=TEST_ACCESS_KEY_ID, secret_key=TEST_SECRET_ACCESS_KEY,
               session_token=None, region=REGION, expires_in=900, signed_at=None):
    """Return a DSQL auth token made by botocore, signed at `signed_at` (an
    aware UTC datetime, default now)."""
    client = boto3.client(
        "dsql",
        region_name=region,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        aws_session_token=session_token,
        # Token generation is local; the endpoint is never contacted.
        endpoint_url="http://127.0.0.1:9",
    )
    generate = client.generate_db_connect_admin_auth_token if admin else client.generate_db_connect_auth_token
    if signed_at is None:
        return generate(host, region, ExpiresIn=expires_in)
    with mock.patch("botocore.auth.get_current_datetime", return_value=signed_at.replace(tzinfo=None)):
        return generate(host, region, ExpiresIn=expires_in)


def current_user(standin, role, token, **overrides):
    """Log in and return the session's current_user."""
    with psycopg.connect(**{**standin.connect_kwargs(role, token), **overrides}) as connection:
        return connection.execute("SELECT current_user").fetchone()[0]


def assert_login_rejected(standin, role, token, **overrides):
    """Attempt a login that must fail and return the client's error message."""
    with pytest.raises(psycopg.OperationalError) as raised:
        current_user(standin, role, token, **overrides)
    return str(raised.value)


def verifier_rejection(standin, role, token):
    """Attempt a login that the token verifier must reject and return the
    reason it wrote to PostgreSQL's log."""
    log_offset = standin.log_path.stat().st_size
    message = assert_login_rejected(standin, role, token)
    assert "PAM authentication failed" in message
    with open(standin.log_path, encoding="utf-8", errors="replace") as log:
        log.seek(log_offset)
        reasons = [line for line in log.read().splitlines() if line.startswith("dsql-standin verifier:")]
    assert len(reasons) == 1
    return reasons[0]


def test_admin_token_logs_in_as_admin(standin):
    """A DbConnectAdmin token logs in as the admin role over verify-full TLS."""
    token = make_token(standin.host, admin=True)
    assert current_user(standin, "admin", token) == "admin"


def test_connect_token_logs_in_as_app_role(standin):
    """A DbConnect token logs in as a role other than admin."""
    token = make_token(standin.host, admin=False)
    assert current_user(standin, "app_user", token) == "app_user"


def test_token_with_session_token_logs_in(standin):
    """A token signed with temporary credentials carries X-Amz-Security-Token and
    exceeds pam_exec's 512-byte limit; the stand-in still checks it."""
    token = make_token(standin.host, admin=False, session_token="FQoGZXIvYXdzE" + "x" * 900)
    assert len(token) > 1000
    assert current_user(standin, "app_user", token) == "app_user"


def test_token_signed_by_emulator_credentials_logs_in(standin):
    """Tokens signed with the credentials MiniStack gives its functions (access
    key = account id, secret key `test`) are accepted by default."""
    token = make_token(standin.host, admin=True, access_key="000000000000", secret_key="test")
    assert current_user(standin, "admin", token) == "admin"


def test_changed_signature_rejected(standin):
    token = make_token(standin.host, admin=True)
    last = token[-1]
    tampered = token[:-1] + ("0" if last != "0" else "1")
    assert "signature does not match" in verifier_rejection(standin, "admin", tampered)


def test_changed_expiry_rejected(standin):
    """X-Amz-Expires is signed, so extending it breaks the signature."""
    token = make_token(standin.host, admin=True, expires_in=900)
    assert "X-Amz-Expires=900&" in token
    extended = token.replace("X-Amz-Expires=900&", "X-Amz-Expires=3600&")
    assert "signature does not match" in verifier_rejection(standin, "admin", extended)


def test_expired_token_rejected(standin):
    signed_at = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=960)
    token = make_token(standin.host, admin=True, expires_in=900, signed_at=signed_at)
    assert "token expired" in verifier_rejection(standin, "admin", token)


def test_token_within_expiry_logs_in(standin):
    """A token signed 10 minutes ago with a 15-minute lifetime is still valid."""
    signed_at = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=600)
    token = make_token(standin.host, admin=True, expires_in=900, signed_at=signed_at)
    assert current_user(standin, "admin", token) == "admin"


def test_token_from_future_rejected(standin):
    """A signing time beyond the allowed clock skew (5 minutes) is rejected."""
    signed_at = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    token = make_token(standin.host, admin=True, signed_at=signed_at)
    assert "allowed clock skew" in verifier_rejection(standin, "admin", token)


def test_lifetime_above_one_week_rejected(standin):
    """DSQL tokens live at most 604,800 seconds."""
    token = make_token(standin.host, admin=True, expires_in=604_801)
    assert "X-Amz-Expires '604801'" in verifier_rejection(standin, "admin", token)


def test_connect_token_for_admin_rejected(standin):
    """The admin role needs DbConnectAdmin; a DbConnect token does not do."""
    token = make_token(standin.host, admin=False)
    assert "needs 'DbConnectAdmin'" in verifier_rejection(standin, "admin", token)


def test_admin_token_for_app_role_rejected(standin):
    """A role other than admin needs DbConnect."""
    token = make_token(standin.host, admin=True)
    assert "needs 'DbConnect'" in verifier_rejection(standin, "app_user", token)


def test_token_for_other_host_rejected(standin):
    """A token is valid only for the hostname it was signed for."""
    token = make_token("abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws", admin=True)
    assert "signed for host" in verifier_rejection(standin, "admin", token)


def test_token_for_other_region_rejected(standin):
    token = make_token(standin.host, admin=True, region="eu-west-1")
    assert "credential region" in verifier_rejection(standin, "admin", token)


def test_unknown_access_key_rejected(standin):
    token = make_token(standin.host, admin=True, access_key="AKIDUNKNOWN", secret_key="whatever")
    assert "unknown access key id" in verifier_rejection(standin, "admin", token)


def test_plain_password_rejected(standin):
    assert "malformed token" in verifier_rejection(standin, "admin", "not-a-token")


def test_connection_without_tls_rejected(standin):
    """DSQL takes TLS connections only: a plaintext connection is turned away
    whatever its password."""
    token = make_token(standin.host, admin=True)
    message = assert_login_rejected(standin, "admin", token, sslmode="disable")
    assert "no encryption" in message


def test_certificate_verifies_for_ip_address(standin):
    """The server certificate names 127.0.0.1 too, so verify-full passes when a
    client connects by address."""
    token = make_token("127.0.0.1", admin=True)
    with pytest.raises(psycopg.OperationalError) as raised:
        # Host 127.0.0.1 in the certificate check; the token is for another
        # host, so the login itself fails after the TLS handshake.
        current_user(standin, "admin", token, host="127.0.0.1")
    assert "PAM authentication failed" in str(raised.value)


def test_certificate_rejected_with_other_ca(standin, tmp_path):
    """verify-full against a CA other than the test CA fails the handshake."""
    other_ca = tmp_path / "other-ca.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(tmp_path / "other-ca.key"), "-out", str(other_ca), "-days", "1", "-subj", "/CN=Other CA"],
        check=True, capture_output=True,
    )
    token = make_token(standin.host, admin=True)
    message = assert_login_rejected(standin, "admin", token, sslrootcert=str(other_ca))
    assert "certificate verify failed" in message


def test_log_has_reason_without_token(standin):
    """A rejected login leaves the reason in PostgreSQL's log, never the token."""
    token = make_token(standin.host, admin=False)
    assert "role 'admin'" in verifier_rejection(standin, "admin", token)
    log = standin.log_path.read_text(encoding="utf-8", errors="replace")
    assert token not in log
    assert token.split("X-Amz-Signature=")[1] not in log


def test_run_sql_as_superuser(standin):
    roles = standin.run_sql("SELECT rolname FROM pg_roles WHERE rolname IN ('admin', 'app_user') ORDER BY 1")
    assert roles.split() == ["admin", "app_user"]


def test_admin_can_create_table_in_public(standin):
    token = make_token(standin.host, admin=True)
    with psycopg.connect(**standin.connect_kwargs("admin", token)) as connection:
        connection.execute("CREATE TABLE IF NOT EXISTS standin_probe (id uuid PRIMARY KEY DEFAULT gen_random_uuid())")
        connection.execute("INSERT INTO standin_probe DEFAULT VALUES")
    assert standin.run_sql("SELECT count(*) > 0 FROM standin_probe").strip() == "t"


def test_server_restarts_on_same_port(standin):
    """stop_server() makes connections fail; start_server() brings the server
    back on the same port with the same CA."""
    port = standin.port
    token = make_token(standin.host, admin=True)
    standin.stop_server()
    try:
        message = assert_login_rejected(standin, "admin", token)
        assert "Connection refused" in message
    finally:
        standin.start_server()
    assert standin.port == port
    assert current_user(standin, "admin", token) == "admin"
