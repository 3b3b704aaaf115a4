"""The catalog store on SQLite and PostgreSQL: schema at head, idempotent adds, the LSH index,
migrations from an older revision, and one-line errors."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select, text

from assay.analyses.lineage.fingerprint import lsh_keys, to_bytes
from assay.catalog import Catalog, CatalogError, migrate, schema
from assay.catalog.location import resolve
from tests.catalog import synth


def test_fresh_catalog_is_created_at_head(location: str) -> None:
    with Catalog.open(location) as cat:
        with cat.engine.connect() as conn:
            assert migrate.current_revision(conn) == schema.HEAD
            assert {"models", "lsh_keys", "edges"} <= set(inspect(conn).get_table_names())
        assert cat.count() == 0 and cat.entries() == [] and cat.links() == []
    with Catalog.open(location) as cat:   # opening again: already at head, nothing to do
        assert cat.count() == 0


def test_head_names_the_newest_migration() -> None:
    assert migrate.known_revisions()[0] == schema.HEAD


def test_add_stores_what_the_fingerprint_says_and_is_idempotent(location: str) -> None:
    w = synth.base_model(1)
    fp = synth.fp(w, "base.safetensors")
    with Catalog.open(location) as cat:
        first = cat.add(fp)
        assert first.created and first.links == ()
        e = first.entry
        assert (e.content_id, e.named_id, e.label, e.format, e.parameters) == \
            (fp.content_id, fp.named_id, "base.safetensors", "synthetic", fp.parameters)
        assert e.added_at.tzinfo is not None
        again = cat.add(fp)
        renamed = cat.add(synth.fp(w, "elsewhere/copy.safetensors"))    # same content, other label
        assert not again.created and not renamed.created
        assert again.entry == e and renamed.entry == e
        assert cat.count() == 1 and cat.entries() == [e]
        assert cat.fingerprint(fp.content_id) == fp
        with cat.read() as conn:
            n_keys = conn.execute(select(func.count()).select_from(schema.lsh_keys)).scalar_one()
        assert n_keys == len(set(lsh_keys(fp)))


def test_older_revision_is_upgraded_on_open(location: str) -> None:
    fp = synth.fp(synth.base_model(2), "old")
    with Catalog.open(location, migrate_to="0001") as cat:
        with cat.engine.begin() as conn:
            assert migrate.current_revision(conn) == "0001"
            assert not inspect(conn).has_table("edges")
            conn.execute(schema.models.insert().values(
                content_id=fp.content_id, named_id=fp.named_id, label=fp.label, format=fp.format,
                parameters=fp.parameters, declared={}, fp_version=fp.version, fingerprint=to_bytes(fp),
                added_at=__import__("datetime").datetime.now(__import__("datetime").UTC)))
    with Catalog.open(location) as cat:
        with cat.engine.connect() as conn:
            assert migrate.current_revision(conn) == schema.HEAD
            assert inspect(conn).has_table("edges")
        assert [e.label for e in cat.entries()] == ["old"]
        assert not cat.add(fp).created


# -- errors: one line naming the catalog -------------------------------------------------------
@pytest.mark.parametrize("url, says", [
    ("mysql://u@h/db", "unsupported database"),
    ("postgresql://u@/db?host=/nonexistent/socket/dir", "cannot open"),
    ("sqlite://", "needs a file path"),
    ("http://[::1/x", "not a database URL"),
])
def test_bad_urls_are_one_line_errors(url: str, says: str) -> None:
    with pytest.raises(CatalogError) as err:
        Catalog.open(url)
    line = err.value.one_line()
    assert says in line and "\n" not in line and err.value.path


def test_password_is_not_shown() -> None:
    with pytest.raises(CatalogError) as err:
        Catalog.open("postgresql://u:hunter2@/db?host=/nonexistent/socket/dir")
    assert "hunter2" not in err.value.one_line()


def test_unusable_files_are_one_line_errors(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database" * 100)
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE recipes (id INTEGER)")
    for path, says in ((garbage, "not a database"), (tmp_path, "unable to open"),
                       (tmp_path / "missing" / "x.sqlite", "no such folder"),
                       (other, "not an assay catalog")):
        with pytest.raises(CatalogError) as err:
            Catalog.open(str(path))
        assert says in err.value.one_line() and str(path) in err.value.one_line()


def test_newer_schema_is_refused(location: str) -> None:
    Catalog.open(location).close()
    url, _ = resolve(location)
    with Catalog.open(location) as cat, cat.engine.begin() as conn:
        conn.execute(text(f"UPDATE {schema.VERSION_TABLE} SET version_num = '9999'"))
    with pytest.raises(CatalogError, match="newer than this assay"):
        Catalog.open(location)
    assert url


def test_default_location_follows_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ASSAY_CATALOG", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    url, shown = resolve(None)
    assert shown == str(tmp_path / "xdg" / "assay" / "catalog.sqlite")
    assert url.drivername == "sqlite+pysqlite" and (tmp_path / "xdg" / "assay").is_dir()
    monkeypatch.setenv("ASSAY_CATALOG", str(tmp_path / "env.sqlite"))
    assert resolve(None)[1] == str(tmp_path / "env.sqlite")
    assert resolve("postgresql://u@h/db")[0].drivername == "postgresql+psycopg"


def test_migrations_build_exactly_the_schema_the_store_uses(location: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    with Catalog.open(location) as cat, cat.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"version_table": schema.VERSION_TABLE})
        assert compare_metadata(ctx, schema.metadata) == []


def test_a_damaged_stored_fingerprint_is_a_one_line_error(tmp_path: Path) -> None:
    w = synth.base_model(5)
    with Catalog.open(str(tmp_path / "c.sqlite")) as cat:
        cat.add(synth.fp(w, "a"))
        with cat.engine.begin() as conn:
            conn.execute(schema.models.update().values(fingerprint=b"ASFP\x01garbage"))
        with pytest.raises(CatalogError, match="model 1 \\(a\\): stored fingerprint is unreadable"):
            cat.find(synth.fp(synth.finetune(w, 6), "b"))


def test_remove_takes_a_model_its_keys_and_its_relations_out(location: str) -> None:
    base = synth.base_model(11)
    ft = synth.finetune(base, 12)
    fps = [synth.fp(base, "base"), synth.fp(ft, "ft"), synth.fp(synth.cast(ft), "ft-fp16"),
           synth.fp(synth.base_model(13), "stranger")]
    with Catalog.open(location) as cat:
        for fp in fps:
            cat.add(fp)
        links = cat.links()
        by_label = {e.label: e for e in cat.entries()}
        ft_id = by_label["ft"].id
        involving_ft = [x for x in links if ft_id in (x.parent.id, x.child.id)]
        assert involving_ft and len(involving_ft) < len(links)
        removed = cat.remove([fps[1].content_id, "assay-model-v1:" + "0" * 64])
        assert [(r.entry.label, r.relations) for r in removed] == [("ft", len(involving_ft))]
        assert sorted(e.label for e in cat.entries()) == ["base", "ft-fp16", "stranger"]
        assert cat.links() == [x for x in links if x not in involving_ft]
        assert cat.fingerprint(fps[1].content_id) is None
        with cat.read() as conn:
            keys = conn.execute(select(schema.lsh_keys.c.model_id)).scalars().all()
        assert ft_id not in keys and len(set(keys)) == 3
        assert cat.remove([fps[1].content_id]) == []          # gone already: nothing to do
        # it can be added again, and is found again by its relatives
        assert cat.add(fps[1]).created
        assert {m.entry.label for m in cat.find(fps[1]).matches} >= {"base", "ft-fp16"}
