"""Fuzzing of every parser of untrusted input: Hypothesis profiles, budgets and figures.

Profiles (``LOUPE_FUZZ_PROFILE``; ``ci`` where the environment has ``CI=true``, else
``dev``):

* ``ci``: derandomized (every run tries the same inputs, so a red CI is reproducible),
  no example database, the budgets below as written; the whole folder runs in about
  three to five minutes on two cores;
* ``dev``: random, with the example database in ``.hypothesis/`` (a failure found once
  is tried first next time), the same budgets;
* ``long``: random, fifteen times the budgets, for a run of half an hour or so.

``LOUPE_FUZZ_EXAMPLES`` multiplies every budget (``LOUPE_FUZZ_EXAMPLES=20`` for a long
run under any profile, ``0.2`` for a quick look).

Every test counts the inputs it tried (``fuzz.tried(outcome)``); the run ends with a
table of parser, inputs, seconds and findings, also written as ``fuzz-report.json`` to
the artifacts folder (``LOUPE_TEST_ARTIFACTS``).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, Phase, settings

from tests.conftest import ARTIFACTS

_SHARED = {
    "deadline": None,
    "print_blob": True,
    "suppress_health_check": [
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.large_base_example,
        HealthCheck.function_scoped_fixture,
    ],
    # No "explain" phase: it re-runs a failing test many times to name the lines it
    # went through, which costs minutes for these inputs and adds little.
    "phases": [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
}
settings.register_profile("ci", derandomize=True, database=None, **_SHARED)  # type: ignore[arg-type]
settings.register_profile("dev", **_SHARED)  # type: ignore[arg-type]
settings.register_profile("long", **_SHARED)  # type: ignore[arg-type]
_MULTIPLIERS = {"ci": 1.0, "dev": 1.0, "long": 15.0}

PROFILE = os.environ.get("LOUPE_FUZZ_PROFILE") or (
    "ci" if os.environ.get("CI", "").lower() == "true" else "dev"
)
if PROFILE not in _MULTIPLIERS:
    raise pytest.UsageError(
        f"LOUPE_FUZZ_PROFILE={PROFILE!r}: use one of {', '.join(sorted(_MULTIPLIERS))}"
    )
settings.load_profile(PROFILE)


def _multiplier() -> float:
    raw = os.environ.get("LOUPE_FUZZ_EXAMPLES", "").strip()
    if not raw:
        return _MULTIPLIERS[PROFILE]
    try:
        number = float(raw)
    except ValueError:
        raise pytest.UsageError(
            f"LOUPE_FUZZ_EXAMPLES={raw!r} is not a number (a multiplier of the budgets)"
        ) from None
    if not (math.isfinite(number) and number > 0):
        raise pytest.UsageError(f"LOUPE_FUZZ_EXAMPLES={raw!r} must be above 0")
    return number


MULTIPLIER = _multiplier()

# The longest one input may take anywhere before it counts as a hang: above the decoder
# pool's own wall-clock limit (60 s), which turns a stuck decoder into a 422 itself.
HANG_SECONDS = 90.0

F = TypeVar("F", bound=Callable[..., Any])


def budget(examples: int) -> Callable[[F], F]:
    """``@settings(max_examples=...)`` for a test's budget under the current multiplier."""
    return settings(max_examples=max(1, round(examples * MULTIPLIER)))


class Hang(AssertionError):
    """One input ran longer than HANG_SECONDS."""


@contextlib.contextmanager
def no_hang(seconds: float = HANG_SECONDS) -> Iterator[None]:
    """Fail with :class:`Hang` when the block runs longer than ``seconds`` (SIGALRM, so
    this works in the main thread, where pytest runs tests)."""

    def expire(signum: int, frame: FrameType | None) -> None:
        raise Hang(f"one input took longer than {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Figures:
    """What one fuzz test did: inputs tried, how they ended, time, findings."""

    parser: str
    inputs: int = 0
    seconds: float = 0.0
    slowest_input_seconds: float = 0.0
    outcomes: Counter[str] = field(default_factory=Counter)
    findings: list[str] = field(default_factory=list)
    _started: float = 0.0

    def __repr__(self) -> str:  # shown in Hypothesis's failing example: keep it short
        return f"<figures of {self.parser}: {self.inputs} inputs>"

    def tried(self, outcome: str) -> None:
        """Count one input and how it ended (``ok`` or an error code)."""
        self.inputs += 1
        self.outcomes[outcome] += 1

    @contextlib.contextmanager
    def one_input(self) -> Iterator[None]:
        """Time one input and bound it (:func:`no_hang`)."""
        started = time.perf_counter()
        try:
            with no_hang():
                yield
        finally:
            self.slowest_input_seconds = max(
                self.slowest_input_seconds, time.perf_counter() - started
            )

    def as_dict(self) -> dict[str, Any]:
        return {
            "parser": self.parser,
            "inputs": self.inputs,
            "seconds": round(self.seconds, 2),
            "slowest_input_seconds": round(self.slowest_input_seconds, 3),
            "findings": len(self.findings),
            "finding_details": self.findings,
            "outcomes": dict(self.outcomes.most_common()),
        }


_figures: dict[str, Figures] = {}


def _parser_name(item: pytest.Item) -> str:
    module = Path(str(item.fspath)).stem.removeprefix("test_fuzz_")
    return f"{module}: {item.name.removeprefix('test_')}"


@pytest.fixture
def fuzz(request: pytest.FixtureRequest) -> Figures:
    """This test's figures (count every input with ``fuzz.tried(outcome)``)."""
    return _figures.setdefault(request.node.nodeid, Figures(_parser_name(request.node)))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "fuzz: a Hypothesis fuzz test of a parser (tests/fuzz)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.fuzz)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    started = time.perf_counter()
    yield
    found = _figures.get(item.nodeid)
    if found is not None:
        found.seconds += time.perf_counter() - started


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    found = _figures.get(item.nodeid)
    if found is not None and report.when == "call" and report.failed and call.excinfo:
        error = call.excinfo.value
        first_line = (str(error).strip().splitlines() or [""])[0][:300]
        found.findings.append(f"{type(error).__name__}: {first_line}")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _figures:
        return
    rows = sorted(_figures.values(), key=lambda f: f.parser)
    width = max(len(r.parser) for r in rows)
    write = terminalreporter.write_line
    terminalreporter.section(
        f"fuzz figures (profile {PROFILE}, budget ×{MULTIPLIER:g})", sep="-", bold=True
    )
    write(f"{'parser'.ljust(width)}  {'inputs':>7}  {'seconds':>8}  {'slowest':>8}  findings")
    for row in rows:
        write(
            f"{row.parser.ljust(width)}  {row.inputs:>7}  {row.seconds:>8.1f}  "
            f"{row.slowest_input_seconds:>8.2f}  {len(row.findings)}"
        )
    total_inputs = sum(r.inputs for r in rows)
    total_seconds = sum(r.seconds for r in rows)
    total_findings = sum(len(r.findings) for r in rows)
    write(
        f"{'total'.ljust(width)}  {total_inputs:>7}  {total_seconds:>8.1f}  {'':>8}  {total_findings}"
    )
    report = {
        "profile": PROFILE,
        "multiplier": MULTIPLIER,
        "total_inputs": total_inputs,
        "total_seconds": round(total_seconds, 1),
        "total_findings": total_findings,
        "parsers": [r.as_dict() for r in rows],
    }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / "fuzz-report.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    write(f"written to {path}")
