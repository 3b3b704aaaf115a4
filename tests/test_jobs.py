"""Worker processes: inputs queued ahead at a worker, the early worker that starts before the
parent's preparation, and budgets that still name the right input."""

from __future__ import annotations

import os
import time

from assay import jobs

PREPARED = {"done": False}


def _prepare() -> None:
    time.sleep(0.5)                 # stands for importing heavy libraries
    PREPARED["done"] = True


def _where(x: int) -> tuple[int, bool, int, float]:
    time.sleep(0.02)
    return x, PREPARED["done"], os.getpid(), time.monotonic()


def test_light_inputs_start_while_the_parent_prepares() -> None:
    PREPARED["done"] = False
    light = [True] * 8 + [False] * 8
    t0 = time.monotonic()
    results = dict(jobs.run(_where, list(range(16)), workers=2, light=light, prepare=_prepare))
    assert PREPARED["done"]                                   # ran once, in this process
    assert sorted(results) == list(range(16)) and all(results[i][0] == i for i in range(16))
    before = [i for i in range(8) if results[i][3] < t0 + 0.5]
    assert before, "no light input ran during the preparation"
    assert all(not results[i][1] for i in before)              # the early worker never saw it
    prepared = [i for i in range(8, 16) if results[i][1]]
    assert prepared, "no heavy input ran in a worker forked after the preparation"
    assert len({results[i][2] for i in range(16)}) == 2        # two workers, no respawn


def test_without_light_inputs_prepare_runs_before_any_worker() -> None:
    PREPARED["done"] = False
    results = dict(jobs.run(_where, list(range(4)), workers=2, light=[False] * 4, prepare=_prepare))
    assert all(r[1] for r in results.values())


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


def test_the_early_worker_is_fed_while_the_parent_prepares() -> None:
    # 30 light inputs of 20 ms are 0.6 s of work: more than a fixed share can cover while the
    # 0.5 s preparation runs, so the early worker must be fed as it answers
    PREPARED["done"] = False
    light = [True] * 30 + [False] * 4
    t0 = time.monotonic()
    results = dict(jobs.run(_where, list(range(34)), workers=2, light=light, prepare=_prepare))
    during = [i for i in range(30) if results[i][3] < t0 + 0.45]
    assert len(during) >= 15, len(during)
    assert all(results[i][1] for i in range(30, 34))     # heavy inputs only after preparing


def _order(x: int) -> tuple[int, float]:
    return x, time.monotonic()


def test_costliest_inputs_go_first() -> None:
    cost = [1.0, 50.0, 3.0, 20.0, 2.0]
    results = dict(jobs.run(_order, list(range(5)), workers=1, cost=cost))
    started = sorted(range(5), key=lambda i: results[i][1])
    assert started == [1, 3, 2, 4, 0]


def _die_first(x: int) -> int:
    if x == 0:
        os._exit(3)
    return x


def test_a_worker_dying_while_the_parent_prepares_is_replaced() -> None:
    import gc

    PREPARED["done"] = False
    results = dict(jobs.run(_die_first, list(range(6)), workers=2, light=[True] * 6,
                            prepare=_prepare, cost=[9.0, 1, 1, 1, 1, 1]))
    assert isinstance(results[0], jobs.Failed) and "crashed" in results[0].reason
    assert [results[i] for i in range(1, 6)] == [1, 2, 3, 4, 5]
    assert gc.get_freeze_count() == 0          # what was frozen for the forks is collectable again
