"""viewer.dicom.decoder_pool: real worker processes that really crash, spin, hang and
over-allocate; each failure costs its own call, and the pool goes on with a new worker.

The functions the workers run are defined here at module level (a worker imports them by
name). They stand for what a broken native decoder does to its process.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from viewer.dicom.decoder_pool import DecoderFailed, DecoderPool, Limits


def segfault() -> None:
    ctypes.string_at(0)  # reads address 0: SIGSEGV


def abort() -> None:
    os.abort()


def spin() -> None:
    while True:
        pass


def sleep(seconds: float) -> str:
    time.sleep(seconds)
    return "slept"


def allocate(gigabytes: int) -> int:
    return len(bytearray(gigabytes * 1024**3))


def exit_with(status: int) -> None:
    os._exit(status)


def array(rows: int, columns: int) -> np.ndarray:
    return np.arange(rows * columns, dtype=np.uint16).reshape(rows, columns)


def empty_array() -> np.ndarray:
    return np.zeros((0, 4), dtype=np.int16)


def pid() -> int:
    return os.getpid()


@pytest.fixture
def pool() -> Iterator[DecoderPool]:
    pool = DecoderPool(
        Limits(processes=2, cpu_seconds=1, memory_bytes=512 * 1024**2, timeout_seconds=5)
    )
    pool.warm()
    yield pool
    pool.close()


@pytest.mark.parametrize(("rows", "columns"), [(300, 200), (1500, 1100)])  # pipe; memfd
def test_an_array_comes_back_whole_and_writable(pool: DecoderPool, rows: int, columns: int) -> None:
    result = pool.call(array, rows, columns)
    assert result.shape == (rows, columns) and result.dtype == np.uint16
    expected = np.arange(rows * columns, dtype=np.uint16).reshape(rows, columns)
    assert np.array_equal(result, expected)
    result[0, 0] = 7  # the frame cache and the pipeline may write into it
    assert pool.call(empty_array).shape == (0, 4)
    assert pool.call(sleep, 0) == "slept"


@pytest.mark.parametrize(
    ("function", "args", "words"),
    [
        (segfault, (), "crashed (SIGSEGV)"),
        (abort, (), "crashed (SIGABRT)"),
        (spin, (), "CPU-time limit (SIGXCPU)"),
        (allocate, (4,), "MemoryError"),
        (exit_with, (3,), "exited with status 3"),
    ],
)
def test_a_failure_costs_its_own_call_and_the_pool_goes_on(
    pool: DecoderPool, function: object, args: tuple[int, ...], words: str
) -> None:
    before = set(pool.pids())
    assert len(before) == 2 and os.getpid() not in before
    with pytest.raises(DecoderFailed) as caught:
        pool.call(function, *args)  # type: ignore[arg-type]
    assert words in caught.value.reason
    assert caught.value.deterministic  # the same input fails the same way: remember it
    assert pool.replaced == 1
    # The next calls are answered; a fresh worker is forked where the failed one was.
    answered = {pool.call(pid) for _ in range(4)}
    after = set(pool.pids())
    assert answered <= after and len(after) == 2
    assert len(before - after) == 1


def test_a_worker_that_does_not_answer_in_time_is_killed_and_replaced(
    pool: DecoderPool,
) -> None:
    started = time.monotonic()
    with pytest.raises(DecoderFailed) as caught:
        pool.call(sleep, 60)
    assert 4.5 < time.monotonic() - started < 10
    assert "did not finish within 5 s" in caught.value.reason
    assert not caught.value.deterministic  # load can cause it: not remembered as undecodable
    assert pool.call(sleep, 0) == "slept"


def test_a_crash_does_not_touch_calls_in_flight_on_other_workers(pool: DecoderPool) -> None:
    results: list[object] = []
    neighbour = threading.Thread(target=lambda: results.append(pool.call(sleep, 1.0)))
    neighbour.start()
    time.sleep(0.2)
    with pytest.raises(DecoderFailed):
        pool.call(segfault)
    neighbour.join()
    assert results == ["slept"]


def test_callers_beyond_the_pool_size_wait_for_a_free_worker(pool: DecoderPool) -> None:
    results: list[object] = []
    threads = [
        threading.Thread(target=lambda: results.append(pool.call(sleep, 0.5))) for _ in range(4)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["slept"] * 4
    assert time.monotonic() - started >= 1.0  # two at a time


def test_a_closed_pool_refuses_and_leaves_no_worker_behind() -> None:
    pool = DecoderPool(Limits(processes=2))
    pool.warm()
    workers = {pool.call(pid) for _ in range(4)}
    pool.close()
    for number in workers:
        with pytest.raises(ProcessLookupError):
            os.kill(number, 0)
    with pytest.raises(DecoderFailed, match="closed"):
        pool.call(pid)


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError):
        Limits(processes=0)
    with pytest.raises(ValueError):
        Limits(timeout_seconds=0)
