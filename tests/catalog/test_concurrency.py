"""Real separate processes writing one catalog at once, and a writer killed mid-transaction."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy import func, select

from assay.analyses.lineage.fingerprint import from_bytes, lsh_keys, to_bytes
from assay.catalog import Catalog, schema
from tests.catalog import synth

CTX = mp.get_context("spawn")     # fresh interpreters: nothing shared with the test process


def _writer(location: str, blobs: Sequence[bytes], start: mp.synchronize.Event, out: mp.Queue) -> None:
    start.wait(30)
    created = 0
    with Catalog.open(location) as cat:
        for b in blobs:
            created += cat.add(from_bytes(b)).created
    out.put(created)


def _stuck_writer(location: str, blob: bytes, ready: mp.synchronize.Event) -> None:
    """Insert a model, its keys and nothing else inside an open transaction, then wait to be killed."""
    fp = from_bytes(blob)
    cat = Catalog.open(location)
    with cat.write() as conn:
        added = cat.add_in(conn, fp, blob, sorted(set(lsh_keys(fp))))
        assert added.created
        ready.set()
        import time
        time.sleep(120)          # killed long before this ends
    os._exit(3)


def _counts(cat: Catalog) -> tuple[int, int, int]:
    with cat.read() as conn:
        return tuple(conn.execute(select(func.count()).select_from(t)).scalar_one()   # type: ignore[return-value]
                     for t in (schema.models, schema.lsh_keys, schema.edges))


@pytest.fixture(scope="module")
def family_blobs() -> list[bytes]:
    """Fingerprints of 3 families of 4 members: bases, fine-tunes, casts, prunes."""
    out = []
    for f in range(3):
        base = synth.base_model(100 + f, layers=2, dim=32)
        ft = synth.finetune(base, 200 + f)
        for i, w in enumerate((base, ft, synth.cast(ft), synth.prune(base))):
            out.append(to_bytes(synth.fp(w, f"fam{f}/m{i}")))
    return out


@pytest.mark.slow
def test_two_writer_processes_at_once(location: str, family_blobs: list[bytes]) -> None:
    # No catalog yet: the writers race to create its schema too.
    a, b = family_blobs[:8], family_blobs[4:]   # 4 models in common, added by both
    start, out = CTX.Event(), CTX.Queue()
    procs = [CTX.Process(target=_writer, args=(location, part, start, out)) for part in (a, b[::-1])]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    created = [out.get(timeout=5), out.get(timeout=5)]
    assert sum(created) == len(family_blobs)            # each model added exactly once
    fps = [from_bytes(x) for x in family_blobs]
    with Catalog.open(location) as cat:
        entries = cat.entries()
        assert sorted(e.content_id for e in entries) == sorted(fp.content_id for fp in fps)
        models, keys, edges = _counts(cat)
        assert models == len(fps)
        assert keys == sum(len(set(lsh_keys(fp))) for fp in fps)
        pairs = [(x.parent.id, x.child.id) for x in cat.links()]
        assert len(pairs) == edges == len(set(pairs)) and len({frozenset(p) for p in pairs}) == len(pairs)
        # Writers were serialised: every family is connected by the edges found when adding.
        fam = {e.id: e.label.split("/")[0] for e in entries}
        assert all(fam[p] == fam[c] for p, c in pairs)
        for f in {*fam.values()}:
            members = {i for i, x in fam.items() if x == f}
            linked = {i for pair in pairs for i in pair if i in members}
            assert linked == members


@pytest.mark.slow
def test_writer_killed_mid_transaction_leaves_no_trace(location: str, family_blobs: list[bytes]) -> None:
    with Catalog.open(location) as cat:
        cat.add(from_bytes(family_blobs[0]))
        before = _counts(cat)
    ready = CTX.Event()
    p = CTX.Process(target=_stuck_writer, args=(location, family_blobs[4], ready))
    p.start()
    assert ready.wait(60), "the writer never reached its open transaction"
    os.kill(p.pid, signal.SIGKILL)
    p.join(10)
    assert p.exitcode == -signal.SIGKILL
    if not location.startswith("postgresql"):
        with sqlite3.connect(location) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    with Catalog.open(location) as cat:
        assert _counts(cat) == before                       # no partial entry, key or edge
        assert cat.entry(from_bytes(family_blobs[4]).content_id) is None
        added = cat.add(from_bytes(family_blobs[4]))        # and the catalog takes it now
        assert added.created and _counts(cat)[0] == 2


def test_sqlite_catalog_is_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    Catalog.open(str(path)).close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
