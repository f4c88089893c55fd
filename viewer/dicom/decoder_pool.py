"""Worker processes for untrusted native decoders: a crash, a hang or a runaway
allocation costs the one call that caused it, never the process that asked.

The codecs that read compressed pixel data (pylibjpeg-rle, -libjpeg, -openjpeg,
simplejpeg, Pillow) are C, C++ and Rust. On bad input they can fail in ways a Python
``except`` does not see: a Rust panic is a ``BaseException``, a C decoder can write out of
bounds and crash the process, loop forever, or ask for more memory than the machine has.
So they run here, in a small pool of worker processes, each call under limits:

* **CPU time** per call (``RLIMIT_CPU``, set before each call to the CPU the worker has
  used so far plus the limit): the kernel ends a worker that spins (SIGXCPU);
* **memory** (``RLIMIT_AS``, the worker's address space at start plus the limit): an
  allocation beyond it fails inside the worker (MemoryError, or the codec's own error);
* **wall-clock time** per call, in the caller: a worker that does not answer in time is
  killed (a decoder blocked without using CPU);
* a worker that failed in any way (an exception, a panic, a signal) is never used again:
  it exits, and a fresh one is forked in its place. Core dumps are off in workers.

Workers are forked from a ``forkserver`` process that has imported the decoders once, so
a replacement costs a fork (milliseconds), not an interpreter start. Each worker serves
one call at a time over its own pipe; callers from several threads each take an idle
worker (or wait for one, within the call's time limit). A pool belongs to the process
that made it: after ``os.fork`` the child makes its own (``shared``).

A call's function must be importable by name in the worker (a module-level function);
its arguments and result are pickled, except a numpy array result, which crosses as a
memory file (memfd) that the caller maps: one copy in the worker, none in the caller.
As with any ``forkserver`` start, the program's main module must be importable without
side effects (its work under ``if __name__ == "__main__":``), as gunicorn's, manage.py
and pytest's are.

This module imports nothing from Django; ``viewer.dicom.pixels`` is its user.
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import multiprocessing
import os
import queue
import resource
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing import reduction
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

# Imported by the forkserver once, so that every forked worker starts with them loaded.
PRELOAD = ["viewer.dicom.pixels"]
# Results this large cross as a mapped memory file rather than through the pipe.
MAPPED_ARRAY_BYTES = 256 * 1024
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Limits:
    """What one pool may use: ``processes`` workers; per call, ``cpu_seconds`` of CPU,
    ``memory_bytes`` of address space above the worker's start, ``timeout_seconds`` of
    wall-clock time (which includes waiting for an idle worker)."""

    processes: int = 2
    cpu_seconds: int = 30
    memory_bytes: int = 2048 * 1024 * 1024
    timeout_seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.processes < 1 or self.cpu_seconds < 1 or self.memory_bytes < 1:
            raise ValueError("a decoder pool needs at least one process, CPU second and byte")
        if self.timeout_seconds <= 0:
            raise ValueError("a decoder pool's timeout must be above 0")


class DecoderFailed(Exception):
    """A call in a worker did not return a result.

    ``reason`` says why in words (the exception and its message, the signal, the limit);
    ``deterministic`` is False only where the same input might succeed on a retry (the
    wall-clock limit passed, which load can cause); a raised error, a crash or the CPU or
    memory limit are properties of the input.
    """

    def __init__(self, reason: str, *, deterministic: bool = True):
        super().__init__(reason)
        self.reason = reason
        self.deterministic = deterministic


# --------------------------------------------------------------------------- the worker


def _set_limits(memory_bytes: int) -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    with contextlib.suppress(OSError, AttributeError):
        # End with the process that asked, even while busy in a decoder.
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[0])
    address_space = pages * os.sysconf("SC_PAGE_SIZE") + memory_bytes
    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))


def _cpu_used() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _serve(connection: Connection, limits: Limits) -> None:
    """A worker's life: answer calls until the pipe closes or a call fails."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the process that asked
    _set_limits(limits.memory_bytes)
    while True:
        try:
            function, args = connection.recv()
        except (EOFError, OSError):
            return
        soft = int(_cpu_used()) + 1 + limits.cpu_seconds
        resource.setrlimit(resource.RLIMIT_CPU, (soft, resource.RLIM_INFINITY))
        try:
            result = function(*args)
        except BaseException as exc:  # a panic, MemoryError, anything: report it, then end
            connection.send(("error", type(exc).__name__, " ".join(str(exc).split())[:500]))
            return
        if isinstance(result, np.ndarray):
            _send_array(connection, np.ascontiguousarray(result))
        else:
            connection.send(("value", result))


def _send_array(connection: Connection, array: np.ndarray[Any, Any]) -> None:
    """A large array crosses as a memory file (memfd) whose descriptor the caller receives
    and maps: one copy here, none on the caller's side (through the pipe costs two, about
    1.5 ms per MB). A small one crosses the pipe, so that a cache of many small frames
    does not hold a mapping each."""
    if array.nbytes < MAPPED_ARRAY_BYTES:
        connection.send(("value", array))
        return
    connection.send(("array", array.dtype.str, array.shape))
    fd = os.memfd_create("loupe-frame", os.MFD_CLOEXEC)
    try:
        view, written = array.reshape(-1).view(np.uint8).data, 0
        while written < array.nbytes:  # write(2) fills the file's pages without faults
            written += os.write(fd, view[written:])
        with socket.fromfd(connection.fileno(), socket.AF_UNIX, socket.SOCK_STREAM) as channel:
            reduction.sendfds(channel, [fd])
    finally:
        os.close(fd)


def _receive_array(connection: Connection, dtype: str, shape: tuple[int, ...]) -> Any:
    kind = np.dtype(dtype)
    size = int(np.prod(shape, dtype=np.int64)) * kind.itemsize
    with socket.fromfd(connection.fileno(), socket.AF_UNIX, socket.SOCK_STREAM) as channel:
        fd = reduction.recvfds(channel, 1)[0]
    try:
        if os.fstat(fd).st_size < size:
            raise DecoderFailed("the decoder answered fewer bytes than its array needs")
        # Mapped with its pages at once; unmapped when the last array over it goes.
        memory = mmap.mmap(fd, size, flags=mmap.MAP_SHARED | mmap.MAP_POPULATE)
    except OSError as exc:  # this process is out of mappings or memory: not the image's fault
        raise DecoderFailed(
            f"the decoded frame cannot be mapped: {exc}", deterministic=False
        ) from None
    finally:
        os.close(fd)
    return np.frombuffer(memory, dtype=kind).reshape(shape)


# --------------------------------------------------------------------------- the caller


class _Worker:
    def __init__(self, context: Any, limits: Limits):
        self.connection, child = context.Pipe(duplex=True)
        self.process = context.Process(
            target=_serve, args=(child, limits), name="loupe-decoder", daemon=True
        )
        self.process.start()
        child.close()

    def alive(self) -> bool:
        return self.process.is_alive()

    def end(self) -> None:
        """Stop this worker by its PID (SIGKILL) and reap it."""
        with contextlib.suppress(OSError):
            self.connection.close()
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)

    def died_of(self) -> str:
        """Why the worker is gone, once it is."""
        self.process.join(timeout=2)
        code = self.process.exitcode
        if code is None:
            return "the decoder process stopped answering"
        if code < 0:
            number = -code
            name = signal.Signals(number).name if number in signal.valid_signals() else str(number)
            if number == signal.SIGXCPU:
                return f"the decoder used more than its CPU-time limit ({name})"
            return f"the decoder process crashed ({name})"
        return f"the decoder process exited with status {code}"


class DecoderPool:
    """A fixed number of worker processes, each answering one call at a time."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.pid = os.getpid()
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(PRELOAD)
        self._idle: queue.LifoQueue[_Worker | None] = queue.LifoQueue()
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False
        self.replaced = 0  # workers forked after one failed (for tests and the bench)
        for _ in range(limits.processes):
            self._idle.put(None)  # a slot; its worker is forked on first use

    def _fork(self) -> _Worker:
        try:
            worker = _Worker(self._context, self.limits)
        except (OSError, RuntimeError, EOFError) as exc:  # no process, no forkserver
            raise DecoderFailed(
                f"no decoder process could be started: {exc}", deterministic=False
            ) from None
        with self._lock:
            self._workers.append(worker)
        return worker

    def _retire(self, worker: _Worker) -> None:
        worker.end()
        with self._lock:
            if worker in self._workers:
                self._workers.remove(worker)
            self.replaced += 1

    def _ready(self, slot: _Worker | None) -> _Worker:
        """The slot's worker, or a new one where it has none or its worker has gone."""
        if slot is not None and slot.alive():
            return slot
        if slot is not None:
            self._retire(slot)
        return self._fork()

    def warm(self) -> None:
        """Fork every worker now (the first fork starts the forkserver, which imports the
        decoders: about a second), so that the first call does not wait for it."""
        slots = []
        try:
            for _ in range(self.limits.processes):
                slots.append(self._idle.get(timeout=self.limits.timeout_seconds))
                slots[-1] = self._ready(slots[-1])
        except (DecoderFailed, queue.Empty):
            pass  # the next call tries again
        finally:
            for slot in slots:
                self._idle.put(slot)

    def call(self, function: Callable[..., Any], *args: Any) -> Any:
        """``function(*args)`` in a worker; its result, or DecoderFailed saying why not."""
        if self._closed:
            raise DecoderFailed("the decoder pool is closed", deterministic=False)
        deadline = time.monotonic() + self.limits.timeout_seconds
        try:
            slot = self._idle.get(timeout=self.limits.timeout_seconds)
        except queue.Empty:
            raise DecoderFailed(
                f"no decoder process was free within {self.limits.timeout_seconds:g} s",
                deterministic=False,
            ) from None
        answered = False
        try:
            slot = self._ready(slot)
            result = self._exchange(slot, function, args, deadline)
            answered = True
            return result
        finally:
            if not answered and slot is not None:
                self._retire(slot)  # whatever happened, its pipe is not to be trusted
                slot = None
            self._idle.put(slot)

    def _exchange(
        self, worker: _Worker, function: Callable[..., Any], args: tuple[Any, ...], deadline: float
    ) -> Any:
        connection = worker.connection
        try:
            connection.send((function, args))
            if not connection.poll(max(deadline - time.monotonic(), 0.0)):
                raise DecoderFailed(
                    f"the decoder did not finish within {self.limits.timeout_seconds:g} s",
                    deterministic=False,
                )
            message = connection.recv()
            if message[0] == "array":
                return _receive_array(connection, message[1], message[2])
            if message[0] == "value":
                return message[1]
            _, kind, text = message
            raise DecoderFailed(f"{kind}: {text}" if text else kind)
        except (EOFError, OSError):
            raise DecoderFailed(worker.died_of()) from None

    def pids(self) -> list[int]:
        """The PIDs of the workers forked so far and not retired."""
        with self._lock:
            return [w.process.pid for w in self._workers if w.process.pid is not None]

    def close(self) -> None:
        """End every worker by its PID."""
        self._closed = True
        with self._lock:
            workers, self._workers = list(self._workers), []
        for worker in workers:
            worker.end()


_pools: dict[Limits, DecoderPool] = {}
_pools_lock = threading.Lock()


def shared(limits: Limits) -> DecoderPool:
    """This process's pool for ``limits`` (made on first use; a forked child makes its own)."""
    with _pools_lock:
        pool = _pools.get(limits)
        if pool is None or pool.pid != os.getpid():
            pool = _pools[limits] = DecoderPool(limits)
        return pool


def close_all() -> None:
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        if pool.pid == os.getpid():
            pool.close()
