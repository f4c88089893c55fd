"""ROI statistics through the real API: a 200×200 px ellipse on a 512² CT slice and on the
2446×2010 radiograph, cold (frame cache empty) and with the frame cached.

    .venv/bin/python -m bench.measure [--corpus PATH] [--series PATH] [--radiograph PATH]
                                      [--requests N] [--cold-trials N]

One Loupe under gunicorn (``-w 1``, sync: one process, so the frame cache a request fills
is the one the next request reads) with the middle slice of the CT series and the
radiograph imported; the bench user logged in. Each request is ``POST /api/measurements``
of an ellipse (200 × 200 px bounding box, centred), timed by the client on loopback over a
kept-alive connection, from the request's first byte to the answer's last: the server's
time plus loopback. Cold: the server restarted (frame cache empty), one request that
does not read the frame (the study's metadata), then the timed POST; cached: the same
POST repeated. Prints median and p95 in ms; the target is a cached CT median under
20 ms. Writes ``bench/results/measure-<timestamp>.json``. Details: bench/README.md.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import time
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

import pydicom

from bench.harness import (
    HOST,
    BenchRun,
    Gunicorn,
    argument_parser,
    checks_lines,
    login,
    machine_facts,
    percentile,
    relaunch,
    series_files,
    series_folder,
    start_loupe,
)

PROGRAM = "bench.measure"
TARGET_CACHED_CT_MS = 20.0
BOX = 200  # px: the ellipse's bounding box


def ellipse_points(rows: int, columns: int) -> list[list[float]]:
    """The opposite corners of a BOX × BOX box centred on the image (image coordinates)."""
    x0, y0 = (columns - BOX) / 2, (rows - BOX) / 2
    return [[x0, y0], [x0 + BOX, y0 + BOX]]


def measurement_body(dataset: pydicom.Dataset) -> bytes:
    return json.dumps(
        {
            "study_instance_uid": dataset.StudyInstanceUID,
            "series_instance_uid": dataset.SeriesInstanceUID,
            "sop_instance_uid": dataset.SOPInstanceUID,
            "frame": 1,
            "kind": "ellipse",
            "points": ellipse_points(int(dataset.Rows), int(dataset.Columns)),
            "label": "bench",
        }
    ).encode()


def timed_post(
    conn: HTTPConnection, body: bytes, headers: dict[str, str]
) -> tuple[float, int, Any]:
    start = time.perf_counter()
    conn.request("POST", "/api/measurements", body=body, headers=headers)
    response = conn.getresponse()
    data = response.read()
    elapsed = (time.perf_counter() - start) * 1000
    try:
        answer = json.loads(data)
    except ValueError:
        answer = None
    return elapsed, response.status, answer


def check_answer(name: str, status: int, answer: Any, problems: list[str]) -> None:
    """201 with ROI statistics over about π·100² pixels."""
    if status != 201 or not isinstance(answer, dict):
        problems.append(f"{name}: POST /api/measurements gave {status}: {str(answer)[:200]}")
        return
    result = answer.get("result", {})
    pixels = result.get("pixels", {}).get("value")
    if "mean" not in result or pixels is None or abs(pixels - math.pi * 100**2) > 2 * math.pi * 100:
        problems.append(f"{name}: unexpected result {str(result)[:200]}")


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "median_ms": round(statistics.median(samples), 2),
        "p95_ms": round(percentile(samples, 0.95), 2),
        "n": len(samples),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argument_parser(PROGRAM, __doc__)
    parser.add_argument(
        "--radiograph",
        type=Path,
        metavar="PATH",
        help="the radiograph (default: LOUPE_BENCH_RADIOGRAPH, else the corpus's "
        "cr-monochrome1/Monochrome1-Jpeg.dcm, 2446×2010)",
    )
    parser.add_argument("--requests", type=int, default=200, help="timed cached requests per image")
    parser.add_argument("--cold-trials", type=int, default=8, help="restarts per image, cold")
    args = parser.parse_args(argv)
    files = series_files(series_folder(args), PROGRAM)
    ct_path = sorted(files)[len(files) // 2]
    radiograph = args.radiograph or Path(
        os.environ.get("LOUPE_BENCH_RADIOGRAPH")
        or args.corpus / "cr-monochrome1" / "Monochrome1-Jpeg.dcm"
    )
    images = {
        "ct": pydicom.dcmread(ct_path, stop_before_pixels=True),
        "radiograph": pydicom.dcmread(radiograph, stop_before_pixels=True),
    }
    bench = BenchRun("measure")
    problems: list[str] = []
    figures: dict[str, dict[str, Any]] = {}
    server: Gunicorn = start_loupe(
        "measure", log=bench.log, workers=1, threads=1, imports=[ct_path, radiograph], objects=2
    )
    try:
        headers = {**login(server.port), "Content-Type": "application/json"}
        cold: dict[str, list[float]] = {name: [] for name in images}
        for trial in range(args.cold_trials):
            for name, dataset in images.items():
                server.process.terminate()
                server.process.wait(timeout=30)
                server.process = relaunch(
                    server.process, server.port, server.env, bench.log, "/login/"
                )
                conn = HTTPConnection(HOST, server.port, timeout=60)
                conn.request("GET", f"/api/studies/{dataset.StudyInstanceUID}", headers=headers)
                conn.getresponse().read()  # the worker's first request, without the frame
                elapsed, status, answer = timed_post(conn, measurement_body(dataset), headers)
                conn.close()
                check_answer(f"{name} cold trial {trial + 1}", status, answer, problems)
                cold[name].append(elapsed)
        for name, dataset in images.items():
            conn = HTTPConnection(HOST, server.port, timeout=60)
            body = measurement_body(dataset)
            for _ in range(5):  # warm: the frame cached, the connection open
                timed_post(conn, body, headers)
            cached = []
            for _ in range(args.requests):
                elapsed, status, answer = timed_post(conn, body, headers)
                check_answer(f"{name} cached", status, answer, problems)
                cached.append(elapsed)
            conn.close()
            figures[name] = {
                "image": f"{dataset.Rows}x{dataset.Columns} {dataset.Modality}",
                "cold": summary(cold[name]),
                "cached": summary(cached),
            }
    finally:
        server.stop()

    print(f"ROI statistics of a {BOX}×{BOX} px ellipse, POST /api/measurements, gunicorn -w 1")
    print(
        f"{'image':<28}{'cold median':>12}{'cold p95':>10}{'cached median':>15}{'cached p95':>12}"
    )
    for name, row in figures.items():
        print(
            f"{name + ' ' + row['image']:<28}{row['cold']['median_ms']:>10.1f}ms"
            f"{row['cold']['p95_ms']:>8.1f}ms{row['cached']['median_ms']:>13.1f}ms"
            f"{row['cached']['p95_ms']:>10.1f}ms"
        )
    checks = list(dict.fromkeys(problems))
    if "ct" in figures and figures["ct"]["cached"]["median_ms"] >= TARGET_CACHED_CT_MS:
        checks.append(
            f"cached CT median {figures['ct']['cached']['median_ms']} ms is over the "
            f"{TARGET_CACHED_CT_MS} ms target"
        )
    print(f"target: cached CT median under {TARGET_CACHED_CT_MS:.0f} ms")
    print("\n".join(checks_lines(checks, "every answer 201 with ROI statistics; target met")))
    return bench.finish(
        {
            "ct": str(ct_path),
            "radiograph": str(radiograph),
            "box_px": BOX,
            "server": "gunicorn -w 1 (sync), POST /api/measurements timed by the client on loopback",
            "figures": figures,
            "machine": machine_facts(),
        },
        checks,
    )


if __name__ == "__main__":
    sys.exit(main())
