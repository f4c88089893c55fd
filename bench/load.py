"""Load on the two-node setup: simulated clinicians, radiologists and a tumor board through
nginx, with locust (headless, as a library), at several user counts, on one node and two.

    python -m bench.load [--quick] [--users 10,50,100] [--seconds N] [--nodes 1,2]

Starts (``tests/servers.py``) PostgreSQL, Redis, two Loupe nodes under config/gunicorn.py
sharing the database, Redis and one data folder (each its own LOUPE_CACHE_DIR), and two
Debian nginx servers with config/nginx/loupe.conf and a self-signed certificate: one with
node 1 as its only upstream (the "1 node" runs) and one with both (the "2 nodes" runs);
node 2 idles during the 1-node runs. Imports the 99-slice CT (``<corpus>/ct-series``) and
the CT prior pair (``<corpus>/ct-prior-pair``) once; registers the demo EHR (HS256) so that
clinicians are launched from a signed context; makes radiologist accounts and a presenter
with a live share link. Then for each user count, 1 node then 2 nodes, one run of
``--seconds`` of ``bench/load_users.py`` in a process of its own (the users, their weights and
what they request are described there).

Reports per run: requests/s (all measured requests / measured seconds), p50/p95/p99 of the
image requests and of the API calls, errors (and which), the CPU used by the load
generator, the nodes, nginx, PostgreSQL and Redis; the 2-node/1-node throughput ratio at
each user count; and the targets: zero errors, p95 image latency < 150 ms at 50 users,
throughput growing from 1 node to 2. The load generator shares this machine's CPU with the
servers (2 cores here): its share is printed beside each run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pydicom
import requests

from bench.harness import (
    BenchRun,
    add_corpus_argument,
    checks_lines,
    machine_facts,
    percentile,
    process_tree_cpu,
)
from tests.paths import PROJECT_DIR
from tests.servers import (
    Server,
    manage,
    migrated_database,
    nginx_available,
    postgres_available,
    redis_available,
    self_signed_certificate,
    start_loupe_node,
    start_nginx,
    start_postgres,
    start_redis,
)

PASSWORD = "a-long-load-password-123"
RADIOLOGISTS = 10  # accounts; radiologist users share them (several sessions each)
EHR_ISSUER = "https://ehr.load.test"
TIMEOUT = 60


def csv_ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of integers: {text!r}"
        ) from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers: {text!r}")
    return values


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="20 s runs at 10 and 50 users")
    parser.add_argument("--users", type=csv_ints, default=None, help="default 10,50,100")
    parser.add_argument("--seconds", type=int, default=None, help="per run; default 60")
    parser.add_argument("--nodes", type=csv_ints, default=[1, 2], help="1, 2 or 1,2 (default)")
    parser.add_argument(
        "--followers", type=int, default=20, help="tumor-board followers (at most users // 2)"
    )
    add_corpus_argument(parser)
    args = parser.parse_args(argv)
    if args.users is None:
        args.users = [10, 50] if args.quick else [10, 50, 100]
    if args.seconds is None:
        args.seconds = 20 if args.quick else 60
    if any(n not in (1, 2) for n in args.nodes):
        parser.error("--nodes takes 1 and/or 2")
    return args


def dicom_facts(folder: Path) -> dict[str, str]:
    first = next(p for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix in ("", ".dcm"))
    ds = pydicom.dcmread(first, stop_before_pixels=True)
    return {
        "study": str(ds.StudyInstanceUID),
        "patient_id": str(ds.PatientID),
        "issuer": str(ds.get("IssuerOfPatientID", "") or ""),
    }


class Setup:
    """The servers, the data and the accounts of one bench run."""

    def __init__(self, stack: contextlib.ExitStack, root: Path, corpus: Path) -> None:
        self.servers: dict[str, Server] = {}
        self.postgres = self._keep(stack, "postgres", start_postgres())
        self.redis = self._keep(stack, "redis", start_redis())
        # The secret key every process of the run shares (migrate, the nodes, the shells).
        os.environ["LOUPE_SECRET_KEY"] = "load-bench-" + os.urandom(24).hex()
        env = migrated_database(self.postgres, "loupe", root / "shared")
        for name in ("LOUPE_DEBUG", "LOUPE_DEMO", "LOUPE_CACHE_DIR", "LOUPE_EMBED"):
            env.pop(name, None)
        env.update(
            {
                "LOUPE_REDIS_URL": self.redis.url,
                "LOUPE_HTTPS": "1",
                "LOUPE_TRUSTED_PROXIES": "127.0.0.1",
                "LOUPE_ALLOWED_HOSTS": "localhost,127.0.0.1",
                "LOUPE_LOG_LEVEL": "WARNING",
                "LOUPE_DECODER_PROCESSES": "1",
            }
        )
        self.env = env
        ct, pair = corpus / "ct-series", corpus / "ct-prior-pair"
        imported = manage(env, "import_dicom", str(ct), str(pair), "--no-progress", timeout=900)
        print("import:", imported.strip().splitlines()[-1])
        self.ct = dicom_facts(ct)
        pair_studies = sorted(p for p in pair.iterdir() if p.is_dir())
        self.pair_prior = dicom_facts(pair_studies[0])["study"]  # study1-prior-...
        self.pair_current = dicom_facts(pair_studies[-1])["study"]  # study2-current-...
        self.secret = "load-bench-ehr-secret-" + os.urandom(16).hex()
        names = [f"rad{n}" for n in range(1, RADIOLOGISTS + 1)] + ["presenter"]
        manage(
            env,
            "shell",
            "-c",
            "from django.contrib.auth.models import User; "
            "from ehrlaunch.models import EhrSystem; "
            f"[User.objects.create_user(n, password={PASSWORD!r}) for n in {names!r}]; "
            f"EhrSystem.objects.create(name='Load EHR', issuer={EHR_ISSUER!r}, "
            f"audience='loupe', algorithm='HS256', shared_secret={self.secret!r}, "
            "allowed_origins='https://ehr.load.test', "
            "role_mapping={'physician': 'clinician'}, "
            f"default_patient_issuer={self.ct['issuer']!r}, active=True)",
        )
        self.radiologists = names[:-1]
        self.nodes = []
        for number in (1, 2):
            node_root = root / f"node{number}"
            node_env = {**env, "LOUPE_CACHE_DIR": str(node_root / "cache")}
            node = self._keep(stack, f"node{number}", start_loupe_node(node_env, node_root))
            self.nodes.append(node)
        self.certificate, key = self_signed_certificate(root / "tls")
        self.nginx = {
            1: self._keep(
                stack,
                "nginx-1",
                start_nginx(
                    [f"127.0.0.1:{self.nodes[0].port}"], certificate=self.certificate, key=key
                ),
            ),
            2: self._keep(
                stack,
                "nginx-2",
                start_nginx(
                    [f"127.0.0.1:{n.port}" for n in self.nodes],
                    certificate=self.certificate,
                    key=key,
                ),
            ),
        }

    def _keep(self, stack: contextlib.ExitStack, name: str, server: Server) -> Server:
        self.servers[name] = server
        stack.callback(server.stop)
        return server

    def presenter_share(self) -> tuple[dict[str, str], str, str]:
        """The presenter signed in through nginx, and its live link of the CT: (cookies,
        share id, the link's path)."""
        base = self.nginx[2].url
        session = requests.Session()
        cookies: dict[str, str] = {}

        def call(method: str, path: str, **kwargs: Any) -> requests.Response:
            headers = dict(kwargs.pop("headers", {}))
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
            if method != "GET":
                headers["Origin"] = base
                headers["X-CSRFToken"] = cookies.get("__Host-csrftoken", "")
            answer = session.request(  # verify= here: a Session's gives way to REQUESTS_CA_BUNDLE
                method,
                f"{base}{path}",
                headers=headers,
                allow_redirects=False,
                timeout=TIMEOUT,
                verify=str(self.certificate),
                **kwargs,
            )
            for header in answer.raw.headers.getlist("Set-Cookie"):
                name, _, value = header.partition(";")[0].strip().partition("=")
                cookies[name] = value
            return answer

        page = call("GET", "/login/")
        marker = 'name="csrfmiddlewaretoken" value="'
        token = page.text.split(marker, 1)[1].split('"', 1)[0]
        signed = call(
            "POST",
            "/login/",
            data={"username": "presenter", "password": PASSWORD, "csrfmiddlewaretoken": token},
        )
        if signed.status_code != 302:
            raise RuntimeError(f"presenter sign-in answered {signed.status_code}")
        made = call(
            "POST",
            "/api/shares",
            json={
                "study_instance_uids": [self.ct["study"]],
                "live": True,
                "audience": "anyone-with-link",
                "expires_in": 6 * 3600,
            },
        )
        if made.status_code != 201:
            raise RuntimeError(f"POST /api/shares answered {made.status_code}: {made.text[:300]}")
        share = made.json()
        return cookies, str(share["id"]), urlsplit(share["url"]).path

    def warm(self) -> None:
        """Every CT slice rendered once by each node at the default window (each node's
        decoded-frame cache warm; the rendered bytes of a run's windows are not, see salt)."""
        token = manage(self.env, "issue_api_token", "load-warm", "--role", "radiologist").strip()
        headers = {"Authorization": f"Bearer {token}", "X-Forwarded-Proto": "https"}
        for node in self.nodes:
            study = requests.get(
                f"{node.url}/dicom-web/studies/{self.ct['study']}/series",
                headers={**headers, "Accept": "application/dicom+json"},
                timeout=TIMEOUT,
            )
            study.raise_for_status()
            for series in study.json():
                uid = series["0020000E"]["Value"][0]
                found = requests.get(
                    f"{node.url}/dicom-web/studies/{self.ct['study']}/series/{uid}/instances",
                    headers={**headers, "Accept": "application/dicom+json"},
                    timeout=TIMEOUT,
                )
                found.raise_for_status()
                for instance in found.json():
                    sop = instance["00080018"]["Value"][0]
                    requests.get(
                        f"{node.url}/dicom-web/studies/{self.ct['study']}/series/{uid}/"
                        f"instances/{sop}/frames/1/rendered?window=40,400",
                        headers=headers,
                        timeout=TIMEOUT,
                    ).raise_for_status()


def server_cpu(setup: Setup) -> dict[str, float]:
    return {name: process_tree_cpu(s.process.pid) for name, s in setup.servers.items()}


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def nginx_view(log: Path, offset: int, window: list[float]) -> dict[str, Any]:
    """nginx's own request times ($request_time, from its first byte read to its last byte
    sent) of the requests it finished within ``window`` (epoch seconds), from ``offset`` of
    its access log: the servers' side of the latency, without the load generator's."""
    times: dict[str, list[float]] = {"image": [], "api": []}
    with open(log, "rb") as handle:
        handle.seek(offset)
        lines = handle.read().decode(errors="replace").splitlines()
    for line in lines:
        fields = line.split()
        if len(fields) < 7:
            continue
        try:
            at = datetime.fromisoformat(fields[1].strip("[]")).timestamp()
            seconds = float(fields[6])
        except ValueError:
            continue
        method, path = fields[2].strip('"'), fields[3].strip('"')
        if not window[0] <= at <= window[1] or (method == "GET" and path.endswith("/live")):
            continue
        times["image" if "/rendered" in path else "api"].append(1000 * seconds)
    return {
        kind: {
            "requests": len(values),
            **{f"p{int(q * 100)}_ms": round(percentile(values, q), 1) for q in (0.5, 0.95, 0.99)},
        }
        for kind, values in times.items()
    }


def one_run(
    setup: Setup, shared: dict[str, Any], nodes: int, users: int, seconds: int, salt: int
) -> dict[str, Any]:
    followers = min(shared["followers"], users // 2)
    config = {
        **shared,
        "host": setup.nginx[nodes].url,
        "users": users,
        "seconds": seconds,
        "followers": followers,
        "salt": salt,
        "spawn_rate": 20,
    }
    with tempfile.TemporaryDirectory(prefix="loupe-load-") as folder:
        config_path, result_path = Path(folder) / "config.json", Path(folder) / "result.json"
        descriptor = os.open(config_path, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(config, handle)
        access_log = Path(setup.nginx[nodes].extra["access_log"])
        log_offset = access_log.stat().st_size if access_log.exists() else 0
        cpu_before, generator_before = server_cpu(setup), children_cpu()
        wall_before = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "bench.load_users", str(config_path), str(result_path)],
            cwd=PROJECT_DIR,
            capture_output=True,
            text=True,
            timeout=seconds + 300,
        )
        wall = time.monotonic() - wall_before
        generator = children_cpu() - generator_before
        cpu_after = server_cpu(setup)
        if done.returncode != 0 or not result_path.exists():
            raise RuntimeError(
                f"bench.load_users failed: {done.stdout[-2000:]}{done.stderr[-3000:]}"
            )
        result = json.loads(result_path.read_text())
    latencies = result.pop("latencies_ms")
    seen_by_nginx = nginx_view(access_log, log_offset, result["measured_epoch"])
    by_name = result.pop("by_name_ms")
    measured = result["measured_seconds"]
    total = sum(len(v) for k, v in latencies.items() if k != "setup")
    servers = {k: round(cpu_after[k] - cpu_before[k], 1) for k in cpu_before}

    def figures(values: list[float]) -> dict[str, Any]:
        return {
            "requests": len(values),
            "per_second": round(len(values) / measured, 1),
            **{f"p{int(q * 100)}_ms": round(percentile(values, q), 1) for q in (0.5, 0.95, 0.99)},
        }

    return {
        "nodes": nodes,
        "users": users,
        "followers": followers,
        "composition": result["composition"],
        "ready_users": result["ready_users"],
        "ready_seconds": round(result["ready_seconds"], 1),
        "measured_seconds": round(measured, 1),
        "requests_per_second": round(total / measured, 1),
        "image": figures(latencies["image"]),
        "api": figures(latencies["api"]),
        "setup_requests": len(latencies["setup"]),
        "nginx_request_time": seen_by_nginx,
        "by_request": {name: figures(values) for name, values in sorted(by_name.items())},
        "errors": sum(result["errors"].values()),
        "error_kinds": result["errors"],
        "cpu_seconds": {"load_generator": round(generator, 1), **servers},
        "load_generator_cpu_share": round(generator / (wall * (os.cpu_count() or 1)), 3),
        "wall_seconds": round(wall, 1),
    }


def table(runs: list[dict[str, Any]]) -> list[str]:
    lines = [
        "nodes users  req/s | image req/s p50 p95 p99 ms | api req/s p50 p95 p99 ms | errors | "
        "generator CPU | nginx p95 image/api ms",
    ]
    for r in runs:
        i, a = r["image"], r["api"]
        lines.append(
            f"{r['nodes']:>5} {r['users']:>5} {r['requests_per_second']:>6} | "
            f"{i['per_second']:>7} {i['p50_ms']:>6} {i['p95_ms']:>6} {i['p99_ms']:>6} | "
            f"{a['per_second']:>6} {a['p50_ms']:>6} {a['p95_ms']:>6} {a['p99_ms']:>6} | "
            f"{r['errors']:>6} | {100 * r['load_generator_cpu_share']:>5.0f} % | "
            f"{r['nginx_request_time']['image']['p95_ms']}/{r['nginx_request_time']['api']['p95_ms']}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for missing in (postgres_available(), redis_available(), nginx_available()):
        if missing:
            print(f"bench.load: {missing}", file=sys.stderr)
            return 2
    corpus = Path(args.corpus)
    bench = BenchRun("load")
    runs: list[dict[str, Any]] = []
    checks: list[str] = []
    with contextlib.ExitStack() as stack:
        root = Path(tempfile.mkdtemp(prefix="loupe-load-"))
        stack.callback(shutil.rmtree, root, True)
        setup = Setup(stack, root, corpus)
        setup.warm()
        cookies, share_id, share_path = setup.presenter_share()
        shared = {
            "ehr": {
                "issuer": EHR_ISSUER,
                "audience": "loupe",
                "secret": setup.secret,
                "role": "physician",
                "patient": {"id": setup.ct["patient_id"], "issuer": setup.ct["issuer"]},
            },
            "ct_study": setup.ct["study"],
            "pair_current": setup.pair_current,
            "pair_prior": setup.pair_prior,
            "radiologists": setup.radiologists,
            "password": PASSWORD,
            "presenter_cookies": cookies,
            "share_id": share_id,
            "share_path": share_path,
            "followers": args.followers,
        }
        print(
            "The load generator (locust) runs on this machine beside the servers and shares "
            f"its {os.cpu_count()} cores: its CPU share is in the last column."
        )
        salt = 0
        for users in args.users:
            for nodes in args.nodes:
                salt += 1  # each run its own windows: no run reads another's rendered bytes
                print(f"run: {nodes} node(s), {users} users, {args.seconds} s …", flush=True)
                run = one_run(setup, shared, nodes, users, args.seconds, salt)
                runs.append(run)
                print("  " + table([run])[1], flush=True)
                if run["errors"]:
                    checks.append(
                        f"{nodes} node(s), {users} users: {run['errors']} errors: "
                        f"{run['error_kinds']}"
                    )
        with contextlib.suppress(OSError):
            (bench.log).write_text(
                "".join(
                    Path(s.extra["log"]).read_text(errors="replace")[-200_000:] for s in setup.nodes
                )
            )
    ratios: dict[str, float] = {}
    for users in args.users:
        one = next((r for r in runs if r["users"] == users and r["nodes"] == 1), None)
        two = next((r for r in runs if r["users"] == users and r["nodes"] == 2), None)
        if one and two:
            ratios[str(users)] = round(two["requests_per_second"] / one["requests_per_second"], 2)
            if ratios[str(users)] <= 1.0:
                checks.append(
                    f"{users} users: throughput did not grow with the 2nd node "
                    f"(ratio {ratios[str(users)]})"
                )
    at50 = [r for r in runs if r["users"] == 50]
    for r in at50:
        if r["image"]["p95_ms"] >= 150:
            checks.append(
                f"{r['nodes']} node(s), 50 users: p95 image latency "
                f"{r['image']['p95_ms']} ms >= 150 ms"
            )
    targets = {
        "zero_errors": all(r["errors"] == 0 for r in runs),
        "p95_image_under_150ms_at_50_users": (
            all(r["image"]["p95_ms"] < 150 for r in at50) if at50 else None
        ),
        "throughput_grows_1_to_2_nodes": all(v > 1.0 for v in ratios.values()) if ratios else None,
    }
    lines = table(runs)
    lines.append(
        "throughput ratio 2 nodes / 1 node: "
        + (", ".join(f"{u} users {v}" for u, v in ratios.items()) or "(not measured)")
    )
    for name, met in targets.items():
        lines.append(
            f"target {name}: {'met' if met else 'not measured' if met is None else 'MISSED'}"
        )
    lines.append(
        "caveat: the load generator shares the 2-core machine with nginx, both nodes, "
        "PostgreSQL and Redis (see the generator CPU column)."
    )
    lines += checks_lines(checks, "passed", "targets")
    print("\n".join(lines))
    return bench.finish(
        {
            "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "machine": machine_facts(),
            "runs": runs,
            "throughput_ratio_2_over_1": ratios,
            "targets": targets,
            "table": lines,
        },
        checks,
    )


if __name__ == "__main__":
    sys.exit(main())
