"""Worker processes: forked warm by a nursery that prepares once (started early or on demand),
inputs queued ahead, grouped inputs kept on one worker, and budgets that still name the right
input."""

from __future__ import annotations

import os
import time

import pytest

from assay import jobs

PREPARED = {"done": False}


def _prepare() -> None:
    time.sleep(0.5)                 # stands for importing heavy libraries
    PREPARED["done"] = True


def _where(x: int) -> tuple[int, bool, int, int, float]:
    time.sleep(0.02)
    return x, PREPARED["done"], os.getpid(), os.getppid(), time.monotonic()


def test_prepare_runs_once_in_the_nursery_before_any_worker() -> None:
    PREPARED["done"] = False
    results = dict(jobs.run(_where, list(range(6)), workers=2, prepare=_prepare))
    assert sorted(results) == list(range(6)) and all(results[i][0] == i for i in range(6))
    assert all(r[1] for r in results.values())              # every worker saw it done
    assert not PREPARED["done"]                              # ... and this process never ran it
    pids = {r[2] for r in results.values()}
    parents = {r[3] for r in results.values()}
    assert len(pids) == 2 and os.getpid() not in pids
    assert len(parents) == 1 and os.getpid() not in parents  # forked by the nursery, not here
    (nursery,) = parents
    with pytest.raises(ChildProcessError):                   # the nursery was reaped
        os.waitpid(nursery, os.WNOHANG)


def _where_factory(offset: int) -> object:
    return lambda x: _where(x + offset)


def test_a_prestarted_nursery_prepares_while_the_caller_goes_on() -> None:
    PREPARED["done"] = False
    t0 = time.monotonic()
    jobs.prestart(_prepare)
    assert jobs.prestarted()
    time.sleep(0.5)                                          # the caller's own start-up
    call = jobs.Call("tests.test_jobs:_where_factory", (100,))    # built in the nursery
    results = dict(jobs.run(call, list(range(4)), workers=2))
    assert [results[i][0] for i in range(4)] == [100, 101, 102, 103]
    took = time.monotonic() - t0
    assert not jobs.prestarted()                             # used up by this run
    assert all(r[1] for r in results.values())
    assert took < 0.9, took                                  # 0.5 + 0.5 had they followed each other


def test_a_function_not_named_by_a_call_gets_a_nursery_of_its_own() -> None:
    PREPARED["done"] = False
    jobs.prestart(_prepare)
    seen: list[int] = []

    def closure(x: int) -> int:        # cannot be sent: a new nursery forks and inherits it
        return x + len(seen)
    results = dict(jobs.run(closure, [1, 2, 3], workers=2))
    assert results == {0: 1, 1: 2, 2: 3}
    assert not jobs.prestarted()


def _not_plain(x: int) -> object:
    return object() if x else x        # not a plain value: a worker cannot send it back


def test_a_result_that_cannot_be_sent_is_an_error_for_that_input() -> None:
    results = dict(jobs.run(_not_plain, [0, 1], workers=1))
    assert results[0] == 0
    assert isinstance(results[1], jobs.Failed) and "cannot be sent" in results[1].reason


def test_inputs_of_a_group_go_to_one_worker_first() -> None:
    group: list[str | None] = [None, "g", None, "g", None, "g", None, None]
    results = dict(jobs.run(_where, list(range(8)), workers=2, group=group))
    grouped = {results[i][2] for i in range(8) if group[i] == "g"}
    assert len(grouped) == 1
    others = {results[i][2] for i in range(8) if group[i] is None}
    assert len(others | grouped) == 2                        # the other worker took the rest
    (owner,) = grouped
    first = min(results[i][4] for i in range(8) if results[i][2] == owner)
    assert first in {results[i][4] for i in range(8) if group[i] == "g"}   # its group came first


def _slow_one(x: int) -> int:
    if x == 1:
        time.sleep(30)
    return x


def test_inputs_queued_behind_a_slow_one_are_not_lost() -> None:
    t0 = time.monotonic()
    results = dict(jobs.run(_slow_one, [0, 1, 2, 3], workers=1, budget=jobs.Budget(seconds=1.0)))
    assert time.monotonic() - t0 < 10
    assert [results[i] for i in (0, 2, 3)] == [0, 2, 3]
    assert isinstance(results[1], jobs.Failed) and "longer than 1 s" in results[1].reason


def _order(x: int) -> tuple[int, float]:
    return x, time.monotonic()


def test_costliest_inputs_go_first() -> None:
    cost = [1.0, 50.0, 3.0, 20.0, 2.0]
    results = dict(jobs.run(_order, list(range(5)), workers=1, cost=cost))
    started = sorted(range(5), key=lambda i: results[i][1])
    assert started == [1, 3, 2, 4, 0]


def _die_first(x: int) -> tuple[int, int]:
    if x == 0:
        os._exit(3)
    return x, os.getpid()


def test_a_dying_worker_is_replaced_by_a_warm_fork() -> None:
    PREPARED["done"] = False
    results = dict(jobs.run(_die_first, list(range(6)), workers=1, prepare=_prepare,
                            cost=[9.0, 1, 1, 1, 1, 1]))
    assert isinstance(results[0], jobs.Failed)
    assert "crashed" in results[0].reason and "exit code 3" in results[0].reason
    assert [results[i][0] for i in range(1, 6)] == [1, 2, 3, 4, 5]


def test_breaking_off_a_run_stops_its_processes() -> None:
    it = jobs.run(_where, list(range(40)), workers=2)
    first = next(it)
    pid = first[1][2]
    it.close()                                   # the caller stops reading: workers are killed
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("a worker outlived its run")
