"""Real servers on loopback for tests and benchmarks: PostgreSQL, Orthanc, an OpenID provider,
Redis and nginx in front of Loupe nodes.

Each starter picks a free port, keeps all state under a temporary folder, waits until
the server answers, and returns a handle whose ``stop()`` ends exactly the process it
started (by PID, never by name).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.paths import PROJECT_DIR

PG_BIN = Path(os.environ.get("LOUPE_PG_BIN", "/usr/lib/postgresql/15/bin"))
ORTHANC_BIN = Path(os.environ.get("LOUPE_ORTHANC_BIN", "/usr/sbin/Orthanc"))
ORTHANC_DICOMWEB = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
IDP_DIR = Path(__file__).resolve().parent / "idp"
NODE_BIN = os.environ.get("LOUPE_NODE", "node")
REDIS_BIN = Path(os.environ.get("LOUPE_REDIS_BIN", "/usr/bin/redis-server"))
NGINX_BIN = Path(os.environ.get("LOUPE_NGINX_BIN", "/usr/sbin/nginx"))
NGINX_CONFIG = PROJECT_DIR / "config" / "nginx" / "loupe.conf"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_available() -> str | None:
    """None when PostgreSQL can be started here, else the reason it cannot."""
    if not (PG_BIN / "initdb").exists():
        return f"PostgreSQL binaries not found in {PG_BIN} (apt-get install postgresql)"
    return None


def orthanc_available() -> str | None:
    if not ORTHANC_BIN.exists():
        return f"Orthanc not found at {ORTHANC_BIN} (apt-get install orthanc orthanc-dicomweb)"
    return None


def oidc_provider_available() -> str | None:
    """None when the test OpenID provider can run here, else the reason it cannot."""
    if shutil.which(NODE_BIN) is None:
        return f"node not found ({NODE_BIN}; apt-get install nodejs npm)"
    if not (IDP_DIR / "node_modules" / "oidc-provider").is_dir():
        return f"oidc-provider is not installed: run `npm ci` in {IDP_DIR} (scripts/test.sh does)"
    return None


def redis_available() -> str | None:
    if not REDIS_BIN.exists():
        return f"redis-server not found at {REDIS_BIN} (apt-get install redis-server)"
    return None


def nginx_available() -> str | None:
    if not NGINX_BIN.exists():
        return f"nginx not found at {NGINX_BIN} (apt-get install nginx)"
    if shutil.which("openssl") is None:
        return "openssl not found (apt-get install openssl): it makes the test certificate"
    return None


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    root: Path
    port: int
    url: str
    extra: dict[str, str] = field(default_factory=dict)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)


def _as_postgres_user() -> list[str]:
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def start_postgres() -> Server:
    """initdb into a temp folder and start postgres on a private port (trust auth)."""
    root = Path(tempfile.mkdtemp(prefix="loupe-pg-"))
    os.chmod(root, 0o755)  # noqa: S103 (the postgres user must reach its data folder)
    data, sockets = root / "data", root / "sock"
    sockets.mkdir()
    user = _as_postgres_user()
    if user:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    subprocess.run(
        [
            *user,
            str(PG_BIN / "initdb"),
            "-D",
            str(data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    port = free_port()
    process = subprocess.Popen(
        [
            *user,
            str(PG_BIN / "postgres"),
            "-D",
            str(data),
            "-c",
            "listen_addresses=127.0.0.1",
            "-p",
            str(port),
            "-k",
            str(sockets),
            "-c",
            "max_connections=200",
            "-c",
            "fsync=on",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready = subprocess.run(
            [str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if ready.returncode == 0:
            break
        if process.poll() is not None:
            raise RuntimeError("postgres exited during start-up")
        time.sleep(0.2)
    else:
        process.kill()
        raise RuntimeError("postgres did not become ready within 30 s")
    return Server(process, root, port, f"postgres://postgres@127.0.0.1:{port}/postgres")


def create_database(server: Server, name: str) -> str:
    """Create database ``name`` on ``server`` and return its DATABASE_URL."""
    subprocess.run(
        [
            str(PG_BIN / "createdb"),
            "-h",
            "127.0.0.1",
            "-p",
            str(server.port),
            "-U",
            "postgres",
            name,
        ],
        check=True,
    )
    return f"postgres://postgres@127.0.0.1:{server.port}/{name}"


def manage(env: dict[str, str], *args: str, timeout: int = 300) -> str:
    """Run ``manage.py`` in a process of its own with ``env``; its output, or a
    RuntimeError with what it printed."""
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def migrated_database(server: Server, name: str, data_dir: Path) -> dict[str, str]:
    """A new database ``name`` on ``server``, migrated; the environment of a Loupe
    process that uses it with its data folder at ``data_dir``."""
    env = {
        **os.environ,
        "DATABASE_URL": create_database(server, name),
        "LOUPE_DATA_DIR": str(data_dir),
    }
    manage(env, "migrate", "-v0")
    return env


def _wait_until_answers(
    process: subprocess.Popen[bytes],
    url: str,
    what: str,
    log: Path,
    seconds: float,
    *,
    headers: dict[str, str] | None = None,
) -> None:
    """Until ``GET url`` answers 200; the server's log in the error where it exits first
    or does not answer within ``seconds`` (then it is killed by its PID)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            probe = urllib.request.Request(url, headers=headers or {})  # noqa: S310
            with urllib.request.urlopen(probe, timeout=5) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"{what} exited: {log.read_text(errors='replace')}") from None
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(
        f"{what} did not answer within {seconds:g} s: {log.read_text(errors='replace')}"
    )


def start_loupe(
    env: dict[str, str], root: Path, *, headers: dict[str, str] | None = None
) -> Server:
    """Loupe under its gunicorn configuration (``config/gunicorn.py``) with ``env``, on a
    free loopback port, once ``GET /login/`` (with ``headers``) answers 200. The master's
    and workers' log is ``root / "gunicorn.log"``; ``stop()`` ends the master by its PID
    (its workers and their decoder processes end with it) and removes ``root``."""
    port = free_port()
    root.mkdir(parents=True, exist_ok=True)
    log_path = root / "gunicorn.log"
    log = open(log_path, "ab")  # the server writes to it until it stops
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "-c",
            str(PROJECT_DIR / "config" / "gunicorn.py"),
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
        ],
        cwd=PROJECT_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    _wait_until_answers(
        process, f"{url}/login/", "Loupe (gunicorn)", log_path, 60, headers=headers or {}
    )
    return Server(process, root, port, url, {"log": str(log_path)})


def start_loupe_node(env: dict[str, str], root: Path) -> Server:
    """A Loupe node behind a TLS proxy: :func:`start_loupe`, seen ready once ``GET /login/``
    with the ``X-Forwarded-Proto: https`` nginx adds answers 200 (a node with
    LOUPE_HTTPS=1 redirects plain http to https)."""
    return start_loupe(env, root, headers={"X-Forwarded-Proto": "https"})


def start_orthanc(*, dicomweb: bool = True) -> Server:
    """Start Debian's Orthanc with storage under a temp folder, loopback only."""
    root = Path(tempfile.mkdtemp(prefix="loupe-orthanc-"))
    http_port, dicom_port = free_port(), free_port()
    config = {
        "Name": "LoupeBenchOrthanc",
        "StorageDirectory": str(root / "storage"),
        "IndexDirectory": str(root / "index"),
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "HttpServerEnabled": True,
        "DicomServerEnabled": False,
        "Plugins": [str(ORTHANC_DICOMWEB)] if dicomweb and ORTHANC_DICOMWEB.exists() else [],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        "StorageCompression": False,
        "HttpThreadsCount": 50,
    }
    (root / "orthanc.json").write_text(json.dumps(config))
    log = open(root / "orthanc.log", "wb")
    process = subprocess.Popen(
        [str(ORTHANC_BIN), str(root / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{http_port}"
    _wait_until_answers(process, f"{url}/system", "Orthanc", root / "orthanc.log", 30)
    return Server(process, root, http_port, url)


def start_oidc_provider(*, clients: list[dict[str, Any]], users: list[dict[str, Any]]) -> Server:
    """Start the test OpenID provider (tests/idp/provider.mjs, npm oidc-provider) on loopback.

    ``clients`` are oidc-provider client metadata (client_id, client_secret, redirect_uris
    ...); ``users`` are {"username", "password", "claims": {"sub", ...}}. Keys, sessions and
    codes live in the node process's memory. The issuer is ``Server.url``."""
    root = Path(tempfile.mkdtemp(prefix="loupe-idp-"))
    port = free_port()
    (root / "config.json").write_text(
        json.dumps({"port": port, "clients": clients, "users": users})
    )
    log = open(root / "provider.log", "wb")
    process = subprocess.Popen(
        [NODE_BIN, str(IDP_DIR / "provider.mjs"), str(root / "config.json")],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=IDP_DIR,
    )
    url = f"http://127.0.0.1:{port}"
    discovery = f"{url}/.well-known/openid-configuration"
    _wait_until_answers(process, discovery, "the OpenID provider", root / "provider.log", 30)
    return Server(process, root, port, url)


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def start_redis() -> Server:
    """Start Debian's redis-server on a private loopback port with its folder under a temp
    folder: no persistence (it holds caches), at most 256 MB, least recently used keys
    evicted past that. ``Server.url`` is the LOUPE_REDIS_URL of a Loupe that uses it."""
    root = Path(tempfile.mkdtemp(prefix="loupe-redis-"))
    port = free_port()
    log_path = root / "redis.log"
    log = open(log_path, "wb")  # the server writes to it until it stops
    process = subprocess.Popen(
        [
            str(REDIS_BIN),
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--dir",
            str(root),
            "--save",
            "",
            "--appendonly",
            "no",
            "--maxmemory",
            "256mb",
            "--maxmemory-policy",
            "allkeys-lru",
            "--daemonize",
            "no",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 20
    while not _redis_answers(port):
        if process.poll() is not None:
            raise RuntimeError(f"redis-server exited: {log_path.read_text(errors='replace')}")
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"redis-server did not answer PING within 20 s: {log_path}")
        time.sleep(0.1)
    return Server(process, root, port, f"redis://127.0.0.1:{port}/0", {"log": str(log_path)})


def self_signed_certificate(folder: Path, name: str = "localhost") -> tuple[Path, Path]:
    """A self-signed certificate for ``name`` and 127.0.0.1 (P-256, two days), made by
    openssl into ``folder``: (certificate, private key), both PEM. A client that trusts
    the certificate file (``requests``' ``verify=``, curl's ``--cacert``) verifies it."""
    folder.mkdir(parents=True, exist_ok=True)
    certificate, key = folder / "certificate.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            f"/CN={name}",
            "-addext",
            f"subjectAltName=DNS:{name},IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(certificate),
        ],
        check=True,
        capture_output=True,
    )
    key.chmod(0o600)
    return certificate, key


def render_nginx_config(values: dict[str, str]) -> str:
    """config/nginx/loupe.conf with its ``@NAME@`` placeholders replaced by ``values``
    (LISTEN, SERVER_NAME, UPSTREAM_SERVERS, CERTIFICATE, CERTIFICATE_KEY, CACHE_DIR,
    LOG_DIR); a placeholder left without a value is an error."""
    text = NGINX_CONFIG.read_text()
    for name, value in values.items():
        text = text.replace(f"@{name}@", value)
    left = sorted(set(re.findall(r"@[A-Z_]+@", text)))
    if left:
        raise ValueError(f"no value for {', '.join(left)} in {NGINX_CONFIG}")
    return text


def _tls_answers(port: int, certificate: Path, name: str) -> bool:
    context = ssl.create_default_context(cafile=str(certificate))
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as raw:
            with context.wrap_socket(raw, server_hostname=name):
                return True
    except OSError:  # ssl.SSLError included
        return False


def start_nginx(
    upstreams: list[str], *, certificate: Path, key: Path, server_name: str = "localhost"
) -> Server:
    """Debian's nginx on a private loopback port with config/nginx/loupe.conf in front of
    the Loupe nodes at ``upstreams`` ("127.0.0.1:8001" ...), TLS with ``certificate`` and
    ``key``; its logs, cache and temporary files under a temp folder (workers as www-data
    when run as root). ``Server.url`` is ``https://<server_name>:<port>``; ``extra`` has
    the ``access_log``, ``error_log`` and ``cache_dir``."""
    root = Path(tempfile.mkdtemp(prefix="loupe-nginx-"))
    os.chmod(root, 0o755)  # noqa: S103 (nginx's workers must reach their cache and temp folders)
    logs, temp = root / "logs", root / "temp"
    logs.mkdir()
    temp.mkdir()
    port = free_port()
    (root / "loupe.conf").write_text(
        render_nginx_config(
            {
                "LISTEN": f"127.0.0.1:{port}",
                "SERVER_NAME": server_name,
                "UPSTREAM_SERVERS": " ".join(f"server {u};" for u in upstreams),
                "CERTIFICATE": str(certificate),
                "CERTIFICATE_KEY": str(key),
                "CACHE_DIR": str(root / "cache"),
                "LOG_DIR": str(logs),
            }
        )
    )
    main = [
        *(["user www-data www-data;"] if os.geteuid() == 0 else []),
        f"pid {root / 'nginx.pid'};",
        f"error_log {logs / 'error.log'} warn;",
        "daemon off;",
        "worker_processes 2;",
        "events { worker_connections 1024; }",
        "http {",
        "    include /etc/nginx/mime.types;",
        "    default_type application/octet-stream;",
        *(
            f"    {kind}_temp_path {temp / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        ),
        f"    include {root / 'loupe.conf'};",
        "}",
    ]
    (root / "nginx.conf").write_text("\n".join(main) + "\n")
    log_path = logs / "nginx.log"
    log = open(log_path, "wb")  # the server writes to it until it stops
    process = subprocess.Popen(
        [
            str(NGINX_BIN),
            "-p",
            str(root),
            "-c",
            str(root / "nginx.conf"),
            "-e",
            str(logs / "error.log"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 20
    while not _tls_answers(port, certificate, server_name):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            errors = (logs / "error.log").read_text(errors="replace") if logs.exists() else ""
            raise RuntimeError(
                f"nginx did not start: {log_path.read_text(errors='replace')}{errors}"
            )
        time.sleep(0.1)
    return Server(
        process,
        root,
        port,
        f"https://{server_name}:{port}",
        {
            "access_log": str(logs / "loupe-access.log"),
            "error_log": str(logs / "error.log"),
            "cache_dir": str(root / "cache"),
        },
    )


def serve_page(
    page: Callable[[], str], *, port: int = 0, path: str | None = None
) -> ThreadingHTTPServer:
    """A page of a stand-in site on 127.0.0.1 (another site than Loupe's ``localhost``),
    served from a thread: ``page()`` at ``path`` (any path when None), 404 elsewhere.
    A real server, not a page Playwright fulfils: Chromium treats those as public and
    refuses their frames on loopback. ``shutdown()`` and ``server_close()`` stop it."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = page().encode()
            self.send_response(200 if path in (None, self.path) else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def node_env(
    postgres: Server, redis: Server, database: str, data_dir: Path, secret_key: str
) -> dict[str, str]:
    """The environment every node of the layout of README "Deploying" shares: a new
    migrated database ``database`` on ``postgres``, ``redis``, the data folder
    ``data_dir``, HTTPS behind nginx on loopback (each node adds its LOUPE_CACHE_DIR)."""
    env = migrated_database(postgres, database, data_dir)
    for name in ("LOUPE_DEBUG", "LOUPE_DEMO", "LOUPE_CACHE_DIR", "LOUPE_EMBED"):
        env.pop(name, None)
    env.update(
        {
            "LOUPE_SECRET_KEY": secret_key,
            "LOUPE_REDIS_URL": redis.url,
            "LOUPE_HTTPS": "1",
            "LOUPE_TRUSTED_PROXIES": "127.0.0.1",
            "LOUPE_ALLOWED_HOSTS": "localhost,127.0.0.1",
            "LOUPE_LOG_LEVEL": "WARNING",
        }
    )
    return env


def start_nodes_behind_nginx(
    env: dict[str, str], root: Path, stack: ExitStack, *, count: int = 2
) -> tuple[list[Server], Server, Path]:
    """``count`` Loupe nodes with ``env`` (each its own LOUPE_CACHE_DIR under ``root``) and
    nginx in front with a self-signed certificate; each stopped by ``stack``. Returns the
    nodes, nginx and the certificate to verify it with."""
    nodes = []
    for number in range(1, count + 1):
        node_root = root / f"node{number}"
        node = start_loupe_node({**env, "LOUPE_CACHE_DIR": str(node_root / "cache")}, node_root)
        stack.callback(node.stop)
        nodes.append(node)
    certificate, key = self_signed_certificate(root / "tls")
    nginx = start_nginx([f"127.0.0.1:{n.port}" for n in nodes], certificate=certificate, key=key)
    stack.callback(nginx.stop)
    return nodes, nginx, certificate
