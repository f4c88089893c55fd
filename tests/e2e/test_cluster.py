"""Two Loupe nodes behind nginx on PostgreSQL and Redis (README "Deploying").

The real setup, started once for the module through ``tests/servers.py``: PostgreSQL,
Redis, two Loupe nodes under their gunicorn configuration that share the database, Redis
and one data folder (``LOUPE_CACHE_DIR`` per node), and Debian's nginx with
``config/nginx/loupe.conf`` and a self-signed certificate. Requests go over HTTPS to nginx,
verified against that certificate, or straight to one node's port with the header nginx
adds (``X-Forwarded-Proto: https``), to say which node answers.

What must hold: TLS 1.2 and 1.3 only, HTTP/2; an object stored through one node is served
by the other and through nginx; a session made on one node works on the other, and a
logout on one ends it on both; a share link revoked on one node is refused on the other
(within ``sharing.CHECK_SECONDS``); a role change and a deactivation made in the admin
of one node apply on the other (within ``roles.ROLE_CACHE_SECONDS``, at once); nginx stores
no private image and does store the public static files; a live session's event stream
passes nginx unbuffered; and with one node SIGKILLed, GETs through nginx keep succeeding
with at most the ones in flight failing (the last test: the node stays dead).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pydicom
import pytest
import requests
from pydicom.data import get_testdata_file

from tests.conftest import require
from tests.paths import ARTIFACTS
from tests.servers import (
    Server,
    manage,
    nginx_available,
    node_env,
    postgres_available,
    redis_available,
    start_nodes_behind_nginx,
    start_postgres,
    start_redis,
)

PASSWORD = "a-long-test-password"
TIMEOUT = 30  # seconds for any one request
# The caches each node keeps per process, as the code has them (viewer.services.sharing,
# viewer.roles); not imported: this module's Django is the test runner's, not the nodes'.
SHARE_CHECK_SECONDS = 10.0
ROLE_CACHE_SECONDS = 30.0


@dataclass
class Study:
    study: str
    series: str
    instance: str
    file: bytes

    @property
    def path(self) -> str:
        return f"/dicom-web/studies/{self.study}/series/{self.series}/instances/{self.instance}"


@dataclass
class Cluster:
    nodes: list[Server]
    nginx: Server
    certificate: Path
    token: str  # an API token of a radiologist service account
    users: dict[str, int]  # user name -> pk

    @property
    def url(self) -> str:
        return self.nginx.url

    def node(self, number: int) -> str:
        return self.nodes[number - 1].url

    def bearer(self, base: str) -> dict[str, str]:
        """The API token, and the header nginx adds when ``base`` is a node's."""
        return {"Authorization": f"Bearer {self.token}", **proxied(base)}


def proxied(base: str) -> dict[str, str]:
    """What nginx tells a node (``X-Forwarded-Proto: https``), for a request sent straight
    to a node's plain-HTTP port: a node with LOUPE_HTTPS=1 redirects plain http to https."""
    return {"X-Forwarded-Proto": "https"} if base.startswith("http://") else {}


@dataclass
class Browser:
    """One browser's cookies, sent as a ``Cookie`` header to whichever base URL (a node's
    or nginx's): the cookies are ``__Host-``/``Secure`` ones set over HTTPS, which a cookie
    jar would not send to a node's plain-HTTP port. Unsafe requests carry the Origin a
    browser sends and the CSRF token; requests to a node say ``X-Forwarded-Proto: https``
    as nginx does."""

    cluster: Cluster
    cookies: dict[str, str] = field(default_factory=dict)

    def request(self, method: str, base: str, path: str, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        headers.update(proxied(base))
        if method not in ("GET", "HEAD"):
            headers["Origin"] = f"https://{urlsplit(base).netloc}"
            if "__Host-csrftoken" in self.cookies:
                headers["X-CSRFToken"] = self.cookies["__Host-csrftoken"]
        response = requests.request(
            method,
            f"{base}{path}",
            headers=headers,
            allow_redirects=False,
            timeout=TIMEOUT,
            verify=str(self.cluster.certificate),
            **kwargs,
        )
        for header in response.raw.headers.getlist("Set-Cookie"):
            pair, _, attributes = header.partition(";")
            name, _, value = pair.strip().partition("=")
            if not value.strip('"') or "max-age=0" in attributes.lower().replace(" ", ""):
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return response

    def get(self, base: str, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", base, path, **kwargs)

    def post(self, base: str, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", base, path, **kwargs)

    def log_in(self, base: str, username: str) -> None:
        page = self.get(base, "/login/")
        assert page.status_code == 200, page.text[:300]
        answer = self.post(
            base,
            "/login/",
            data={
                "username": username,
                "password": PASSWORD,
                "csrfmiddlewaretoken": form_fields(page.text)["csrfmiddlewaretoken"][0],
            },
        )
        assert answer.status_code == 302, answer.text[:300]
        assert "__Host-sessionid" in self.cookies


class _FormParser(HTMLParser):
    """A page's form fields as a browser would submit them (the admin's change page has
    one form of fields): text and hidden inputs, checked boxes, selected options; and
    each select's options by their label."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, list[str]] = {}
        self.options: dict[str, dict[str, str]] = {}  # select name -> option label -> value
        self._select: str | None = None
        self._option: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        name = a.get("name", "")
        if tag == "input" and name and a.get("type", "text") not in ("submit", "button"):
            if a.get("type") in ("checkbox", "radio"):
                if "checked" in a:
                    self.fields.setdefault(name, []).append(a.get("value") or "on")
            else:
                self.fields.setdefault(name, []).append(a.get("value", ""))
        elif tag == "select" and name:
            self._select = name
            self.fields.setdefault(name, [])
            self.options.setdefault(name, {})
        elif tag == "option" and self._select is not None:
            self._option = a.get("value", "")
            if "selected" in a:
                self.fields[self._select].append(self._option)

    def handle_data(self, data: str) -> None:
        if self._select is not None and self._option is not None and data.strip():
            self.options[self._select][data.strip()] = self._option

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "option":
            self._option = None


def form_fields(page: str) -> dict[str, list[str]]:
    parser = _FormParser()
    parser.feed(page)
    return parser.fields


def form_with_options(page: str) -> _FormParser:
    parser = _FormParser()
    parser.feed(page)
    return parser


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            found += [int(child), *_descendants(int(child))]
    return found


def _keep_logs(servers: dict[str, Server]) -> None:
    """The nodes' and nginx's logs into test-artifacts/cluster/, for a failure's reader."""
    target = ARTIFACTS / "cluster"
    target.mkdir(parents=True, exist_ok=True)
    for name, server in servers.items():
        for log in server.root.rglob("*.log"):
            with contextlib.suppress(OSError):
                shutil.copyfile(log, target / f"{name}-{log.name}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    for missing in (postgres_available(), redis_available(), nginx_available()):
        require(missing)
    root = tmp_path_factory.mktemp("cluster")
    servers: dict[str, Server] = {}
    with contextlib.ExitStack() as stack:
        servers["postgres"] = postgres = start_postgres()
        stack.callback(postgres.stop)
        servers["redis"] = redis = start_redis()
        stack.callback(redis.stop)
        env = node_env(postgres, redis, "loupe", root / "shared", "cluster-test-" + "s" * 40)
        env["LOUPE_DECODER_PROCESSES"] = "1"
        made = manage(
            env,
            "shell",
            "-c",
            "import json; from django.contrib.auth.models import Group, User; "
            "Group.objects.get_or_create(name='clinician'); "
            f"admin = User.objects.create_superuser('admin', password={PASSWORD!r}); "
            f"users = [User.objects.create_user(n, password={PASSWORD!r}) "
            "for n in ('reader', 'demoted', 'sharer')]; "
            "print(json.dumps({u.username: u.pk for u in [admin, *users]}))",
        )
        users = json.loads(made.strip().splitlines()[-1])
        token = manage(env, "issue_api_token", "stow-client", "--role", "radiologist").strip()
        nodes, nginx, certificate = start_nodes_behind_nginx(env, root, stack)
        servers.update({f"node{n}": node for n, node in enumerate(nodes, start=1)})
        servers["nginx"] = nginx
        stack.callback(_keep_logs, servers)  # first, before the servers stop
        yield Cluster(nodes, nginx, certificate, token, users)


@pytest.fixture(scope="module")
def stored(cluster: Cluster) -> Study:
    """CT_small (pydicom's test file) stored by STOW-RS through node 1 with the API token."""
    path = get_testdata_file("CT_small.dcm")
    assert path is not None
    data = Path(str(path)).read_bytes()
    dataset = pydicom.dcmread(str(path), stop_before_pixels=True)
    boundary = "loupe-cluster-test"
    body = (
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    answer = requests.post(
        f"{cluster.node(1)}/dicom-web/studies",
        data=body,
        headers={
            **cluster.bearer(cluster.node(1)),
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
            "Accept": "application/dicom+json",
        },
        timeout=TIMEOUT,
    )
    assert answer.status_code == 200, answer.text[:500]
    assert "00081199" in answer.json()  # ReferencedSOPSequence
    return Study(
        str(dataset.StudyInstanceUID),
        str(dataset.SeriesInstanceUID),
        str(dataset.SOPInstanceUID),
        data,
    )


def _handshake(
    cluster: Cluster, version: ssl.TLSVersion, *, alpn: list[str] | None = None
) -> ssl.SSLSocket:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(str(cluster.certificate))
    # OpenSSL's default security level forbids TLS < 1.2 in the client too: lowered, so
    # that refusing TLS 1.1 is nginx's doing.
    context.set_ciphers("ALL:@SECLEVEL=0")
    with warnings.catch_warnings():  # TLS 1.0 and 1.1 are deprecated: that is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = context.maximum_version = version
    if alpn:
        context.set_alpn_protocols(alpn)
    raw = socket.create_connection(("127.0.0.1", cluster.nginx.port), timeout=10)
    try:
        return context.wrap_socket(raw, server_hostname="localhost")
    except BaseException:
        raw.close()
        raise


def test_nginx_speaks_tls_1_2_and_1_3_only_and_http2(cluster: Cluster) -> None:
    for version, name in ((ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")):
        with _handshake(cluster, version, alpn=["h2", "http/1.1"]) as tls:
            assert tls.version() == name
            assert tls.selected_alpn_protocol() == "h2"
    for old in (ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1):
        with pytest.raises(ssl.SSLError):
            _handshake(cluster, old).close()
    require(None if shutil.which("curl") else "curl not found (apt-get install curl)")
    done = subprocess.run(
        [
            "curl",
            "--http2",
            "--cacert",
            str(cluster.certificate),
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version} %{response_code}",
            f"{cluster.url}/login/",
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.stdout == "2 200", done.stderr


def test_an_object_stored_through_one_node_is_served_by_the_other(
    cluster: Cluster, stored: Study
) -> None:
    for base in (cluster.node(2), cluster.url):
        found = requests.get(
            f"{base}/dicom-web/studies",
            params={"StudyInstanceUID": stored.study},
            headers={**cluster.bearer(base), "Accept": "application/dicom+json"},
            timeout=TIMEOUT,
            verify=str(cluster.certificate),
        )
        assert found.status_code == 200, found.text[:300]
        assert [s["0020000D"]["Value"] for s in found.json()] == [[stored.study]]
        retrieved = requests.get(
            f"{base}{stored.path}",
            headers={
                **cluster.bearer(base),
                "Accept": 'multipart/related; type="application/dicom"',
            },
            timeout=TIMEOUT,
            verify=str(cluster.certificate),
        )
        assert retrieved.status_code == 200, retrieved.text[:300]
        assert stored.file in retrieved.content  # the stored file, byte for byte
        rendered = requests.get(
            f"{base}{stored.path}/rendered",
            headers=cluster.bearer(base),
            timeout=TIMEOUT,
            verify=str(cluster.certificate),
        )
        assert rendered.status_code == 200, rendered.text[:300]
        assert rendered.headers["Content-Type"].startswith("image/")


def test_a_session_made_on_one_node_works_on_the_other_and_ends_on_both(
    cluster: Cluster, stored: Study
) -> None:
    reader = Browser(cluster)
    reader.log_in(cluster.node(1), "reader")
    for base in (cluster.node(1), cluster.node(2), cluster.url):
        answer = reader.get(base, f"/api/studies/{stored.study}")
        assert answer.status_code == 200, (base, answer.status_code, answer.text[:300])
        assert answer.json()["study_instance_uid"] == stored.study
    kept = dict(reader.cookies)
    assert reader.post(cluster.node(2), "/logout/").status_code in (200, 302)
    reader.cookies = kept  # the old session cookie, sent again after the logout
    for base in (cluster.node(1), cluster.node(2), cluster.url):
        answer = reader.get(base, f"/api/studies/{stored.study}")
        assert answer.status_code == 401, (base, answer.status_code)


def _until(seconds: float, what: str, check: Any) -> float:
    """Poll ``check()`` until it is true, at most ``seconds``; how long it took."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < seconds, f"{what}: not within {seconds:g} s"
        time.sleep(0.25)
    return time.monotonic() - started


def test_a_share_link_revoked_on_one_node_is_refused_on_the_other(
    cluster: Cluster, stored: Study
) -> None:
    sharer = Browser(cluster)
    sharer.log_in(cluster.node(1), "sharer")
    made = sharer.post(
        cluster.node(1),
        "/api/shares",
        json={"study_instance_uids": [stored.study], "audience": "anyone-with-link"},
    )
    assert made.status_code == 201, made.text[:300]
    share = made.json()
    guest = Browser(cluster)
    opened = guest.get(cluster.node(2), urlsplit(share["url"]).path)
    assert opened.status_code == 302, opened.text[:300]
    assert opened.headers["Location"].endswith(f"/viewer/{stored.study}/")
    for base in (cluster.node(2), cluster.url):
        assert guest.get(base, f"/api/studies/{stored.study}").status_code == 200

    revoked = sharer.request("DELETE", cluster.node(1), f"/api/shares/{share['id']}")
    assert revoked.status_code == 204, revoked.text[:300]
    _until(
        SHARE_CHECK_SECONDS + 5,
        "the revoked link refused on node 2",
        lambda: guest.get(cluster.node(2), f"/api/studies/{stored.study}").status_code == 410,
    )
    time.sleep(SHARE_CHECK_SECONDS)  # every process of every node has re-read the link
    for base in (cluster.node(2), cluster.url, cluster.node(2), cluster.url):
        gone = guest.get(base, f"/api/studies/{stored.study}")
        assert gone.status_code == 410, (base, gone.status_code)
        assert gone.json()["code"] == "share_gone"
    again = Browser(cluster).get(cluster.node(2), urlsplit(share["url"]).path)
    assert again.status_code in (404, 410)


def _admin_change_user(admin: Browser, base: str, pk: int, **changes: Any) -> None:
    """Change a user in the admin of the node at ``base``, as its form submits: ``groups``
    (names) and ``is_active`` (bool)."""
    path = f"/admin/auth/user/{pk}/change/"
    page = admin.get(base, path)
    assert page.status_code == 200, page.text[:300]
    form = form_with_options(page.text)
    fields = {k: v for k, v in form.fields.items() if k not in ("_save", "_continue")}
    if "groups" in changes:
        fields["groups"] = [form.options["groups"][name] for name in changes["groups"]]
    if "is_active" in changes:
        fields["is_active"] = ["on"] if changes["is_active"] else []
    saved = admin.post(base, path, data={**fields, "_save": "Save"})
    assert saved.status_code == 302, saved.text[:2000]


def test_a_role_change_and_a_deactivation_on_one_node_apply_on_the_other(
    cluster: Cluster, stored: Study
) -> None:
    demoted = Browser(cluster)
    demoted.log_in(cluster.node(2), "demoted")  # a local account in no group: radiologist
    study = f"/api/studies/{stored.study}"
    for _ in range(4):  # every process of node 2 that answers remembers the role
        assert demoted.get(cluster.node(2), study).status_code == 200
    admin = Browser(cluster)
    admin.log_in(cluster.node(1), "admin")

    _admin_change_user(admin, cluster.node(1), cluster.users["demoted"], groups=["clinician"])
    changed = time.monotonic()
    # A clinician with no EHR launch sees no study: 404, as for an unknown one.
    assert demoted.get(cluster.node(1), study).status_code == 404  # at once where it was made
    _until(
        ROLE_CACHE_SECONDS + 5,
        "the new role on node 2",
        lambda: demoted.get(cluster.node(2), study).status_code == 404,
    )
    time.sleep(max(0.0, changed + ROLE_CACHE_SECONDS + 0.5 - time.monotonic()))
    for base in (cluster.node(2),) * 4 + (cluster.url,) * 4:
        assert demoted.get(base, study).status_code == 404

    _admin_change_user(admin, cluster.node(1), cluster.users["demoted"], is_active=False)
    for base in (cluster.node(2),) * 4 + (cluster.url,) * 4:  # at once: read each request
        assert demoted.get(base, study).status_code == 401


def test_nginx_stores_no_private_image_and_does_store_static_files(
    cluster: Cluster, stored: Study
) -> None:
    reader = Browser(cluster)
    reader.log_in(cluster.url, "reader")
    path = f"{stored.path}/frames/1/rendered?window=40,400"
    for _ in range(3):
        image = reader.get(cluster.url, path)
        assert image.status_code == 200
        assert image.headers["Cache-Control"].startswith("private")
        assert image.headers["X-Cache-Status"] != "HIT"
    stranger = Browser(cluster).get(cluster.url, path)
    assert stranger.status_code in (302, 401, 403, 404), stranger.status_code
    assert not stranger.headers.get("Content-Type", "").startswith("image/")

    statuses = [Browser(cluster).get(cluster.url, "/static/viewer/js/main.js") for _ in range(2)]
    assert [s.status_code for s in statuses] == [200, 200]
    assert "public" in statuses[1].headers["Cache-Control"]
    assert statuses[1].headers["X-Cache-Status"] == "HIT"
    # What nginx stored: each cache file names its key ($scheme$proxy_host$request_uri).
    found = [
        re.search(rb"\nKEY: ([^\n]*)\n", p.read_bytes())
        for p in Path(cluster.nginx.extra["cache_dir"]).rglob("*")
        if p.is_file()
    ]
    keys = [m[1].decode() if m else "(a file without a key)" for m in found]
    assert keys and all(key.endswith("/static/viewer/js/main.js") for key in keys), keys


def test_a_live_stream_passes_nginx_unbuffered(cluster: Cluster, stored: Study) -> None:
    sharer = Browser(cluster)
    sharer.log_in(cluster.url, "sharer")
    made = sharer.post(
        cluster.url,
        "/api/shares",
        json={"study_instance_uids": [stored.study], "live": True},
    )
    assert made.status_code == 201, made.text[:300]
    started = time.monotonic()
    with requests.get(
        f"{cluster.url}/api/shares/{made.json()['id']}/live",
        headers={
            "Cookie": "; ".join(f"{k}={v}" for k, v in sharer.cookies.items()),
            "Accept": "text/event-stream",
        },
        stream=True,
        timeout=10,
        verify=str(cluster.certificate),
    ) as stream:
        assert stream.status_code == 200
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        lines = (line.decode() for line in stream.iter_lines(chunk_size=1))
        first = next(line for line in lines if line.startswith("event:"))
        assert first == "event: state"
        # The keep-alive comment comes every second: each one passes at once.
        comments = 0
        for line in lines:
            comments += line.startswith(":")
            if comments == 2:
                break
    assert time.monotonic() - started < 6


def test_with_one_node_killed_gets_through_nginx_keep_succeeding(
    cluster: Cluster, stored: Study
) -> None:
    """Eight clients GET rendered images (each its own window, so each is rendered) and
    study metadata through nginx; node 2 and its workers are SIGKILLed midway. At most the
    requests in flight at that moment may fail; everything after succeeds, from node 1."""
    clients, before, after = 8, 3.0, 6.0
    killed_at: list[float] = []
    results: list[tuple[float, int | str]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(number: int) -> None:
        session = requests.Session()  # kept alive to nginx, as a browser's connection
        session.headers.update(cluster.bearer(cluster.url))
        count = 0
        while not stop.is_set():
            count += 1
            path = (
                f"{stored.path}/rendered?window={number * 10},{100 + count}"
                if count % 3
                else f"/dicom-web/studies/{stored.study}/series"
            )
            try:
                # verify= on each request: a Session's is overridden by REQUESTS_CA_BUNDLE.
                outcome: int | str = session.get(
                    f"{cluster.url}{path}", timeout=TIMEOUT, verify=str(cluster.certificate)
                ).status_code
            except requests.RequestException as exc:
                outcome = type(exc).__name__
            with lock:
                results.append((time.monotonic(), outcome))

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(before)
    victim = cluster.nodes[1].process.pid
    for pid in [victim, *_descendants(victim)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    killed_at.append(time.monotonic())
    time.sleep(after)
    stop.set()
    for thread in threads:
        thread.join(timeout=TIMEOUT + 5)
    cluster.nodes[1].process.wait(timeout=10)

    failed = [(t - killed_at[0], o) for t, o in results if o != 200]
    served_before = sum(1 for t, o in results if o == 200 and t < killed_at[0])
    served_after = sum(1 for t, o in results if o == 200 and t > killed_at[0] + 1)
    outcomes = Counter(o for _, o in results)
    log = Path(cluster.nginx.extra["access_log"]).read_text()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "cluster-node-killed.json").write_text(
        json.dumps(
            {
                "clients": clients,
                "served_before_kill": served_before,
                "served_after_kill": sum(1 for t, o in results if o == 200 and t > killed_at[0]),
                "failed": [[round(t, 3), o] for t, o in failed],
                "outcomes": {str(k): v for k, v in outcomes.items()},
                # requests nginx sent on to the other node (upstream=<a>, <b>/502, 200)
                "passed_on": sum(1 for line in log.splitlines() if "/502, " in line),
            },
            indent=1,
        )
    )
    assert served_before > clients and served_after > clients, (
        served_before,
        served_after,
        outcomes,
    )
    assert len(failed) <= clients, failed
    assert all(t < 1.0 for t, _ in failed), failed  # only those in flight at the kill
    last = [o for t, o in results if t > killed_at[0] + 1]
    assert last and all(o == 200 for o in last)
    node1 = f"127.0.0.1:{cluster.nodes[0].port}"
    node2 = f"127.0.0.1:{cluster.nodes[1].port}"
    assert f"upstream={node2}" in log  # both nodes served before the kill
    assert f"upstream={node1}" in log
