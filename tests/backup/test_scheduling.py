"""The backup worker pool runs the biggest queued task first and loses no task."""

from __future__ import annotations

import threading

import pytest

from vger.backup.scheduling import LargestFirstPool


def test_queued_tasks_start_biggest_first_and_fifo_on_ties() -> None:
    pool = LargestFirstPool(1, "test")
    gate = threading.Event()
    started: list[str] = []
    try:
        blocker = pool.submit(0, gate.wait)  # holds the only worker while the queue fills
        futures = [
            pool.submit(size, started.append, name)
            for size, name in [(10, "small"), (300, "big"), (50, "medium"), (300, "big-later"), (0, "empty")]
        ]
        gate.set()
        blocker.result(timeout=10)
        for future in futures:
            future.result(timeout=10)
    finally:
        pool.shutdown()
    assert started == ["big", "big-later", "medium", "small", "empty"]


def test_a_failing_task_reports_through_its_future_and_the_pool_goes_on() -> None:
    pool = LargestFirstPool(2, "test")
    try:
        failing = pool.submit(5, int, "not a number")
        ok = pool.submit(1, sum, [1, 2, 3])
        with pytest.raises(ValueError):
            failing.result(timeout=10)
        assert ok.result(timeout=10) == 6
    finally:
        pool.shutdown()


def test_shutdown_with_cancel_drops_queued_tasks_and_waits_for_running_ones() -> None:
    pool = LargestFirstPool(1, "test")
    gate, began = threading.Event(), threading.Event()

    def hold() -> bool:
        began.set()
        return gate.wait(10)

    running = pool.submit(0, hold)
    assert began.wait(10)
    queued = [pool.submit(1, print, "never") for _ in range(3)]
    threading.Timer(0.2, gate.set).start()
    pool.shutdown(cancel_futures=True)
    assert running.done() and running.result() is True
    assert all(f.cancelled() for f in queued)
    with pytest.raises(RuntimeError):
        pool.submit(1, print, "after shutdown")
