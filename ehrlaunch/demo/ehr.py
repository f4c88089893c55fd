"""A demo EHR: a patient chart that frames Loupe with a signed launch.

Run beside Loupe (``manage.py demo`` starts it)::

    python -m ehrlaunch.demo.ehr CONFIG.json

It serves one page on its own origin (``http://localhost:8001`` while Loupe is on
``http://127.0.0.1:8000``: another host name, so the frame is a real cross-site one, as in
a hospital). Each page load signs a fresh launch (HS256 with the secret the EHR shares
with Loupe, ``exp`` two minutes ahead, a new ``jti``) for the chart's patient and the
chosen study, and puts Loupe's launch URL in an iframe. The page has no script.

The config file, written by ``manage.py demo`` (mode 0600), holds ``port``, ``loupe_url``,
``issuer``, ``audience``, ``secret``, ``user``, ``role``, ``patient`` (``name``, ``id``,
``issuer``, ``birth_date``, ``sex``) and ``studies`` (``key``, ``label``, ``uid``, and an
optional ``note`` shown beside the label), the chart's imaging list; the first is the one
launched when the page names none (the demo's: the current phantom study, which Loupe
opens with its prior hung beside it, then the prior).
This module is standalone (no Django): tests start it in a thread with :func:`serve`.
"""

from __future__ import annotations

import argparse
import html
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt

LABS = (
    ("Creatinine", "0.9 mg/dL", "0.6-1.2"),
    ("eGFR", "88 mL/min/1.73m²", ">60"),
    ("Haemoglobin", "13.1 g/dL", "13.5-17.5"),
    ("CEA", "6.2 ng/mL", "<5.0"),
)

STYLE = """
body{margin:0;font:14px system-ui,sans-serif;background:#eef1f4;color:#1c2430}
header{background:#1f4e79;color:#fff;padding:10px 16px;display:flex;gap:24px;align-items:baseline}
header h1{font-size:18px;margin:0}
.banner{background:#fff;border-bottom:1px solid #c9d2dc;padding:8px 16px;display:flex;gap:28px}
.banner b{display:block;font-size:11px;color:#5b6b7d;text-transform:uppercase}
main{display:grid;grid-template-columns:330px 1fr;gap:12px;padding:12px;height:calc(100vh - 120px)}
section{background:#fff;border:1px solid #c9d2dc;border-radius:4px;padding:8px 12px;overflow:auto}
table{border-collapse:collapse;width:100%}td,th{padding:4px;border-bottom:1px solid #e3e8ee;text-align:left}
.flag{color:#b3261e;font-weight:600}
.images{display:flex;flex-direction:column;padding:0}
.images nav{padding:6px 10px;border-bottom:1px solid #e3e8ee;display:flex;gap:12px}
.images nav ul{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:6px 20px}
.images nav a[aria-current]{font-weight:700}
.images nav small{color:#5b6b7d}
iframe{flex:1;border:0;width:100%;min-height:500px;background:#000}
"""


def sign_launch(config: dict[str, Any], study_uid: str, *, now: float | None = None) -> str:
    """A signed launch as the EHR makes it: valid 2 minutes, used once."""
    # ``clock_offset_seconds`` moves the EHR's clock (tests use it to send an expired launch).
    issued = int(now if now is not None else time.time()) + int(
        config.get("clock_offset_seconds", 0)
    )
    claims = {
        "iss": config["issuer"],
        "aud": config["audience"],
        "iat": issued,
        "exp": issued + 120,
        "jti": str(uuid.uuid4()),
        "sub": config["user"],
        "name": config.get("user_name", config["user"]),
        "role": config["role"],
        "patient": {"id": config["patient"]["id"], "issuer": config["patient"]["issuer"]},
        "study": [study_uid],
    }
    return jwt.encode(claims, config["secret"], algorithm="HS256")


def chart_page(config: dict[str, Any], study_key: str) -> str:
    studies = config["studies"]
    chosen = next((s for s in studies if s["key"] == study_key), studies[0])
    launch = sign_launch(config, chosen["uid"])
    src = f"{config['loupe_url'].rstrip('/')}/ehrlaunch/launch?{urlencode({'launch': launch})}"
    patient = config["patient"]
    e = html.escape
    items = "".join(
        f'<li><a href="/?{urlencode({"study": s["key"]})}"'
        + (' aria-current="page"' if s is chosen else "")
        + f">{e(s['label'])}</a>"
        + (f" <small>{e(s['note'])}</small>" if s.get("note") else "")
        + "</li>"
        for s in studies
    )
    labs = "".join(
        f"<tr><td>{e(n)}</td><td{' class=flag' if n in ('Haemoglobin', 'CEA') else ''}>{e(v)}</td>"
        f"<td>{e(r)}</td></tr>"
        for n, v, r in LABS
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Demo EHR · {e(patient["name"])}</title>
<meta name="referrer" content="no-referrer">
<style>{STYLE}</style></head>
<body>
<header><h1>Demo EHR</h1><span>Oncology clinic · signed in as {e(config.get("user_name", config["user"]))}</span></header>
<div class="banner" id="patient-banner">
  <div><b>Patient</b>{e(patient["name"])}</div><div><b>MRN</b>{e(patient["id"])}</div>
  <div><b>Born</b>{e(patient["birth_date"])}</div><div><b>Sex</b>{e(patient["sex"])}</div>
  <div><b>Allergies</b>Iodinated contrast: none known</div>
</div>
<main>
  <section><h2>Labs</h2><table><tr><th>Test</th><th>Result</th><th>Range</th></tr>{labs}</table>
  <h2>Problems</h2><p>Right lower lobe nodule, follow-up CT.</p></section>
  <section class="images"><nav aria-label="Imaging studies"><b>Images</b>
  <ul id="imaging-studies">{items}</ul></nav>
  <iframe id="loupe" title="Loupe images" src="{e(src)}" allow="fullscreen"></iframe></section>
</main></body></html>"""


def _handler(config: dict[str, Any]) -> type[BaseHTTPRequestHandler]:
    class ChartHandler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path != "/":
                self.send_error(404, "not found")
                return
            study = parse_qs(url.query).get("study", [""])[0]
            body = chart_page(config, study).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("Referrer-Policy", "no-referrer")
            self.send_header(
                "Content-Security-Policy",
                f"default-src 'none'; style-src 'unsafe-inline'; frame-src {config['loupe_url']}",
            )
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return  # the query string is harmless here, but keep the demo quiet

    return ChartHandler


def serve(config: dict[str, Any], host: str = "localhost") -> ThreadingHTTPServer:
    """Start the chart server in a daemon thread; ``shutdown()`` stops it."""
    server = ThreadingHTTPServer((host, int(config["port"])), _handler(config))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m ehrlaunch.demo.ehr", description=__doc__)
    parser.add_argument("config", type=Path)
    args = parser.parse_args()
    config = json.loads(args.config.read_text())
    server = ThreadingHTTPServer(("localhost", int(config["port"])), _handler(config))
    print(f"Demo EHR on http://localhost:{config['port']}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
