"""The group-commit writer on its own: jobs are plain functions of a SQLite connection."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from service.store.base import DuplicateEventId, StoreUnavailable
from service.store.writer import _STOP, Combinable, GroupCommitWriter
from tests.store.helpers import holding


def insert(n: int) -> Callable[[sqlite3.Connection], int]:
    def job(db: sqlite3.Connection) -> int:
        db.execute("INSERT INTO t VALUES (?)", (n,))
        return n

    return job


@dataclass(frozen=True)
class Add(Combinable):
    """Combinable: queued next to each other, any number of them is one INSERT."""

    n: int

    def __call__(self, db: sqlite3.Connection) -> int:
        return insert(self.n)(db)

    @classmethod
    def run_together(cls, db: sqlite3.Connection, jobs: Sequence[Add]) -> list[int]:
        values = ", ".join(["(?)"] * len(jobs))
        db.execute(f"INSERT INTO t VALUES {values}", [job.n for job in jobs])
        return [job.n for job in jobs]


def count_rows(db: sqlite3.Connection) -> int:
    count: int = db.execute("SELECT count(*) FROM t").fetchone()[0]
    return count


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


async def test_combinable_jobs_queued_next_to_each_other_run_as_one(
    writer: GroupCommitWriter, path: Path, statements: list[str]
) -> None:
    async with holding(writer):
        queued = [asyncio.create_task(writer.submit(Add(n))) for n in range(40)]
    assert await asyncio.gather(*queued) == list(range(40))

    inserts = [s for s in statements if s.startswith("INSERT")]
    assert len(inserts) == 1
    assert rows(path) == list(range(40))


async def test_another_job_between_combinable_ones_keeps_its_place_in_the_batch(
    writer: GroupCommitWriter, path: Path, statements: list[str]
) -> None:
    jobs: list[Callable[[sqlite3.Connection], int]] = [Add(1), Add(2), count_rows, Add(3), Add(4)]
    async with holding(writer):
        queued = [asyncio.create_task(writer.submit(job)) for job in jobs]

    # The count ran after the first two rows and before the last two.
    assert await asyncio.gather(*queued) == [1, 2, 2, 3, 4]
    assert len([s for s in statements if s.startswith("INSERT")]) == 2
    assert statements.count("COMMIT") == 2  # the held job's batch, then this one


async def test_a_failing_row_among_combined_jobs_fails_its_own_job_alone(
    writer: GroupCommitWriter, path: Path, statements: list[str]
) -> None:
    await writer.submit(insert(5))
    async with holding(writer):
        queued = [asyncio.create_task(writer.submit(Add(n))) for n in (4, 5, 6)]
    results = await asyncio.gather(*queued, return_exceptions=True)

    assert results[0] == 4
    assert isinstance(results[1], StoreUnavailable)  # 5 exists: the primary key refuses it
    assert results[2] == 6
    assert rows(path) == [4, 5, 6]
    assert statements.count("ROLLBACK TO job") == 1


async def test_jobs_submitted_in_one_turn_commit_together_even_on_an_idle_writer(
    writer: GroupCommitWriter, path: Path, statements: list[str]
) -> None:
    async def submit_in_a_busy_turn(n: int) -> int:
        # The loop's turn goes on, without the GIL: the writer could run meanwhile.
        time.sleep(0.002)  # noqa: ASYNC251  # a busy turn, on purpose
        return await writer.submit(insert(n))

    # Each submit used to wake the idle writer at once, which committed the jobs one by one.
    done = await asyncio.gather(*(submit_in_a_busy_turn(n) for n in range(10)))

    assert done == list(range(10))
    assert statements.count("COMMIT") == 1
    assert rows(path) == list(range(10))


async def test_close_commits_the_jobs_submitted_in_its_own_turn(
    writer: GroupCommitWriter, path: Path
) -> None:
    submitted = asyncio.create_task(writer.submit(insert(1)))
    await asyncio.sleep(0)  # submitted; handed over only at the end of this turn
    await writer.close()

    assert await submitted == 1
    assert rows(path) == [1]


async def test_jobs_handed_over_after_the_thread_ended_are_unavailable(
    writer: GroupCommitWriter,
) -> None:
    submitted = asyncio.create_task(writer.submit(insert(1)))
    await asyncio.sleep(0)  # submitted; handed over only at the end of this turn
    writer._jobs.put(_STOP)  # the thread ends before that
    assert writer._thread is not None
    writer._thread.join(5)

    with pytest.raises(StoreUnavailable):
        await asyncio.wait_for(submitted, 5)
