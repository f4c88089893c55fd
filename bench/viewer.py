"""The viewer in Debian's Chromium: time to first image, and scrolling through 99 slices.

    .venv/bin/python -m bench.viewer [--corpus PATH] [--series PATH] [--navigations 7]
                                     [--passes 3]

A fresh Loupe (gunicorn, SQLite) with the CT series imported, Chromium driven by
Playwright on loopback: the time from navigation to the viewer's first drawn slice, and
the slices drawn per second (and skipped) while 98 key presses scroll the series at 60
per second. Targets: first image under 500 ms; at least 30 slices per second with no
blank frames. Writes ``bench/results/viewer-<timestamp>.json``. How each figure is
taken: bench/README.md.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.sync_api import BrowserContext, sync_playwright

from bench.harness import (
    HOST,
    PASSWORD,
    USERNAME,
    BenchRun,
    argument_parser,
    checks_lines,
    gunicorn_config,
    machine_facts,
    series_files,
    series_folder,
    start_loupe,
)

PROGRAM = "bench.viewer"
FIRST_IMAGE_TARGET_MS = 500
SLICES_PER_SECOND_TARGET = 30

CHROMIUM = os.environ.get("LOUPE_CHROMIUM", "/usr/bin/chromium")  # Debian's, as the tests use
LAUNCH_ARGS = [
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def logged_in_context(browser: Any, base: str) -> BrowserContext:
    # bypass_csp: the bench reads performance marks with page.evaluate, which Loupe's
    # CSP (no eval) would refuse; the viewer itself runs under its normal policy.
    context: BrowserContext = browser.new_context(
        viewport={"width": 1280, "height": 800}, bypass_csp=True
    )
    page = context.new_page()
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", USERNAME)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    page.close()
    return context


def first_image_ms(browser: Any, base: str, viewer_url: str) -> float:
    context = logged_in_context(browser, base)
    try:
        page = context.new_page()
        page.goto(viewer_url)
        page.wait_for_function(
            "performance.getEntriesByName('loupe:first-image').length > 0", timeout=30_000
        )
        value: float = page.evaluate(
            "performance.getEntriesByName('loupe:first-image')[0].startTime"
        )
        return value
    finally:
        context.close()


def scroll_pass(browser: Any, base: str, viewer_url: str, slices: int) -> dict[str, float]:
    context = logged_in_context(browser, base)
    try:
        page = context.new_page()
        page.goto(viewer_url)
        page.wait_for_function("performance.getEntriesByName('loupe:first-image').length > 0")
        page.wait_for_timeout(500)  # the neighbours prefetched at load
        page.evaluate("performance.clearMarks('loupe:slice')")
        # Key presses from inside the page at exactly 60 per second (Playwright's own
        # presses round-trip through the driver and cannot keep that rate).
        page.evaluate(
            """(count) => new Promise((done) => {
                let sent = 0;
                const timer = setInterval(() => {
                    document.dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowDown" }));
                    if (++sent === count) { clearInterval(timer); done(); }
                }, 1000 / 60);
            })""",
            slices - 1,
        )
        page.wait_for_timeout(1000)
        marks: list[dict[str, float]] = page.evaluate(
            "performance.getEntriesByName('loupe:slice').map(m => ({t: m.startTime, s: m.detail}))"
        )
    finally:
        context.close()
    drawn = sorted({int(m["s"]) for m in marks})
    times = sorted(m["t"] for m in marks)
    elapsed = (times[-1] - times[0]) / 1000 if len(times) > 1 else float("nan")
    return {
        "drawn": len(drawn),
        "skipped": slices - 1 - len([s for s in drawn if s > 0]),
        "slices_per_second": (len(times) - 1) / elapsed if elapsed else float("nan"),
        "reached_last": float(slices - 1 in drawn),
    }


@dataclass
class Measured:
    facts: dict[str, Any]
    firsts: list[float]
    passes: list[dict[str, float]]


def measure(base: str, slices: int, navigations: int, passes: int) -> Measured:
    """In one Chromium: the viewer URL of the first study on the worklist, a navigation
    to warm the server, then the timed navigations and scrolling passes."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            facts = {**machine_facts(None), "chromium": browser.version}
            context = logged_in_context(browser, base)
            page = context.new_page()
            page.goto(f"{base}/")
            href = page.locator("a.open").first.get_attribute("href")
            context.close()
            viewer_url = f"{base}{href}"
            first_image_ms(browser, base, viewer_url)  # warm the server
            firsts = [first_image_ms(browser, base, viewer_url) for _ in range(navigations)]
            scrolls = [scroll_pass(browser, base, viewer_url, slices) for _ in range(passes)]
        finally:
            browser.close()
    return Measured(facts, firsts, scrolls)


def main(argv: list[str] | None = None) -> int:
    parser = argument_parser(PROGRAM, __doc__)
    parser.add_argument("--navigations", type=int, default=7, help="timed first images")
    parser.add_argument("--passes", type=int, default=3, help="timed scrolling passes")
    args = parser.parse_args(argv)
    paths: list[Path] = series_files(series_folder(args), PROGRAM)
    bench = BenchRun("viewer")
    config = gunicorn_config()
    loupe = start_loupe(
        "viewer",
        log=bench.log,
        imports=paths,
        objects=len(paths),
        settings={"LOUPE_FRAME_CACHE_MB": "512", "LOUPE_REDIS_URL": None},
    )
    try:
        measured = measure(f"http://{HOST}:{loupe.port}", len(paths), args.navigations, args.passes)
    finally:
        loupe.stop()
    firsts, passes = measured.firsts, measured.passes
    first_median = statistics.median(firsts)
    rate_median = statistics.median(p["slices_per_second"] for p in passes)
    skipped_median = statistics.median(p["skipped"] for p in passes)
    checks: list[str] = []
    if not all(p["reached_last"] for p in passes):
        checks.append("a pass did not reach the last slice")
    first_met = first_median < FIRST_IMAGE_TARGET_MS
    scroll_met = rate_median >= SLICES_PER_SECOND_TARGET and skipped_median == 0
    print(f"machine: {json.dumps(measured.facts)}; Loupe {config}, SQLite")
    print(
        f"first image after navigation: median {first_median:.0f} ms "
        f"(runs: {', '.join(f'{v:.0f}' for v in firsts)}); target < {FIRST_IMAGE_TARGET_MS} "
        f"ms: {'met' if first_met else 'NOT met'}"
    )
    print(
        f"scrolling {len(paths)} slices at 60 key presses/s: median {rate_median:.1f} slices "
        f"drawn/s, median {skipped_median:.0f} slices skipped (passes: {passes}); target >= "
        f"{SLICES_PER_SECOND_TARGET}/s with no blank frames: {'met' if scroll_met else 'NOT met'}"
    )
    print("\n".join(checks_lines(checks, "every pass reached the last slice")))
    return bench.finish(
        {
            "series": str(paths[0].parent),
            "loupe_server": config,
            "machine": measured.facts,
            "first_image_ms": firsts,
            "first_image_ms_median": first_median,
            "scroll_passes": passes,
            "slices_per_second_median": rate_median,
            "skipped_median": skipped_median,
        },
        checks,
    )


if __name__ == "__main__":
    sys.exit(main())
