"""The viewer in Debian's Chromium: time to first image, and scrolling through 99 slices.

    .venv/bin/python -m bench.viewer [--navigations 7] [--passes 3]

One run: a fresh Loupe (gunicorn, 2 workers, SQLite) with the 99-slice CT imported,
Chromium driven by Playwright on loopback.

* first image: from ``page.goto`` of the viewer URL (navigation start) to the viewer's
  ``loupe:first-image`` performance mark, set when the first slice is drawn on the canvas;
  the server is warm (a navigation before the timed ones), the browser cache is empty for
  every navigation (a new context each time, logged in by cookie);
* scrolling: after the series is hung, 98 ArrowDown key events are dispatched in the page
  at 60 per second (a fast wheel), and every drawn slice leaves a ``loupe:slice`` mark. Per
  pass: slices drawn per second between the first and the last mark, and the slices that
  were never drawn (skipped frames: the image of that slice was not ready in time).

Targets (rendering issue 4): first image under 500 ms; at least 30 slices per second
with no blank frames.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from typing import Any

from playwright.sync_api import BrowserContext, sync_playwright

from bench.ingest import (
    HOST,
    PASSWORD,
    RESULTS_DIR,
    SERIES_DIR,
    USERNAME,
    write_results,
)
from bench.render import prepare_loupe

CHROMIUM = "/usr/bin/chromium"
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--navigations", type=int, default=7)
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args(argv)
    paths = sorted(SERIES_DIR.glob("*.dcm"))
    if not paths:
        sys.exit(f"no series at {SERIES_DIR}")
    started = time.monotonic()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    log = RESULTS_DIR / f"viewer-{stamp}.gunicorn.log"
    loupe = prepare_loupe(log, paths, len(paths), 512)
    checks: list[str] = []
    try:
        base = f"http://{HOST}:{loupe.port}"
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
            facts = {
                "nproc": os.cpu_count(),
                "python": platform.python_version(),
                "chromium": browser.version,
            }
            context = logged_in_context(browser, base)
            page = context.new_page()
            page.goto(f"{base}/")
            href = page.locator("a.open").first.get_attribute("href")
            context.close()
            viewer_url = f"{base}{href}"
            first_image_ms(browser, base, viewer_url)  # warm the server
            firsts = [first_image_ms(browser, base, viewer_url) for _ in range(args.navigations)]
            passes = [
                scroll_pass(browser, base, viewer_url, len(paths)) for _ in range(args.passes)
            ]
            browser.close()
    finally:
        loupe.stop()
    first_median = statistics.median(firsts)
    rate_median = statistics.median(p["slices_per_second"] for p in passes)
    skipped_median = statistics.median(p["skipped"] for p in passes)
    if not all(p["reached_last"] for p in passes):
        checks.append("a pass did not reach the last slice")
    print(f"machine: {json.dumps(facts)}; Loupe gunicorn -w 2 (sync), SQLite")
    print(
        f"first image after navigation: median {first_median:.0f} ms "
        f"(runs: {', '.join(f'{v:.0f}' for v in firsts)}); target < 500 ms: "
        f"{'met' if first_median < 500 else 'NOT met'}"
    )
    print(
        f"scrolling 99 slices at 60 key presses/s: median {rate_median:.1f} slices drawn/s, "
        f"median {skipped_median:.0f} slices skipped (passes: {passes}); target >= 30/s with "
        f"no blank frames: {'met' if rate_median >= 30 and skipped_median == 0 else 'NOT met'}"
    )
    return write_results(
        "viewer",
        stamp,
        {
            "benchmark": "viewer",
            "timestamp": stamp,
            "machine": facts,
            "first_image_ms": firsts,
            "first_image_ms_median": first_median,
            "scroll_passes": passes,
            "slices_per_second_median": rate_median,
            "skipped_median": skipped_median,
            "problems": checks,
        },
        log=log,
        started=started,
        checks=checks,
    )


if __name__ == "__main__":
    sys.exit(main())
