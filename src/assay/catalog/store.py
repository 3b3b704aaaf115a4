"""The catalog store: models, their fingerprints, the LSH candidate index and the edges between them.

    with Catalog.open("team.sqlite") as cat:     # or a postgresql+psycopg:// URL
        cat.add(fp)                              # idempotent by content identity
        cat.find(fp)                             # nearest relatives, strongest first

Adding is one transaction under the write lock: the model row, its LSH keys and the relations
found with its candidates are committed together or not at all, so a killed writer leaves no
partial entry. Fingerprints come in as `assay.analyses.lineage.types.Fingerprint` values; no
weight file is read here.
"""

from __future__ import annotations

import dataclasses
import json
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Row, delete, func, or_, select
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from assay.analyses.lineage.types import FP_VERSION, Evidence, Fingerprint, Verdict
from assay.catalog import migrate, schema
from assay.catalog.errors import CatalogError
from assay.catalog.location import WRITE, make_engine, resolve
from assay.catalog.search import candidates

RelateFn = Callable[[Fingerprint, Fingerprint], Verdict]

UNDIRECTED = frozenset({"same", "converted"})
# Ties in confidence go to the closer relation.
CLOSENESS = ("same", "converted", "cast", "quantized", "adapter", "pruned", "extended", "truncated",
             "finetuned", "partial", "merged")
ADD_RETRIES = 3
MERGE_INPUTS = frozenset({"finetuned", "merged", "partial"})   # relations a merge shows as
MERGE_MIN_COEF = 0.02  # a merge parent contributes at least this share
MERGE_MAX_PARENTS = 4  # merge test over the strongest related origins only (its cost grows fast)
ADD_CANDIDATES = 256    # candidates judged when a model is added (those sharing most keys)


@dataclass(frozen=True)
class Entry:
    """One model in the catalog."""

    id: int
    content_id: str
    named_id: str
    label: str
    format: str
    parameters: int
    declared: dict[str, Any]
    fp_version: str
    added_at: datetime


@dataclass(frozen=True)
class Link:
    """A relation found between two catalogued models when the later one was added."""

    parent: Entry
    child: Entry
    relation: str
    directed: bool                  # False: `same`/`converted` or unoriented; parent is the older entry
    confidence: float
    summary: str
    evidence: dict[str, Any]        # {"evidence": [...], "details": {...}, "declared": {...}, ...}


@dataclass(frozen=True)
class Added:
    entry: Entry
    created: bool                   # False: this content identity was already catalogued
    links: tuple[Link, ...] = ()


@dataclass(frozen=True)
class Removed:
    entry: Entry
    relations: int                  # relations it took part in, removed with it


@dataclass(frozen=True)
class Match:
    """A catalogued relative of a query: `verdict` is the query's relation to `entry`."""

    entry: Entry
    verdict: Verdict
    role: str                       # "parent" (entry is the origin), "child" (entry derives), "peer"
    shared_keys: int


@dataclass(frozen=True)
class FindResult:
    query: str
    content_id: str
    matches: tuple[Match, ...]
    candidates: int                 # models the index proposed and the pairwise test judged
    catalogued: int                 # models in the catalog


@dataclass(frozen=True)
class _Judged:
    """A candidate the pairwise test found related to a query labelled `side` in `verdict`."""

    entry: Entry
    verdict: Verdict
    shared: int
    side: str
    fp: Fingerprint


def _default_relate() -> RelateFn:
    from assay.analyses.lineage.relation import relate
    return relate


class Catalog:
    """A catalog on SQLite or PostgreSQL. Open with `Catalog.open(location)`; close when done."""

    def __init__(self, engine: Engine, shown: str, *, relate: RelateFn | None = None) -> None:
        self.engine = engine
        self.name = shown
        self._relate = relate

    # -- opening -------------------------------------------------------------------------------
    @classmethod
    def open(cls, location: str | None = None, *, relate: RelateFn | None = None,
             migrate_to: str = "head") -> Catalog:
        """Open (creating or upgrading the schema as needed) the catalog at a path or URL."""
        url, shown = resolve(location)
        engine = make_engine(url, shown)
        cat = cls(engine, shown, relate=relate)
        try:
            with cat._errors("cannot open"):
                migrate.upgrade(engine, shown, migrate_to)
        except BaseException:
            engine.dispose()
            raise
        return cat

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Database errors become one-line CatalogErrors naming the catalog."""
        try:
            yield
        except CatalogError:
            raise
        except SQLAlchemyError as exc:
            raise CatalogError(self.name, f"{doing}: {_db_message(exc)}") from None
        except OSError as exc:
            raise CatalogError(self.name, f"{doing}: {exc.strerror or exc}") from None

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction holding the catalog's write lock; rolled back on any error."""
        with self.engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
            migrate.lock(conn)
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    # -- adding --------------------------------------------------------------------------------
    def add(self, fp: Fingerprint) -> Added:
        """Catalogue one model; a content identity already present is not added twice."""
        from assay.analyses.lineage.fingerprint import lsh_keys, to_bytes
        blob = to_bytes(fp)
        keys = sorted(set(lsh_keys(fp)))
        with self._errors(f"cannot add {fp.label}"):
            for attempt in range(ADD_RETRIES):
                try:
                    with self.write() as conn:
                        return self.add_in(conn, fp, blob, keys)
                except (IntegrityError, OperationalError):
                    # A racing writer outside our lock, or SQLite still busy: try again.
                    if attempt + 1 == ADD_RETRIES:
                        raise
        raise AssertionError("unreachable")

    def add_in(self, conn: Connection, fp: Fingerprint, blob: bytes, keys: Sequence[str]) -> Added:
        """The body of `add` inside an open write transaction (tests interrupt it here)."""
        m = schema.models
        old = conn.execute(select(m).where(m.c.content_id == fp.content_id)).first()
        if old is not None:
            return Added(_entry(old), created=False)
        found, _judged = self._related(conn, fp, keys, ADD_CANDIDATES, "(new)")
        merge = self._merge(fp, found)
        row = {"content_id": fp.content_id, "named_id": fp.named_id, "label": fp.label,
               "format": fp.format, "parameters": int(fp.parameters), "declared": _jsonable(fp.declared),
               "fp_version": fp.version, "fingerprint": blob, "added_at": datetime.now(UTC)}
        new_id = conn.execute(_insert(conn, m).values(**row)
                              .on_conflict_do_nothing(index_elements=["content_id"])
                              .returning(m.c.id)).scalar()
        if new_id is None:      # added by a writer that raced us: idempotent all the same
            old = conn.execute(select(m).where(m.c.content_id == fp.content_id)).one()
            return Added(_entry(old), created=False)
        if keys:
            conn.execute(_insert(conn, schema.lsh_keys).on_conflict_do_nothing(),
                         [{"key": k, "model_id": new_id} for k in keys])
        entry = _entry(conn.execute(select(m).where(m.c.id == new_id)).one())
        links = []
        for j in found:
            if merge is not None and j.entry.id in merge[0]:
                link = _merged_link(j.entry, entry, merge[1])
            else:
                link = _link(j.entry, entry, j.verdict, j.side)
            conn.execute(_insert(conn, schema.edges).values(
                parent_id=link.parent.id, child_id=link.child.id, relation=link.relation,
                directed=link.directed, confidence=link.confidence, summary=link.summary,
                evidence=link.evidence).on_conflict_do_nothing())
            links.append(link)
        return Added(entry, created=True, links=tuple(links))

    def _merge(self, fp: Fingerprint, found: Sequence[_Judged]) -> tuple[set[int], Verdict] | None:
        """When two or more related candidates could be origins of `fp` and the merge test
        explains it as a combination of them: the ids of the contributing ones and the verdict."""
        if self._relate is not None:      # a custom pairwise test: no merge test to match it
            return None
        origins = [j for j in found
                   if j.verdict.relation in MERGE_INPUTS and _role(j.verdict, j.side) != "child"]
        origins = origins[:MERGE_MAX_PARENTS]          # `found` is strongest first
        if len(origins) < 2:
            return None
        from assay.analyses.lineage.relation import relate_merge
        names = [j.entry.label for j in origins]       # unique labels for the merge test's sides
        labels = [n if names.count(n) == 1 and n != fp.label else f"{n}#{j.entry.id}"
                  for n, j in zip(names, origins)]
        parents = [dataclasses.replace(j.fp, label=lab) for j, lab in zip(origins, labels)]
        v = relate_merge(fp, parents)
        if v is None or v.relation != "merged":
            return None
        coef = v.details.get("coefficients") or {}
        ids = {j.entry.id for j, lab in zip(origins, labels)
               if abs(float(coef.get(lab, 1.0))) > MERGE_MIN_COEF}
        return (ids, v) if len(ids) >= 2 else None

    def _related(self, conn: Connection, fp: Fingerprint, keys: Sequence[str], limit: int | None,
                 suffix: str) -> tuple[list[_Judged], int]:
        """Candidates from the index, each judged as `relate(candidate, fp)`; the related ones,
        strongest first, with the label `fp` had in the verdict (suffixed if a candidate's
        label is the same, so that the verdict's sides stay apart)."""
        from assay.analyses.lineage.fingerprint import from_bytes
        out = []
        proposed = candidates(conn, keys, limit=limit)
        relate = (self._relate or _default_relate()) if proposed else None
        for row, shared in proposed:
            assert relate is not None
            if row.fp_version != FP_VERSION:
                continue          # judged by another fingerprint version: cannot compare
            other = self._decode(from_bytes, row)
            query = fp
            if other.label == fp.label:
                query = dataclasses.replace(fp, label=f"{fp.label} {suffix}")
            v = relate(other, query)
            if v.relation != "unrelated":
                out.append(_Judged(_entry(row), v, shared, query.label, other))
        out.sort(key=lambda j: (-j.verdict.confidence, _closeness(j.verdict.relation), j.entry.id))
        return out, len(proposed)

    def _decode(self, from_bytes: Callable[[bytes], Fingerprint], row: Row) -> Fingerprint:
        try:
            return from_bytes(bytes(row.fingerprint))
        except (ValueError, KeyError, TypeError, zlib.error) as exc:
            raise CatalogError(self.name, f"model {row.id} ({row.label}): stored fingerprint is "
                                          f"unreadable: {exc}") from None

    # -- reading -------------------------------------------------------------------------------
    def find(self, fp: Fingerprint, *, limit: int = 10, candidates_limit: int = 64) -> FindResult:
        """The nearest catalogued relatives of `fp`: the LSH index proposes candidates (at most
        `candidates_limit`, those sharing most keys first), the pairwise test decides."""
        from assay.analyses.lineage.fingerprint import lsh_keys
        keys = sorted(set(lsh_keys(fp)))
        with self._errors("cannot search"), self.read() as conn:
            total = conn.execute(select(func.count()).select_from(schema.models)).scalar_one()
            found, judged = self._related(conn, fp, keys, candidates_limit, "(query)")
        matches = tuple(Match(j.entry, j.verdict, _role(j.verdict, j.side), j.shared) for j in found[:limit])
        return FindResult(fp.label, fp.content_id, matches, judged, total)

    def entries(self) -> list[Entry]:
        with self._errors("cannot list"), self.read() as conn:
            return [_entry(r) for r in conn.execute(_entry_select().order_by(schema.models.c.id))]

    def entry(self, content_id: str) -> Entry | None:
        m = schema.models
        with self._errors("cannot read"), self.read() as conn:
            row = conn.execute(_entry_select().where(m.c.content_id == content_id)).first()
        return _entry(row) if row is not None else None

    def fingerprint(self, content_id: str) -> Fingerprint | None:
        from assay.analyses.lineage.fingerprint import from_bytes
        m = schema.models
        with self._errors("cannot read"), self.read() as conn:
            row = conn.execute(select(m).where(m.c.content_id == content_id)).first()
        return self._decode(from_bytes, row) if row is not None else None

    def links(self) -> list[Link]:
        e = schema.edges
        with self._errors("cannot read edges"), self.read() as conn:
            by_id = {r.id: _entry(r) for r in conn.execute(_entry_select())}
            rows = conn.execute(select(e).order_by(e.c.child_id, e.c.parent_id)).all()
        return [Link(by_id[r.parent_id], by_id[r.child_id], r.relation, bool(r.directed),
                     float(r.confidence), r.summary, dict(r.evidence or {})) for r in rows]

    # -- removing ------------------------------------------------------------------------------
    def remove(self, content_ids: Sequence[str]) -> list[Removed]:
        """Take models out of the catalog by content identity, with their index keys and every
        relation they take part in, in one transaction; identities not catalogued are skipped.
        The relations the other models have among themselves stay as they were found."""
        m, e, k = schema.models, schema.edges, schema.lsh_keys
        wanted = sorted(set(content_ids))
        with self._errors("cannot remove"), self.write() as conn:
            rows = conn.execute(_entry_select().where(m.c.content_id.in_(wanted)).order_by(m.c.id)).all()
            ids = [r.id for r in rows]
            if not ids:
                return []
            involved = or_(e.c.parent_id.in_(ids), e.c.child_id.in_(ids))
            pairs = conn.execute(select(e.c.parent_id, e.c.child_id).where(involved)).all()
            conn.execute(delete(e).where(involved))
            conn.execute(delete(k).where(k.c.model_id.in_(ids)))
            conn.execute(delete(m).where(m.c.id.in_(ids)))
        return [Removed(_entry(r), sum(r.id in p for p in pairs)) for r in rows]

    def count(self) -> int:
        with self._errors("cannot count"), self.read() as conn:
            return conn.execute(select(func.count()).select_from(schema.models)).scalar_one()


# -- helpers -------------------------------------------------------------------------------------
def _db_message(exc: SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None)
    msg = str(orig if orig is not None else exc).strip()
    return " ".join(msg.split()) or type(exc).__name__


def _insert(conn: Connection, table: Any) -> Any:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


def _entry_select() -> Any:
    m = schema.models
    return select(*[c for c in m.c if c.name != "fingerprint"])


def _entry(row: Row) -> Entry:
    added = row.added_at
    if added is not None and added.tzinfo is None:    # SQLite keeps no zone: we wrote UTC
        added = added.replace(tzinfo=UTC)
    return Entry(row.id, row.content_id, row.named_id, row.label, row.format, int(row.parameters),
                 dict(row.declared or {}), row.fp_version, added)


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _closeness(relation: str) -> int:
    return CLOSENESS.index(relation) if relation in CLOSENESS else len(CLOSENESS)


def _role(v: Verdict, query: str) -> str:
    """Where the catalogued entry stands relative to the query (labelled `query` in `v`)."""
    if v.relation in UNDIRECTED or v.parent is None or v.child is None:
        return "peer"
    if v.parent == query:
        return "child"
    return "parent" if v.child == query else "peer"


def _link(cand: Entry, new: Entry, v: Verdict, side: str) -> Link:
    """The edge of a verdict `relate(cand, new)` (`new` labelled `side` in it): oriented when the
    verdict says which side derives, else from the older entry to the newer."""
    parent, child, directed = cand, new, False
    role = _role(v, side)
    if role == "child":
        parent, child, directed = new, cand, True
    elif role == "parent":
        directed = True
    evidence = _jsonable({
        "evidence": [_evidence(e) for e in v.evidence],
        "details": v.details, "declared": v.declared, "contradiction": v.contradiction,
    })
    return Link(parent, child, v.relation, directed, float(v.confidence), v.summary, evidence)


def _merged_link(parent: Entry, new: Entry, v: Verdict) -> Link:
    evidence = _jsonable({"evidence": [_evidence(e) for e in v.evidence], "details": v.details,
                          "declared": v.declared, "contradiction": v.contradiction})
    return Link(parent, new, "merged", True, float(v.confidence), v.summary, evidence)


def _evidence(e: Evidence) -> dict[str, Any]:
    return {"tensor": e.tensor, "statistic": e.statistic, "value": e.value}


__all__ = ["Added", "Catalog", "CatalogError", "Entry", "FindResult", "Link", "Match"]
