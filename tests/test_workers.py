"""dbkeeper.plugin.WorkerPool: tasks on threads that all stop at the first failure."""

import threading

import pytest

from dbkeeper.plugin import WorkerPool


def test_results_come_in_task_order():
    pool = WorkerPool(3)
    assert pool.run([lambda n=n: n * n for n in range(7)]) == [n * n for n in range(7)]
    assert not pool.stopped.is_set()


def test_no_tasks_no_threads():
    assert WorkerPool(4).run([]) == []


def test_the_first_failure_stops_the_others_and_is_raised():
    pool = WorkerPool(2)
    waiting = threading.Event()
    stop_called = threading.Event()

    def long_task() -> None:
        with pool.stoppable(stop_called.set):
            waiting.set()
            stop_called.wait()
            raise RuntimeError("killed by the stop")  # what a killed tool would report

    def failing_task() -> None:
        waiting.wait()
        raise ValueError("the real problem")

    with pytest.raises(ValueError, match="the real problem"):
        pool.run([long_task, failing_task])
    assert pool.stopped.is_set()


def test_queued_tasks_do_not_start_after_a_failure():
    started = []

    def fail() -> None:
        started.append("fail")
        raise ValueError("first")

    with pytest.raises(ValueError, match="first"):
        WorkerPool(1).run([fail, lambda: started.append("never")])
    assert started == ["fail"]


def test_a_stop_registered_after_the_failure_runs_at_once():
    pool = WorkerPool(1)
    pool.stop()
    called = []
    with pool.stoppable(lambda: called.append(True)):
        assert called == [True]


def test_a_failing_stop_does_not_hide_the_failure():
    pool = WorkerPool(2)
    registered = threading.Event()
    release = threading.Event()

    def broken_stop() -> None:
        release.set()
        raise OSError("the tool was already gone")

    def watched() -> None:
        with pool.stoppable(broken_stop):
            registered.set()
            release.wait()

    def fail() -> None:
        registered.wait()
        raise ValueError("cause")

    with pytest.raises(ValueError, match="cause"):
        pool.run([watched, fail])
