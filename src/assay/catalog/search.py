"""Candidate search: the LSH index narrows a query to the models that share keys with it.

Each catalogued fingerprint has its `lsh_keys` in the `lsh_keys` table (primary key `(key,
model_id)`, so a lookup by key is an index range scan). A query's keys select the models sharing
at least one, ranked by how many they share; only those are then judged pairwise. The cost
grows with the number of models that share a key with the query, not with the catalog's size.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from sqlalchemy import Connection, Row, func, select

from assay.catalog import schema

CHUNK = 500          # keys per query (SQLite allows 32,766 bound parameters; PostgreSQL 65,535)


def candidate_ids(conn: Connection, keys: Sequence[str], limit: int | None = None) -> list[tuple[int, int]]:
    """(model id, keys shared) for the models sharing keys with `keys`, most shared first."""
    lk = schema.lsh_keys
    shared = func.count().label("shared")
    if not keys:
        return []
    if len(keys) <= CHUNK:
        q = (select(lk.c.model_id, shared).where(lk.c.key.in_(list(keys))).group_by(lk.c.model_id)
             .order_by(shared.desc(), lk.c.model_id))
        if limit is not None:
            q = q.limit(limit)
        return [(int(i), int(n)) for i, n in conn.execute(q)]
    counts: Counter[int] = Counter()
    for start in range(0, len(keys), CHUNK):
        chunk = list(keys[start:start + CHUNK])
        q = select(lk.c.model_id, shared).where(lk.c.key.in_(chunk)).group_by(lk.c.model_id)
        for i, n in conn.execute(q):
            counts[int(i)] += int(n)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return ranked[:limit] if limit is not None else ranked


def candidates(conn: Connection, keys: Sequence[str], limit: int | None = None) -> list[tuple[Row, int]]:
    """The candidate model rows (fingerprint included) with the number of keys each shares."""
    ranked = candidate_ids(conn, keys, limit)
    if not ranked:
        return []
    m = schema.models
    rows = {r.id: r for r in conn.execute(select(m).where(m.c.id.in_([i for i, _ in ranked])))}
    return [(rows[i], n) for i, n in ranked if i in rows]
