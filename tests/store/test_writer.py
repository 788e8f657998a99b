"""The group-commit writer on its own: jobs are plain functions of a SQLite connection."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from service.store.base import DuplicateEventId, StoreUnavailable
from service.store.writer import GroupCommitWriter


def insert(n: int) -> Callable[[sqlite3.Connection], int]:
    def job(db: sqlite3.Connection) -> int:
        db.execute("INSERT INTO t VALUES (?)", (n,))
        return n

    return job


def rows(path: Path) -> list[int]:
    with sqlite3.connect(path) as db:
        return [n for (n,) in db.execute("SELECT n FROM t ORDER BY n")]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "writer.db"


@pytest.fixture
def statements() -> list[str]:
    """Every statement the writer's connection runs."""
    return []


@pytest.fixture
async def writer(path: Path, statements: list[str]) -> AsyncIterator[GroupCommitWriter]:
    def connect() -> sqlite3.Connection:
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        connection.execute("CREATE TABLE t (n INTEGER PRIMARY KEY)")
        connection.set_trace_callback(statements.append)
        return connection

    writer = GroupCommitWriter()
    await writer.start(connect)
    try:
        yield writer
    finally:
        await writer.close()


@contextlib.asynccontextmanager
async def holding(writer: GroupCommitWriter) -> AsyncIterator[None]:
    """Keep the writer thread busy, so that everything submitted meanwhile queues up."""
    started, gate = threading.Event(), threading.Event()

    def hold(db: sqlite3.Connection) -> None:
        started.set()
        gate.wait(10)

    held = asyncio.create_task(writer.submit(hold))
    await asyncio.to_thread(started.wait, 10)
    yield
    await asyncio.sleep(0)  # the submits scheduled in the block queue their jobs
    gate.set()
    await held


async def test_a_job_result_arrives_after_commit(writer: GroupCommitWriter, path: Path) -> None:
    assert await writer.submit(insert(1)) == 1
    assert rows(path) == [1]


async def test_jobs_queued_meanwhile_commit_together_up_to_the_limit(
    writer: GroupCommitWriter, path: Path, statements: list[str]
) -> None:
    async with holding(writer):
        queued = [asyncio.create_task(writer.submit(insert(n))) for n in range(600)]
    await asyncio.gather(*queued)

    assert statements.count("COMMIT") == 3  # the held job; 512 jobs; the other 88
    assert rows(path) == list(range(600))


async def test_a_failing_job_fails_alone(
    writer: GroupCommitWriter, path: Path, statements: list[str]
) -> None:
    def half_done(db: sqlite3.Connection) -> None:
        db.execute("INSERT INTO t VALUES (3)")
        raise DuplicateEventId("boom")

    async with holding(writer):
        queued = [asyncio.create_task(writer.submit(j)) for j in (insert(1), half_done, insert(2))]
    results = await asyncio.gather(*queued, return_exceptions=True)

    assert results[0] == 1
    assert isinstance(results[1], DuplicateEventId)
    assert results[2] == 2
    assert rows(path) == [1, 2]
    # The batch ran again with savepoints, and still committed as one transaction.
    assert statements.count("ROLLBACK TO job") == 1
    assert statements.count("COMMIT") == 2


async def test_sqlite_errors_become_store_unavailable(writer: GroupCommitWriter) -> None:
    with pytest.raises(StoreUnavailable, match="the embedded store failed"):
        await writer.submit(lambda db: db.execute("SELECT * FROM missing"))


async def test_a_cancelled_callers_write_still_commits(
    writer: GroupCommitWriter, path: Path
) -> None:
    async with holding(writer):
        task = asyncio.create_task(writer.submit(insert(7)))
        await asyncio.sleep(0)  # queued
        task.cancel()
    await writer.submit(insert(8))  # committed after the cancelled one

    assert task.cancelled()
    assert rows(path) == [7, 8]


async def test_a_writer_not_open_is_unavailable(writer: GroupCommitWriter) -> None:
    with pytest.raises(StoreUnavailable):
        await GroupCommitWriter().submit(insert(1))
    await writer.close()
    with pytest.raises(StoreUnavailable):
        await writer.submit(insert(1))


async def test_a_caller_whose_loop_closed_does_not_stop_the_writer(
    writer: GroupCommitWriter, path: Path
) -> None:
    left: list[asyncio.Future[int]] = []

    def submit_from_a_loop_that_closes() -> None:
        async def submit_and_leave() -> None:
            left.append(asyncio.ensure_future(writer.submit(insert(1))))
            await asyncio.sleep(0)  # queued; then asyncio.run cancels it and closes the loop

        asyncio.run(submit_and_leave())

    async with holding(writer):
        await asyncio.to_thread(submit_from_a_loop_that_closes)
        later = asyncio.create_task(writer.submit(insert(2)))

    assert await asyncio.wait_for(later, 5) == 2
    assert await asyncio.wait_for(writer.submit(insert(3)), 5) == 3
    assert rows(path) == [1, 2, 3]


async def test_any_failure_in_a_batch_is_503_for_its_callers_and_the_next_batch_runs(
    writer: GroupCommitWriter, path: Path
) -> None:
    class Escapes(BaseException):
        """Not an Exception: what a job catching only Exception would miss."""

    def escapes(db: sqlite3.Connection) -> None:
        db.execute("INSERT INTO t VALUES (9)")
        raise Escapes

    async with holding(writer):
        failing = [asyncio.create_task(writer.submit(j)) for j in (insert(1), escapes)]
    results = await asyncio.gather(*failing, return_exceptions=True)

    assert all(isinstance(result, StoreUnavailable) for result in results)
    assert await asyncio.wait_for(writer.submit(insert(2)), 5) == 2
    assert rows(path) == [2]
