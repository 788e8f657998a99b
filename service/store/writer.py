"""Group commit for the embedded store: one thread owns the write connection.

Every job queued while the previous transaction committed runs in the next one (up to
`MAX_JOBS_PER_COMMIT`), so a burst of 64 concurrent creates costs one fsync, not 64. A caller's
future is resolved, on its event loop, only after COMMIT returns: a 201 then means the write
survives `kill -9`. A failing job never takes its neighbours down: the batch is rolled back and
run again with each job in its own savepoint. A caller that gave up (cancelled) is skipped; its
write stands regardless. Nothing that goes wrong in a batch stops the thread: its callers get
`StoreUnavailable` (503) and the next batch runs as usual; should the thread end all the same,
every later caller gets `StoreUnavailable` rather than waiting for ever.

Consecutive jobs of one `Combinable` kind (new events, say) run together: one statement for all
their rows instead of a few each. That matters beyond SQLite's own cost: every statement lets go
of the GIL and must take it back from the busy event loop, so a batch of 40 creates run one by
one waited for the loop 80 times, and now a handful (~12% more creates a second, measured).

For the same reason, jobs reach the thread once per turn of their event loop, all of that turn's
together, rather than one by one: the first job of a turn used to wake the thread at once, which
then fought the loop for the GIL in the middle of its turn and began a batch with only the few
jobs queued so far. Handed over as the turn ends, they find the loop about to let go of the GIL
while it polls. Measured under bench/ingest.py's load, alternated with the one-by-one hand-over:
the loop's thread spends 83-87 µs a create instead of 95-105, the writer's 16-17 instead of
23-25, and ~6% more creates a second (16 rounds; the spread between rounds is wider).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import queue
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from service.store.base import StoreUnavailable

T = TypeVar("T")
Job = Callable[[sqlite3.Connection], Any]

MAX_JOBS_PER_COMMIT = 512
_STOP = object()
log = logging.getLogger("trigger_api")


class Combinable(ABC):
    """A job that can run together with the jobs of its class queued next to it.

    Alone (say in its savepoint, after a job of the batch failed) it is called like any job."""

    @abstractmethod
    def __call__(self, connection: sqlite3.Connection) -> Any: ...

    @classmethod
    @abstractmethod
    def run_together(cls, connection: sqlite3.Connection, jobs: Sequence[Any]) -> list[Any]:
        """Do what each of `jobs` (all of this class) would do; their results, in order."""


class GroupCommitWriter:
    """Runs jobs (plain functions of the connection) on one writer thread, in group commits."""

    def __init__(self, name: str = "sqlite-writer") -> None:
        self._name = name
        # Lists of (job, future), one per turn of a caller's loop; then _STOP.
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._this_turn: dict[asyncio.AbstractEventLoop, list[tuple[Job, asyncio.Future[Any]]]]
        self._this_turn = {}  # a loop's jobs of its current turn, not yet handed over
        self._handing_over = threading.Lock()  # callers may be on more than one loop's thread
        self._thread: threading.Thread | None = None
        self._running = False  # cleared by the thread as it ends, however it ends
        self._closing = False

    async def start(self, connect: Callable[[], sqlite3.Connection]) -> None:
        """Open the write connection (off the event loop) and start the writer thread."""
        connection = await asyncio.to_thread(connect)
        self._thread = threading.Thread(
            target=self._loop, args=(connection,), name=self._name, daemon=True
        )
        self._running = True
        self._thread.start()

    async def submit(self, job: Callable[[sqlite3.Connection], T]) -> T:
        """Run `job` in the next transaction; its result once that transaction has committed."""
        if self._thread is None or not self._running or self._closing:
            raise StoreUnavailable("store is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._handing_over:
            jobs = self._this_turn.get(loop)
            if jobs is None:
                jobs = self._this_turn[loop] = []
                loop.call_soon(self._hand_over, loop)
            jobs.append((job, future))
        return await future

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._handing_over:
            jobs = self._this_turn.pop(loop, None)
        if not jobs:
            return
        if self._running:
            self._jobs.put(jobs)
            return
        for _, future in jobs:  # the thread has ended since they were submitted
            if not future.done():
                future.set_exception(StoreUnavailable("the embedded store failed"))

    async def close(self) -> None:
        """Commit what is queued, then stop the thread and close the connection."""
        if self._thread is not None:
            self._closing = True
            with self._handing_over:  # jobs submitted this turn go before the stop
                for jobs in self._this_turn.values():
                    self._jobs.put(jobs)
                self._this_turn.clear()
            self._jobs.put(_STOP)
            await asyncio.to_thread(self._thread.join)
            self._thread = None

    def _loop(self, connection: sqlite3.Connection) -> None:
        try:
            stop = False
            while not stop:
                work: list[tuple[Job, asyncio.Future[Any]]] = []
                handed = self._jobs.get()  # wait for a turn's jobs
                while True:  # and take every turn's queued since, up to the limit
                    if handed is _STOP:
                        stop = True
                        break
                    work.extend(handed)
                    if len(work) >= MAX_JOBS_PER_COMMIT:
                        break
                    try:
                        handed = self._jobs.get_nowait()
                    except queue.Empty:
                        break
                for start in range(0, len(work), MAX_JOBS_PER_COMMIT):
                    _commit_and_answer(connection, work[start : start + MAX_JOBS_PER_COMMIT])
        finally:
            self._running = False
            connection.close()


def as_store_error(error: Exception) -> Exception:
    """Our own errors pass through; SQLite's become StoreUnavailable without internals."""
    if isinstance(error, sqlite3.Error):
        return StoreUnavailable("the embedded store failed")
    return error


class _JobFailed(Exception):
    """A job raised in a batch run without savepoints; the batch is rolled back and rerun."""


def _commit_and_answer(
    connection: sqlite3.Connection, work: list[tuple[Job, asyncio.Future[Any]]]
) -> None:
    jobs = [job for job, _ in work]
    try:
        try:
            outcomes = _transaction(connection, jobs, isolated=False)
        except _JobFailed:
            outcomes = _transaction(connection, jobs, isolated=True)
    except BaseException as error:  # whatever it was, the thread must go on
        if not isinstance(error, sqlite3.Error):
            log.exception("the SQLite writer's batch failed", exc_info=error)
        with contextlib.suppress(sqlite3.Error):
            if connection.in_transaction:  # the rollback itself failed: the next BEGIN would too
                connection.execute("ROLLBACK")
        outcomes = [(False, StoreUnavailable("the embedded store failed"))] * len(work)
    # Each caller is answered on its own loop; a loop that has closed has no one waiting.
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any]]] = {}
    for (_, future), outcome in zip(work, outcomes, strict=True):
        by_loop.setdefault(future.get_loop(), []).append((future, outcome))
    for loop, answers in by_loop.items():
        try:
            loop.call_soon_threadsafe(_resolve, answers)
        except RuntimeError:  # the loop is closed
            continue


def _transaction(
    connection: sqlite3.Connection, jobs: list[Job], *, isolated: bool
) -> list[tuple[bool, Any]]:
    """Run every job in one transaction and commit. Jobs are plain functions of the connection,
    so a rolled-back batch can run again. Savepoints cost three statements per job, so the
    common case (no job fails) runs without them."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        if isolated:
            outcomes = [_run(connection, job, isolated) for job in jobs]
        else:
            outcomes = [
                outcome
                for kind, run in itertools.groupby(jobs, key=_kind)
                for outcome in _run_together(connection, kind, list(run))
            ]
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    return outcomes


def _kind(job: Job) -> type[Combinable] | None:
    return type(job) if isinstance(job, Combinable) else None


def _run_together(
    connection: sqlite3.Connection, kind: type[Combinable] | None, jobs: list[Job]
) -> list[tuple[bool, Any]]:
    if kind is None or len(jobs) == 1:
        return [_run(connection, job, isolated=False) for job in jobs]
    try:
        return [(True, result) for result in kind.run_together(connection, jobs)]
    except Exception as error:
        raise _JobFailed from error


def _run(connection: sqlite3.Connection, job: Job, isolated: bool) -> tuple[bool, Any]:
    if not isolated:
        try:
            return True, job(connection)
        except Exception as error:
            raise _JobFailed from error
    connection.execute("SAVEPOINT job")
    try:
        outcome = True, job(connection)
    except Exception as error:
        connection.execute("ROLLBACK TO job")
        outcome = False, as_store_error(error)
    connection.execute("RELEASE job")
    return outcome


def _resolve(answers: list[tuple[asyncio.Future[Any], tuple[bool, Any]]]) -> None:
    for future, (ok, value) in answers:
        if future.done():
            continue  # the caller gave up (cancelled); the write stands regardless
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
