#!/usr/bin/env python3
"""Check an Aurora DSQL IAM auth token as DSQL does, for the PostgreSQL stand-in.

pam_script runs this file as `pam_script_auth` under the postgres user, with the
database role in PAM_USER and the password, which is the token, in PAM_AUTHTOK.
Exit status 0 accepts the login. Any other status rejects it, and the reason
goes to stderr, which is PostgreSQL's log. The token itself is never printed.

The configuration is a JSON file named verifier.json next to this script, with these keys:
  hostname                 the host the token must be signed for
  region                   the region of the token's credential scope
  credentials              accepted access key ids, each mapped to its secret key
  max_clock_skew_seconds   how far in the future X-Amz-Date may lie

A token is a SigV4 presigned URL without its scheme:
`<hostname>/?Action=DbConnectAdmin&X-Amz-Algorithm=...&X-Amz-Signature=...`,
with Action DbConnectAdmin for the role `admin` and DbConnect for any other
role, service `dsql`, and X-Amz-Expires of at most 604,800 seconds. The
signature is recomputed with botocore's SigV4 query signer, whose clock is set
to the token's X-Amz-Date, and compared with the token's.

This module must not import anything from the localenv package, because the
stand-in copies it on its own into a folder that the postgres user can read.
"""

import datetime
import hmac
import json
import os
import sys
from urllib.parse import parse_qsl, urlsplit

CONFIG_FILE_NAME = "verifier.json"
SERVICE = "dsql"
ALGORITHM = "AWS4-HMAC-SHA256"
MAX_EXPIRES_SECONDS = 604_800
SIGV4_TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"
REQUIRED_PARAMETERS = (
    "Action",
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
)
OPTIONAL_PARAMETERS = ("X-Amz-Security-Token",)


class TokenRejected(Exception):
    """The token is not valid for this login. The message gives the reason."""


def expected_action(role):
    """Return the DSQL action a token must carry to log in as `role`."""
    return "DbConnectAdmin" if role == "admin" else "DbConnect"


def parse_token(token):
    """Split a token into its host and its query parameters.

    Raises TokenRejected for a malformed token, a repeated parameter, an unknown
    parameter or a missing one.
    """
    host, slash, query = token.partition("/")
    if not slash or not query.startswith("?"):
        raise TokenRejected("malformed token: expected '<host>/?<query>'")
    try:
        pairs = parse_qsl(query[1:], keep_blank_values=True, strict_parsing=True)
    except ValueError as exc:
        raise TokenRejected(f"malformed token query: {exc}") from None

    parameters = {}
    for name, value in pairs:
        if name in parameters:
            raise TokenRejected(f"parameter {name} appears more than once")
        if name not in REQUIRED_PARAMETERS and name not in OPTIONAL_PARAMETERS:
            raise TokenRejected(f"unexpected parameter {name}")
        parameters[name] = value
    missing = [name for name in REQUIRED_PARAMETERS if name not in parameters]
    if missing:
        raise TokenRejected(f"missing parameters: {', '.join(missing)}")
    return host, parameters


def verify_token(token, role, config, now=None):
    """Check `token` for a login as `role`. Raise TokenRejected if it is invalid.

    `now` is an aware UTC datetime and defaults to the current time.
    """
    now = now or datetime.datetime.now(datetime.timezone.utc)
    host, parameters = parse_token(token)

    if host.lower() != config["hostname"].lower():
        raise TokenRejected(f"token is signed for host {host!r}, expected {config['hostname']!r}")
    action = expected_action(role)
    if parameters["Action"] != action:
        raise TokenRejected(f"token action is {parameters['Action']!r}, role {role!r} needs {action!r}")
    if parameters["X-Amz-Algorithm"] != ALGORITHM:
        raise TokenRejected(f"unsupported algorithm {parameters['X-Amz-Algorithm']!r}")
    if parameters["X-Amz-SignedHeaders"] != "host":
        raise TokenRejected(f"signed headers are {parameters['X-Amz-SignedHeaders']!r}, expected 'host'")

    try:
        signed_at = datetime.datetime.strptime(parameters["X-Amz-Date"], SIGV4_TIMESTAMP_FORMAT)
    except ValueError:
        raise TokenRejected(f"invalid X-Amz-Date {parameters['X-Amz-Date']!r}") from None
    signed_at = signed_at.replace(tzinfo=datetime.timezone.utc)
    access_key = _check_credential_scope(parameters, config, signed_at)
    expires = _check_expires(parameters["X-Amz-Expires"])

    skew = datetime.timedelta(seconds=config["max_clock_skew_seconds"])
    if signed_at > now + skew:
        raise TokenRejected(f"token is signed at {signed_at.isoformat()}, later than now plus the allowed clock skew")
    if now > signed_at + datetime.timedelta(seconds=expires):
        raise TokenRejected(f"token expired at {(signed_at + datetime.timedelta(seconds=expires)).isoformat()}")

    secret_key = config["credentials"].get(access_key)
    if secret_key is None:
        raise TokenRejected(f"unknown access key id {access_key!r}")
    expected = compute_signature(
        host, action, access_key, secret_key, parameters.get("X-Amz-Security-Token"),
        config["region"], expires, signed_at,
    )
    if not hmac.compare_digest(expected, parameters["X-Amz-Signature"]):
        raise TokenRejected("signature does not match")


def _check_credential_scope(parameters, config, signed_at):
    """Check X-Amz-Credential (`<key>/<date>/<region>/dsql/aws4_request`) and
    return its access key id."""
    scope = parameters["X-Amz-Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise TokenRejected("malformed X-Amz-Credential")
    access_key, date, region, service, _terminator = scope
    if date != signed_at.strftime("%Y%m%d"):
        raise TokenRejected(f"credential date {date!r} does not match X-Amz-Date")
    if region != config["region"]:
        raise TokenRejected(f"credential region is {region!r}, expected {config['region']!r}")
    if service != SERVICE:
        raise TokenRejected(f"credential service is {service!r}, expected {SERVICE!r}")
    return access_key


def _check_expires(value):
    if not value.isdigit() or not 1 <= int(value) <= MAX_EXPIRES_SECONDS:
        raise TokenRejected(f"X-Amz-Expires {value!r} is not from 1 to {MAX_EXPIRES_SECONDS}")
    return int(value)


def compute_signature(host, action, access_key, secret_key, session_token, region, expires, signed_at):
    """Return the SigV4 signature botocore computes for this presigned URL.

    botocore 1.43 reads the signing time through
    `botocore.auth.get_current_datetime`, which is replaced for the duration of
    the call so that the signature is computed for `signed_at`.
    """
    import botocore.auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    def signing_time(remove_tzinfo=True):
        return signed_at.replace(tzinfo=None) if remove_tzinfo else signed_at

    request = AWSRequest(method="GET", url=f"https://{host}/", data={"Action": action})
    credentials = Credentials(access_key, secret_key, session_token)
    signer = botocore.auth.SigV4QueryAuth(credentials, SERVICE, region, expires=expires)
    current_datetime = botocore.auth.get_current_datetime
    botocore.auth.get_current_datetime = signing_time
    try:
        signer.add_auth(request)
    finally:
        botocore.auth.get_current_datetime = current_datetime
    signed = dict(parse_qsl(urlsplit(request.url).query, keep_blank_values=True))
    if signed["X-Amz-Date"] != signed_at.strftime(SIGV4_TIMESTAMP_FORMAT):
        raise RuntimeError("botocore did not sign at the token's X-Amz-Date, so its clock hook has changed")
    return signed["X-Amz-Signature"]


def main():
    role = os.environ.get("PAM_USER", "")
    token = os.environ.get("PAM_AUTHTOK", "")
    # The script inherits PostgreSQL's environment. AWS_* variables there must
    # not reach botocore.
    for name in [name for name in os.environ if name.startswith("AWS_")]:
        del os.environ[name]

    config_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), CONFIG_FILE_NAME)
    try:
        with open(config_path, encoding="utf-8") as config_file:
            config = json.load(config_file)
        verify_token(token, role, config)
    except TokenRejected as exc:
        print(f"dsql-standin verifier: login as role {role!r} rejected: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        print(f"dsql-standin verifier: failed to check login as role {role!r}: {exc!r}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
