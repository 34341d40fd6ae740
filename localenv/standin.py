"""A PostgreSQL 15 server used in place of an Aurora DSQL cluster endpoint.

Like DSQL, it takes TLS connections only and checks the password as an IAM auth
token: PostgreSQL's `pam` method hands it to pam_script, which runs
`dsql_token_verifier.py` as the postgres user. The server certificate comes from
a test CA made with openssl, for the configured hostname, `localhost` and
127.0.0.1. The server listens on 127.0.0.1 only.

PostgreSQL refuses to run as root, so every server command runs through
`runuser -u postgres`. The data directory, certificates and verifier live in a
fresh folder under /tmp, because the postgres user must be able to reach them
and the caller's folder may sit under /root.
"""

import json
import logging
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

logger = logging.getLogger("localenv.standin")

POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")
PAM_DIR = Path("/etc/pam.d")
# scripts/bootstrap creates this venv. DSQL_STANDIN_VERIFIER_VENV overrides the
# location for both.
DEFAULT_VERIFIER_VENV = "/opt/dsql-standin/verifier-venv"
# MiniStack's functions sign with their account id as access key id and `test`
# as secret key; 000000000000 is MiniStack's default account.
EMULATOR_FUNCTION_CREDENTIALS = {"000000000000": "test"}
ADMIN_ROLE = "admin"
APP_ROLE = "app_user"
DATABASE = "postgres"
VERIFIER_SOURCE = Path(__file__).with_name("dsql_token_verifier.py")


class StandinError(RuntimeError):
    """The stand-in could not be set up, started or stopped."""


def free_port():
    """Return a TCP port on 127.0.0.1 that is free at the time of the call."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(command, *, as_postgres=False, input_text=None, timeout=60):
    if as_postgres:
        command = ["runuser", "-u", "postgres", "--", *command]
    result = subprocess.run(
        command, input=input_text, capture_output=True, text=True, timeout=timeout, check=False,
    )
    if result.returncode != 0:
        raise StandinError(
            f"command failed with exit status {result.returncode}: {' '.join(map(str, command))}\n"
            f"{result.stderr.strip()}"
        )
    return result.stdout


def verifier_python():
    """Return the Python the PAM verifier runs with, after checking that the
    postgres user can import botocore with it."""
    venv = Path(os.environ.get("DSQL_STANDIN_VERIFIER_VENV", DEFAULT_VERIFIER_VENV))
    python = venv / "bin" / "python"
    try:
        _run([str(python), "-I", "-c", "import botocore.auth"], as_postgres=True)
    except (StandinError, OSError) as exc:
        raise StandinError(
            f"the postgres user cannot run {python} with botocore: {exc}. "
            "Run scripts/bootstrap, which creates that venv."
        ) from None
    return str(python)


class DsqlStandin:
    """PostgreSQL 15 on 127.0.0.1 that accepts DSQL IAM auth tokens as passwords.

    `start()` creates everything and starts the server; `stop()` stops it and
    removes the PAM service and the folder. `stop_server()` and `start_server()`
    stop and restart only the PostgreSQL process, on the same port, for tests
    of a database outage. Roles `admin` and `app_user` exist and can log in.

    Attributes once started: `host` (the hostname tokens are signed for and
    clients connect to), `port`, `ca_path` (the test CA's certificate in PEM),
    `root_dir`, `log_path` (PostgreSQL's log, which also has the verifier's
    reasons for rejected logins) and `pam_service`.
    """

    def __init__(
        self,
        *,
        hostname="localhost",
        region="us-east-1",
        credentials=None,
        port=None,
        max_clock_skew_seconds=300,
        parent_dir="/tmp",
    ):
        """`credentials` maps each accepted access key id to its secret key and
        defaults to the credentials MiniStack gives its functions. A token is
        accepted only when signed for `hostname` and `region`."""
        self.host = hostname
        self.region = region
        self.credentials = dict(credentials or EMULATOR_FUNCTION_CREDENTIALS)
        self.port = port
        self.max_clock_skew_seconds = max_clock_skew_seconds
        self.parent_dir = parent_dir
        self.root_dir = None
        self.pam_service = None
        self.ca_path = None
        self.log_path = None
        self._running = False

    # -- paths ---------------------------------------------------------------

    @property
    def _data_dir(self):
        return self.root_dir / "data"

    @property
    def _tls_dir(self):
        return self.root_dir / "tls"

    @property
    def _pam_script_dir(self):
        return self.root_dir / "pam"

    @property
    def _socket_dir(self):
        return self.root_dir / "socket"

    @property
    def _pam_file(self):
        return PAM_DIR / self.pam_service

    # -- lifecycle -----------------------------------------------------------

    def start(self):
        """Create the folder, the test CA, the PAM service and the cluster, then
        start the server and create the roles. Returns self."""
        if self.root_dir is not None:
            raise StandinError(f"stand-in already started in {self.root_dir}")
        python = verifier_python()
        self.port = self.port or free_port()
        self.root_dir = Path(tempfile.mkdtemp(prefix="dsql-standin-", dir=self.parent_dir))
        self.root_dir.chmod(0o755)
        self.pam_service = f"dsql-standin-{secrets.token_hex(4)}"
        try:
            self._make_certificates()
            self._install_verifier(python)
            self._install_pam_service()
            self._init_cluster()
            self.start_server()
            self._create_roles()
        except BaseException:
            self.stop()
            raise
        logger.info("DSQL stand-in listening on %s:%d (127.0.0.1), folder %s", self.host, self.port, self.root_dir)
        return self

    def stop(self):
        """Stop the server and remove the PAM service and the folder. Safe to
        call more than once."""
        if self.root_dir is None:
            return
        try:
            self.stop_server()
        finally:
            if self.pam_service:
                self._pam_file.unlink(missing_ok=True)
            shutil.rmtree(self.root_dir, ignore_errors=True)
            logger.info("DSQL stand-in on port %s stopped and removed", self.port)
            self.root_dir = None

    def start_server(self):
        """Start PostgreSQL on the configured port and wait until it accepts
        connections."""
        _run(
            [POSTGRES_BIN / "pg_ctl", "-D", self._data_dir, "-l", self.log_path, "-w", "-t", "60", "start"],
            as_postgres=True,
            timeout=90,
        )
        self._running = True

    def stop_server(self):
        """Stop PostgreSQL (fast shutdown) and keep everything else, so that
        `start_server()` brings the same server back on the same port."""
        if not self._running:
            return
        _run([POSTGRES_BIN / "pg_ctl", "-D", self._data_dir, "-m", "fast", "-w", "-t", "60", "stop"],
             as_postgres=True, timeout=90)
        self._running = False

    def to_dict(self):
        """Return what `from_dict` needs to stop this stand-in from another
        process, as JSON-serialisable values."""
        return {
            "host": self.host,
            "region": self.region,
            "port": self.port,
            "root_dir": str(self.root_dir),
            "pam_service": self.pam_service,
            "ca_path": str(self.ca_path),
            "log_path": str(self.log_path),
        }

    @classmethod
    def from_dict(cls, description):
        """Return a handle on a stand-in that another process started and
        described with `to_dict`."""
        standin = cls(hostname=description["host"], region=description["region"], port=description["port"])
        standin.root_dir = Path(description["root_dir"])
        standin.pam_service = description["pam_service"]
        standin.ca_path = Path(description["ca_path"])
        standin.log_path = Path(description["log_path"])
        standin._running = (standin._data_dir / "postmaster.pid").exists()
        return standin

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    # -- use -----------------------------------------------------------------

    def run_sql(self, sql):
        """Run `sql` as the superuser `postgres` over the local Unix socket and
        return psql's unaligned, tuples-only output."""
        return _run(
            [POSTGRES_BIN / "psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
             "-h", self._socket_dir, "-p", str(self.port), "-d", DATABASE, "-f", "-"],
            as_postgres=True,
            input_text=sql,
        )

    def connect_kwargs(self, role, token):
        """Return libpq connection parameters for logging in as `role` with
        `token`, with TLS verified against the test CA (sslmode verify-full)."""
        return {
            "host": self.host,
            "hostaddr": "127.0.0.1",
            "port": self.port,
            "dbname": DATABASE,
            "user": role,
            "password": token,
            "sslmode": "verify-full",
            "sslrootcert": str(self.ca_path),
            "connect_timeout": 10,
        }

    # -- setup steps ---------------------------------------------------------

    def _make_certificates(self):
        """Make a test CA and a server certificate signed by it, with subject
        alternative names for the hostname, `localhost` and 127.0.0.1.

        NOTE: the certificates are checked by libpq (OpenSSL) in the tests. The
        extensions are the ones rustls-webpki checks (CA basic constraints, key
        usage, serverAuth), but no rustls client has been run against them here.
        """
        tls = self._tls_dir
        tls.mkdir()
        ca_key, self.ca_path = tls / "ca.key", tls / "ca.pem"
        server_key, server_csr, server_cert = tls / "server.key", tls / "server.csr", tls / "server.crt"

        names = sorted({self.host, "localhost"})
        extensions = tls / "server.ext"
        extensions.write_text(
            "basicConstraints = critical, CA:FALSE\n"
            "keyUsage = critical, digitalSignature\n"
            "extendedKeyUsage = serverAuth\n"
            f"subjectAltName = {', '.join(f'DNS:{name}' for name in names)}, IP:127.0.0.1\n"
        )

        ec_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        _run(["openssl", "req", "-x509", *ec_key, "-keyout", ca_key, "-out", self.ca_path, "-days", "30",
              "-subj", "/CN=DSQL stand-in test CA",
              "-addext", "basicConstraints = critical, CA:TRUE",
              "-addext", "keyUsage = critical, keyCertSign, cRLSign"])
        _run(["openssl", "req", "-new", *ec_key, "-keyout", server_key, "-out", server_csr,
              "-subj", f"/CN={self.host}"])
        _run(["openssl", "x509", "-req", "-in", server_csr, "-CA", self.ca_path, "-CAkey", ca_key,
              "-CAcreateserial", "-days", "30", "-extfile", extensions, "-out", server_cert])

        # Nothing else is ever signed with the CA key.
        ca_key.unlink()
        postgres = pwd.getpwnam("postgres")
        os.chown(server_key, postgres.pw_uid, postgres.pw_gid)
        server_key.chmod(0o600)
        for public in (self.ca_path, server_cert):
            public.chmod(0o644)
        tls.chmod(0o755)

    def _install_verifier(self, python):
        """Install the verifier as pam_script_auth. pam_script requires the
        folder and the script to be owned by root. The postgres user runs the
        script and reads its configuration, which contains the secret keys."""
        script_dir = self._pam_script_dir
        script_dir.mkdir(mode=0o755)
        source = VERIFIER_SOURCE.read_text(encoding="utf-8")
        source = source.split("\n", 1)[1]  # drop the file's own shebang
        script = script_dir / "pam_script_auth"
        script.write_text(f"#!{python} -I\n{source}", encoding="utf-8")
        script.chmod(0o755)

        config = script_dir / "verifier.json"
        config.write_text(json.dumps({
            "hostname": self.host,
            "region": self.region,
            "credentials": self.credentials,
            "max_clock_skew_seconds": self.max_clock_skew_seconds,
        }), encoding="utf-8")
        os.chown(config, 0, pwd.getpwnam("postgres").pw_gid)
        config.chmod(0o640)

    def _install_pam_service(self):
        """Write the PAM service: pam_script checks the token, and the account
        line is needed because PostgreSQL runs the account check too."""
        self._pam_file.write_text(
            f"# DSQL stand-in in {self.root_dir}; removed when the stand-in stops.\n"
            f"auth required pam_script.so dir={self._pam_script_dir} onerr=fail\n"
            "account required pam_permit.so\n",
            encoding="utf-8",
        )
        self._pam_file.chmod(0o644)

    def _init_cluster(self):
        postgres = pwd.getpwnam("postgres")
        for folder in (self._data_dir, self._socket_dir):
            folder.mkdir(mode=0o700)
            os.chown(folder, postgres.pw_uid, postgres.pw_gid)
        self.log_path = self.root_dir / "postgresql.log"
        self.log_path.touch()
        os.chown(self.log_path, postgres.pw_uid, postgres.pw_gid)

        _run([POSTGRES_BIN / "initdb", "-D", self._data_dir, "-U", "postgres", "-E", "UTF8",
              "--locale=C.UTF-8", "--auth-local=peer", "--auth-host=reject", "--no-sync"],
             as_postgres=True, timeout=120)
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": self.port,
            "unix_socket_directories": str(self._socket_dir),
            "ssl": "on",
            "ssl_cert_file": str(self._tls_dir / "server.crt"),
            "ssl_key_file": str(self._tls_dir / "server.key"),
            "ssl_min_protocol_version": "TLSv1.2",
            "max_connections": 30,
            "authentication_timeout": "10s",
            "log_connections": "on",
            # Test data only: durability is not needed, speed is.
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        with open(self._data_dir / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write("\n# DSQL stand-in\n")
            for name, value in settings.items():
                conf.write(f"{name} = '{value}'\n")
        (self._data_dir / "pg_hba.conf").write_text(
            "# Superuser over the Unix socket for setup and tests; TLS with an IAM token otherwise.\n"
            "local   all  postgres                peer\n"
            f"hostssl all  all       127.0.0.1/32  pam pamservice={self.pam_service}\n"
            "hostnossl all all       0.0.0.0/0     reject\n"
            "host    all  all       ::/0          reject\n",
            encoding="utf-8",
        )

    def _create_roles(self):
        """Create the DSQL roles. `admin` owns the public schema, as the admin
        role on DSQL can create objects there; `app_user` may use it."""
        self.run_sql(
            f"CREATE ROLE {ADMIN_ROLE} LOGIN CREATEROLE CREATEDB;\n"
            f"CREATE ROLE {APP_ROLE} LOGIN;\n"
            f"ALTER SCHEMA public OWNER TO {ADMIN_ROLE};\n"
            f"GRANT USAGE ON SCHEMA public TO {APP_ROLE};\n"
        )
