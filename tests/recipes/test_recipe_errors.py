"""Recipes that cannot be built give one clear line and exit 2, before anything is trained."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from assay import api
from assay.cli.main import app
from assay.recipes.arrays import write_safetensors
from assay.recipes.pinning import file_digest
from assay.recipes.schema import BuildFailedError, InputMismatchError, RecipeError

from .conftest import copy_example

runner = CliRunner()

TINY_ENTRY = '''
import os
import numpy as np
from assay.recipes import entry

expected = {"OMP_NUM_THREADS": str(entry.threads()), "OPENBLAS_NUM_THREADS": str(entry.threads()),
            "PYTHONHASHSEED": str(entry.seed()), "HF_HUB_OFFLINE": "1"}
for k, v in expected.items():
    if os.environ.get(k) != v:
        raise SystemExit(f"environment not controlled: {k}={os.environ.get(k)!r}")
if "SECRET_FROM_PARENT" in os.environ:
    raise SystemExit("the caller's environment leaked into the build")
x = np.loadtxt(entry.input_path("data"), delimiter=",")
rng = np.random.default_rng(entry.seed())
w = np.zeros(x.shape[1] - 1)
for _ in range(entry.params()["epochs"]):
    grad = x[:, :-1].T @ (x[:, :-1] @ w - x[:, -1]) / len(x)
    w = w - 0.1 * grad + 0 * rng.random()
    entry.report_epoch({"w": w})
entry.save_outputs({"w": w, "b": np.array([float(x[:, -1].mean())])})
'''


def write_recipe(folder: Path, entry_text: str = TINY_ENTRY, *, data: bytes = b"1,2,3\n4,5,6\n7,8,10\n",
                 extra: str = "", digest: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.py").write_text(entry_text)
    (folder / "data.csv").write_bytes(data)
    text = f'''schema = "assay.recipe/1"
name = "tiny"

[entry]
path = "train.py"
digest = "{file_digest(str(folder / 'train.py'))}"

[inputs.data]
path = "data.csv"
digest = "{digest or file_digest(str(folder / 'data.csv'))}"

[params]
epochs = 3

[build]
threads = 1
timeout = 120

[outputs.model]
file = "tiny.safetensors"
{extra}'''
    (folder / "recipe.toml").write_text(text)
    return folder / "recipe.toml"


def cli(*args: str) -> tuple[int, str, str]:
    res = runner.invoke(app, list(args))
    return res.exit_code, res.stdout, res.stderr


# -- broken recipes --------------------------------------------------------------------------------
def test_broken_toml_is_a_clear_error_with_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "recipe.toml"
    bad.write_text('schema = "assay.recipe/1"\nname = "x\n')
    with pytest.raises(RecipeError, match="not valid TOML"):
        api.load_recipe(str(bad))
    for cmd in (["rebuild", str(bad), "-o", str(tmp_path / "out")], ["challenge", str(bad), str(bad)]):
        code, out, err = cli(*cmd)
        assert code == 2 and out == ""
        assert err.count("\n") == 1 and "recipe.toml: recipe is not valid TOML" in err
    assert not (tmp_path / "out").exists()


def test_missing_entry_point_is_a_clear_error_with_exit_2(tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path / "r")
    os.remove(tmp_path / "r" / "train.py")
    code, _, err = cli("rebuild", str(recipe), "-o", str(tmp_path / "out"))
    assert code == 2
    assert "entry point train.py: no such file" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: t.replace('name = "tiny"', 'name = "tiny"\ncolour = "red"'), "colour: Extra inputs"),
    (lambda t: t.replace('digest = "blake3:', 'digest = "sha256:', 1), "entry.digest"),
    (lambda t: t.replace("threads = 1", "threads = 0"), "build.threads"),
    (lambda t: t.replace('path = "train.py"', 'path = "../train.py"'), "entry.path"),
    (lambda t: t.replace('schema = "assay.recipe/1"', 'schema = "assay.recipe/9"'), "schema"),
])
def test_invalid_recipe_names_the_field(tmp_path: Path, edit: object, message: str) -> None:
    recipe = write_recipe(tmp_path / "r")
    recipe.write_text(edit(recipe.read_text()))  # type: ignore[operator]
    with pytest.raises(RecipeError, match="bad recipe: .*" + message):
        api.load_recipe(str(recipe))


# -- pinned inputs ---------------------------------------------------------------------------------
def test_input_whose_digest_differs_stops_before_training(tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path / "r", digest=file_digest("/dev/null"))
    out = tmp_path / "out"
    with pytest.raises(InputMismatchError) as exc:
        api.rebuild(str(recipe), str(out))
    msg = exc.value.one_line()
    assert "input 'data'" in msg and "differs from the recipe's" in msg and "nothing was built" in msg
    assert not out.exists()            # the output folder is made only after every check passed
    code, _, err = cli("rebuild", str(recipe), "-o", str(out))
    assert code == 2 and "input 'data'" in err and not out.exists()


def test_changed_bundled_data_file_stops_the_sklearn_example(tmp_path: Path) -> None:
    """The digits example with a local copy of its data file that lost one row."""
    import gzip
    recipe = copy_example("digits-logreg", tmp_path)
    src = api.load_recipe(str(recipe))
    from assay.recipes.pinning import locate
    original = locate(src, "digits", src.recipe.inputs["digits"])
    rows = gzip.open(original).read().splitlines(keepends=True)
    (recipe.parent / "digits.csv").write_bytes(b"".join(rows[:-1]))
    text = recipe.read_text().replace('module = "sklearn"\nresource = "datasets/data/digits.csv.gz"',
                                      'path = "digits.csv"')
    recipe.write_text(text)
    out = tmp_path / "out"
    code, _, err = cli("rebuild", str(recipe), "-o", str(out))
    assert code == 2
    assert "input 'digits'" in err and "digits.csv" in err and "nothing was built" in err
    assert not out.exists()


def test_changed_entry_point_stops_before_training(tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path / "r")
    with open(tmp_path / "r" / "train.py", "a") as fh:
        fh.write("\nprint('one more line')\n")
    with pytest.raises(InputMismatchError, match=r"entry point train\.py: digest"):
        api.rebuild(str(recipe), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_weights_input_is_pinned_by_content_identity(tmp_path: Path) -> None:
    w = {"layer.weight": np.arange(12, dtype=np.float32).reshape(3, 4)}
    write_safetensors(str(tmp_path / "base.safetensors"), w)
    ident = api.identify(str(tmp_path / "base.safetensors")).content
    entry = TINY_ENTRY.replace('entry.save_outputs(', 'entry.load_weights("base")\nentry.save_outputs(')
    good = f'\n[inputs.base]\nkind = "weights"\npath = "../base.safetensors"\ndigest = "{ident}"\n'
    recipe = write_recipe(tmp_path / "r", entry, extra="")
    recipe.write_text(recipe.read_text().replace("[params]", good + "\n[params]"))
    rec = api.rebuild(str(recipe), str(tmp_path / "out"))
    assert {i["name"]: i["digest"] for i in rec.inputs}["base"] == ident
    w["layer.weight"][0, 0] = 1.0        # another value: another identity
    write_safetensors(str(tmp_path / "base.safetensors"), w)
    with pytest.raises(InputMismatchError, match="input 'base'"):
        api.rebuild(str(recipe), str(tmp_path / "out2"))


# -- the build itself --------------------------------------------------------------------------------
def test_tiny_build_record_and_controlled_environment(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_FROM_PARENT", "x")
    recipe = write_recipe(tmp_path / "r")
    code, out, err = cli("rebuild", str(recipe), "-o", str(tmp_path / "out"), "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["schema"] == "assay.build/1"
    assert doc == json.loads((tmp_path / "out" / "build.json").read_text())
    assert [e["epoch"] for e in doc["epochs"]] == [1, 2, 3]
    res = doc["resources"]
    assert res["wall_seconds"] > 0 and res["cpu_seconds"] > 0 and res["peak_memory_bytes"] > 1 << 20
    env = doc["environment"]
    assert env["threads"] == 1 and env["variables"]["OMP_NUM_THREADS"] == "1"
    assert env["cpu"]["count"] >= 1 and env["packages"]["numpy"] == np.__version__
    out_doc = doc["outputs"][0]
    ident = api.identify(str(tmp_path / "out" / "tiny.safetensors"))
    assert out_doc["content"] == ident.content and out_doc["file_digest"].startswith("blake3:")
    # a second build into the same folder needs --force, and then gives the same bytes
    code, _, err = cli("rebuild", str(recipe), "-o", str(tmp_path / "out"))
    assert code == 2 and "not empty" in err
    code, _, err = cli("rebuild", str(recipe), "-o", str(tmp_path / "out"), "--force", "-f", "json")
    assert code == 0, err
    again = json.loads((tmp_path / "out" / "build.json").read_text())
    assert again["outputs"][0]["file_digest"] == out_doc["file_digest"]


def test_expected_identity_in_the_recipe_sets_the_exit_code(tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path / "r", extra=f'identity = "assay-model-v1:{"0" * 64}"\n')
    code, out, _ = cli("rebuild", str(recipe), "-o", str(tmp_path / "out"))
    assert code == 1 and "DIFFERS FROM the recipe's expected identity" in out


def test_failing_entry_point_is_an_error_naming_its_last_words(tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path / "r", "raise ValueError('learning rate must be positive')\n")
    with pytest.raises(BuildFailedError, match=r"entry point failed .*learning rate must be positive"):
        api.rebuild(str(recipe), str(tmp_path / "out"))
    recipe = write_recipe(tmp_path / "r2", "pass\n")
    code, _, err = cli("rebuild", str(recipe), "-o", str(tmp_path / "out2"))
    assert code == 2 and "did not write output 'model'" in err


def test_challenge_of_tiny_build(tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path / "r")
    rec = api.rebuild(str(recipe), str(tmp_path / "out"))
    published = rec.output_path()
    code, out, err = cli("challenge", str(recipe), published, "--record",
                         str(tmp_path / "out" / "build.json"), "-f", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["schema"] == "assay.challenge/1" and doc["verdict"] == "byte-identical"
    code, _, err = cli("challenge", str(recipe), str(tmp_path / "nothing.safetensors"))
    assert code == 2 and "no such file" in err


def test_torch_not_configured_by_the_entry_point_is_recorded(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    recipe = write_recipe(tmp_path / "r", "import torch\n" + TINY_ENTRY)
    rec = api.rebuild(str(recipe), str(tmp_path / "out"))
    assert rec.environment["torch"] == {"configured": False}
    assert any("entry.configure_torch" in m for m in rec.environment["mismatches"])
