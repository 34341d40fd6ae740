"""A reverse proxy on 127.0.0.1 that counts the AWS API calls passing through it.

    python -m bench.proxy --upstream http://127.0.0.1:PORT --log FILE --port-file FILE

Every request is forwarded unchanged to the upstream emulator, and one JSON
line per request goes to the log: the time, the service from the SigV4
credential scope, the operation and the response status. The benchmark points
a client's AWS_ENDPOINT_URL at the proxy and counts the lines that a command
added. Calls that the emulator makes inside itself (CloudFormation
provisioning, Secrets Manager invoking a function) never pass through it.
"""

import argparse
import http.client
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

# Headers that apply to one connection only (RFC 9110, section 7.6.1).
HOP_BY_HOP_HEADERS = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
    "te", "trailer", "transfer-encoding", "upgrade",
}
CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")
LAMBDA_PATH = re.compile(r"^/\d{4}-\d{2}-\d{2}/functions/[^/]+(/[a-z-]+)?$")
LAMBDA_OPERATIONS = {
    ("GET", None): "GetFunction",
    ("GET", "/configuration"): "GetFunctionConfiguration",
    ("PUT", "/configuration"): "UpdateFunctionConfiguration",
    ("PUT", "/code"): "UpdateFunctionCode",
    ("POST", "/invocations"): "Invoke",
    ("GET", "/policy"): "GetPolicy",
    ("POST", "/policy"): "AddPermission",
}


def operation_name(method, target, headers, body):
    """Return the API operation of a request: the X-Amz-Target or Action of
    JSON and query protocols, or a name derived from the method and path of
    the REST protocols (S3, Lambda)."""
    amz_target = headers.get("X-Amz-Target")
    if amz_target:
        return amz_target.rsplit(".", 1)[-1]
    url = urlsplit(target)
    query = parse_qs(url.query, keep_blank_values=True)
    if "Action" in query:
        return query["Action"][0]
    content_type = headers.get("Content-Type", "")
    if body and content_type.startswith("application/x-www-form-urlencoded"):
        action = parse_qs(body.decode("utf-8", errors="replace")).get("Action")
        if action:
            return action[0]
    service = service_name(headers)
    if service == "s3":
        return s3_operation(method, url.path, query)
    if service == "lambda":
        match = LAMBDA_PATH.match(url.path)
        if match and (method, match.group(1)) in LAMBDA_OPERATIONS:
            return LAMBDA_OPERATIONS[(method, match.group(1))]
    return f"{method} {url.path}"


def s3_operation(method, path, query):
    """Name the S3 operations that the deployer and the AWS CLI use."""
    has_key = path.strip("/").count("/") >= 1
    if "versions" in query:
        return "ListObjectVersions"
    if "delete" in query and method == "POST":
        return "DeleteObjects"
    if has_key:
        return {"HEAD": "HeadObject", "GET": "GetObject", "PUT": "PutObject",
                "DELETE": "DeleteObject"}.get(method, f"{method} object")
    if "list-type" in query:
        return "ListObjectsV2"
    return {"HEAD": "HeadBucket", "GET": "ListObjects", "PUT": "CreateBucket",
            "DELETE": "DeleteBucket"}.get(method, f"{method} bucket")


def service_name(headers):
    """Return the service that the request is signed for, or "unsigned"."""
    match = CREDENTIAL_SCOPE.search(headers.get("Authorization", ""))
    return match.group(1) if match else "unsigned"


class CallLog:
    """The append-only log of forwarded calls, shared by the handler threads."""

    def __init__(self, path):
        self._file = open(path, "a", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, record):
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with self._lock:
            self._file.write(line)
            self._file.flush()


def handler_class(upstream_host, upstream_port, call_log):
    local = threading.local()

    def upstream_connection():
        if getattr(local, "connection", None) is None:
            local.connection = http.client.HTTPConnection(upstream_host, upstream_port, timeout=300)
        return local.connection

    class ForwardingHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):
            pass

        def _read_body(self):
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass  # trailer fields, if any
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _forward(self):
            body = self._read_body()
            headers = {name: value for name, value in self.headers.items()
                       if name.lower() not in HOP_BY_HOP_HEADERS}
            if body or self.command in ("POST", "PUT", "PATCH"):
                headers["Content-Length"] = str(len(body))
            response, payload = self._send_upstream(headers, body)

            call_log.write({
                "time": time.time(),
                "service": service_name(self.headers),
                "operation": operation_name(self.command, self.path, self.headers, body),
                "status": response.status,
            })
            self.send_response_only(response.status, response.reason)
            for name, value in response.getheaders():
                if name.lower() not in HOP_BY_HOP_HEADERS and name.lower() != "content-length":
                    self.send_header(name, value)
            if self.command == "HEAD":
                # A HEAD response states the length of the body it does not send.
                length = response.getheader("Content-Length")
                if length is not None:
                    self.send_header("Content-Length", length)
            else:
                self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        def _send_upstream(self, headers, body):
            """Send the request upstream once more on a fresh connection when
            the kept-alive one was closed by the server."""
            for attempt in range(2):
                connection = upstream_connection()
                try:
                    connection.request(self.command, self.path, body=body, headers=headers)
                    response = connection.getresponse()
                    return response, response.read()
                except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                    connection.close()
                    local.connection = None
                    if attempt == 1:
                        raise
            raise AssertionError("unreachable")

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _forward

    return ForwardingHandler


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.proxy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", required=True, help="emulator URL, http://127.0.0.1:PORT")
    parser.add_argument("--log", required=True, type=Path, help="file that receives one JSON line per call")
    parser.add_argument("--port-file", required=True, type=Path,
                        help="file that receives the proxy's port once it listens")
    arguments = parser.parse_args(argv)

    upstream = urlsplit(arguments.upstream)
    if upstream.hostname != "127.0.0.1":
        parser.error(f"--upstream {arguments.upstream} is not on 127.0.0.1")
    handler = handler_class(upstream.hostname, upstream.port, CallLog(arguments.log))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    arguments.port_file.write_text(str(server.server_address[1]), encoding="utf-8")
    server.serve_forever()


if __name__ == "__main__":
    main()
