"""Real concurrent PostgreSQL connections for the concurrency tests (STYLE §13): each job runs
in a thread of its own, so on a connection of its own, and the helpers force the interleaving
under test with barriers, events and the server's own view of who waits on a lock. Every
helper returns the exceptions its jobs raised (the test asserts there are none) and closes the
threads' connections."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db import close_old_connections, connection, connections, transaction

Job = Callable[[], object]
WAIT = 30  # seconds a thread waits on another before the test fails instead of hanging


def _in_thread(job: Job, errors: list[Exception]) -> threading.Thread:
    """A started thread running `job` on a connection of its own; what it raises goes to
    `errors`."""

    def run() -> None:
        close_old_connections()
        try:
            job()
        except Exception as exc:  # collected, asserted empty by the test
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _join(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join()


def run_at_once(jobs: list[Job]) -> list[Exception]:
    """Each job in its own thread (own connection), all released together."""
    barrier = threading.Barrier(len(jobs))
    errors: list[Exception] = []

    def released(job: Job) -> Job:
        def run() -> None:
            barrier.wait()
            job()

        return run

    _join([_in_thread(released(job), errors) for job in jobs])
    return errors


class _Pause:
    """Where a held job stops: `reached` once it is there, and it goes on once `released`."""

    def __init__(self) -> None:
        self.reached, self.released = threading.Event(), threading.Event()

    def stop(self) -> None:
        self.reached.set()
        assert self.released.wait(timeout=WAIT), "nobody released the held job"

    @contextmanager
    def after_statement(self, matches: Callable[[str], bool]) -> Iterator[None]:
        """Stops the thread's connection right after the first statement whose SQL `matches`
        has run (before the next one is sent); fails if there was none."""

        def wrapper(execute, sql, params, many, context):
            result = execute(sql, params, many, context)
            if not self.reached.is_set() and matches(sql):
                self.stop()
            return result

        with connection.execute_wrapper(wrapper):
            yield
        assert self.reached.is_set(), "the held job ran no statement to stop after"


def _holding(held: Job, pause: _Pause, after_statement: Callable[[str], bool] | None) -> Job:
    """`held` stopping at `pause`: after the first statement `after_statement` accepts (it
    manages its own transactions), else at the end of a transaction kept open around it."""

    def job() -> None:
        try:
            if after_statement is not None:
                with pause.after_statement(after_statement):
                    held()
            else:
                with transaction.atomic():
                    held()
                    pause.stop()
        finally:
            pause.reached.set()  # an early failure must not leave the other thread waiting

    return job


def hold_one_and_run_meanwhile(
    held: Job, meanwhile: list[Job], *, after_statement: Callable[[str], bool] | None = None
) -> list[Exception]:
    """`held` runs in its own thread and stops (see `_holding`) while `meanwhile`'s jobs run
    in another thread, each in its own transaction under a one-second lock timeout (a wait on
    a lock `held` holds fails), then goes on."""
    pause, errors = _Pause(), []

    def run_meanwhile() -> None:
        try:
            assert pause.reached.wait(timeout=WAIT), "the held job never stopped"
            for job in meanwhile:
                with transaction.atomic():
                    with connection.cursor() as cursor:
                        cursor.execute("SET LOCAL lock_timeout = '1s'")
                    job()
        finally:
            pause.released.set()

    _join([_in_thread(_holding(held, pause, after_statement), errors),
           _in_thread(run_meanwhile, errors)])  # fmt: skip
    return errors


def hold_one_until_another_waits(
    held: Job, waiter: Job, *, after_statement: Callable[[str], bool] | None = None
) -> list[Exception]:
    """`held` runs in its own thread and stops (see `_holding`); `waiter` starts in another
    thread, and `held` goes on once the server shows `waiter`'s connection waiting on a lock
    (it must come to wait on one)."""
    pause, errors = _Pause(), []
    started, pid = threading.Event(), []

    def wait() -> None:
        try:
            assert pause.reached.wait(timeout=WAIT), "the held job never stopped"
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                pid.append(cursor.fetchone()[0])
        finally:
            started.set()
        waiter()

    threads = [_in_thread(_holding(held, pause, after_statement), errors),
               _in_thread(wait, errors)]  # fmt: skip
    try:
        assert started.wait(timeout=WAIT), "the waiter never started"
        assert pid, "the waiter never reached the database"
        _until_waiting_on_a_lock(pid[0])
    except Exception as exc:
        errors.append(exc)
    finally:
        pause.released.set()
        _join(threads)
    return errors


def _until_waiting_on_a_lock(pid: int) -> None:
    deadline = time.monotonic() + WAIT
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
            row = cursor.fetchone()
            if row and row[0] == "Lock":
                return
            time.sleep(0.02)
    raise AssertionError(f"connection {pid} never waited on a lock")
