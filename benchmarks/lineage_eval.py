"""Lineage accuracy: `assay lineage` on the lineage test set, beside Cisco's Model Provenance Kit.

    .venv/bin/python benchmarks/lineage_eval.py              # both parts (peer part needs its venv)
    .venv/bin/python benchmarks/lineage_eval.py --no-peer    # assay's confusion table only

Part 1 judges every pair of `tests/factories/lineage.py` (MiniLM family and tiny trained
models, in every format) with `assay lineage A B --format json` and prints the confusion table
of expected against found relations, and how often the direction is right where the weights
carry one. Merges are judged as `assay lineage CHILD PARENT... --forest`: found `merged` when
the child gets exactly its parents.

Part 3 infers one forest over every model of the set at once (`assay lineage FOLDER`) and counts
the pairs whose link is where it should be.

Part 2 gives the peer, `provenancekit compare A B --json` (cisco-ai-provenance-kit 1.0.0, run
from its own venv `benchmarks/.lineage-peer-venv`), the pairs a Hugging Face folder can hold
(config, tokenizer, canonical BERT names), and compares both tools on the only question the peer
answers: same lineage or not (assay: any relation but `unrelated`; the peer: a decision that
is a match: "Confirmed Match", "High-Confidence Match" or "Weak Match").

Every tool runs as a whole fresh process per pair. Exit 0 when everything ran, 2 otherwise.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / "data" / "lineage-eval"
PEER = HERE / ".lineage-peer-venv" / "bin" / "provenancekit"
sys.path.insert(0, str(ROOT))

from tests.factories.lineage import LineagePair, build_hf_folders, build_lineage  # noqa: E402

from assay.analyses.lineage.types import RELATIONS  # noqa: E402

PEER_MATCH = ("Confirmed Match", "High-Confidence Match", "Weak Match")


def assay(*args: str) -> tuple[dict, float]:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "assay.cli.main", "lineage", *args, "--format", "json"],
                       capture_output=True, text=True, timeout=600, cwd=ROOT)
    dt = time.perf_counter() - t0
    if r.returncode not in (0, 1):
        raise RuntimeError(f"assay lineage {' '.join(args)}: exit {r.returncode}: {r.stderr.strip()}")
    return json.loads(r.stdout), dt


def judge(p: LineagePair) -> tuple[str, str, float]:
    """(found relation, direction: ok / wrong / undecided / -, seconds)."""
    if p.relation == "merged":
        doc, dt = assay(p.a, *[x for x in p.parents if x != p.a], "--forest", "--min-confidence", "0")
        parents = next(n["parents"] for n in doc["nodes"] if n["label"] == p.a)
        if len(parents) >= 2:
            return ("merged" if set(parents) == set(p.parents) else "merged (other parents)"), "-", dt
        edge = next((e for e in doc["edges"] if p.a in (e["parent"], e["child"])), None)
        return (edge["relation"] if edge else "unrelated"), "-", dt
    doc, dt = assay(p.a, p.b)
    if p.parent is None:
        return doc["relation"], "-", dt
    want = p.a if p.parent == "a" else p.b
    got = doc["parent"]
    return doc["relation"], ("undecided" if got is None else "ok" if got == want else "wrong"), dt


def confusion(rows: list[tuple[str, str]]) -> str:
    expected = [r for r in RELATIONS if any(e == r for e, _ in rows)]
    found = sorted({f for _, f in rows}, key=lambda x: (RELATIONS.index(x) if x in RELATIONS else 99, x))
    count = Counter(rows)
    w = max(len(x) for x in [*expected, "expected \\ found"]) + 2
    cols = [max(len(f), 3) + 1 for f in found]
    out = ["expected \\ found".ljust(w) + "".join(f.rjust(c) for f, c in zip(found, cols))]
    for e in expected:
        cells = [str(count[(e, f)] or ".").rjust(c) for f, c in zip(found, cols)]
        out.append(e.ljust(w) + "".join(cells))
    return "\n".join(out)


def part1(root: Path) -> list[LineagePair]:
    pairs = build_lineage(root)
    print(f"# part 1: assay lineage on the lineage test set ({len(pairs)} pairs; "
          "tests/factories/lineage.py)")
    print(f"{'pair':28} {'expected':10} {'found':22} {'direction':9} {'s':>5}")
    rows: list[tuple[str, str]] = []
    dirs = Counter()
    for p in pairs:
        found, direction, dt = judge(p)
        rows.append((p.relation, found))
        dirs[direction] += 1
        mark = "" if found == p.relation else "  <-"
        print(f"{p.name:28} {p.relation:10} {found:22} {direction:9} {dt:5.2f}{mark}")
    right = sum(1 for e, f in rows if e == f)
    print()
    print(confusion(rows))
    directed = dirs["ok"] + dirs["wrong"] + dirs["undecided"]
    print(f"\nrelations right: {right} of {len(rows)}; direction right where the weights carry one: "
          f"{dirs['ok']} of {directed} ({dirs['wrong']} wrong, {dirs['undecided']} undecided)")
    return pairs


def part3(root: Path, pairs: list[LineagePair]) -> None:
    """The forest over every model of the set at once: is each pair's link where it should be?"""
    doc, dt = assay(str(root))
    edges = {(e["parent"], e["child"]): e for e in doc["edges"]}
    # models holding the same values (same / converted) stand for one another
    cls = {n["label"]: n["label"] for n in doc["nodes"]}

    def find(x: str) -> str:
        while cls[x] != x:
            x = cls[x]
        return x
    for (a, b), e in edges.items():
        if e["relation"] in ("same", "converted"):
            cls[find(b)] = find(a)
    tree = {n["label"]: n["label"] for n in doc["nodes"]}

    def top(x: str) -> str:
        while tree[x] != x:
            x = tree[x]
        return x
    for a, b in edges:
        tree[top(b)] = top(a)

    def linked(x: str, y: str) -> tuple[bool, bool]:
        """(an edge joins the classes of x and y, it runs from x's class to y's)."""
        down = any(find(p) == find(x) and find(c) == find(y) for p, c in edges)
        up = any(find(p) == find(y) and find(c) == find(x) for p, c in edges)
        return down or up or find(x) == find(y), down or find(x) == find(y)

    right = directed = directed_right = 0
    misses = []
    for p in pairs:
        if p.relation == "unrelated":
            ok = top(p.a) != top(p.b)
        elif p.relation == "merged":
            got = {find(x) for x in next(n["parents"] for n in doc["nodes"] if n["label"] == p.a)}
            ok = got == {find(x) for x in p.parents}
        elif p.parent is None:
            ok = linked(p.a, p.b)[0]
        else:
            origin, derived = (p.a, p.b) if p.parent == "a" else (p.b, p.a)
            ok, forward = linked(origin, derived)
            if ok:
                directed += 1
                directed_right += forward
                if not forward:
                    misses.append(f"{p.name} (direction)")
        right += ok
        if not ok:
            misses.append(p.name)
    print(f"\n# part 3: one forest over all {len(doc['nodes'])} models ({doc['compared']} pairs compared, "
          f"{dt:.1f} s): {len(doc['edges'])} edges, {len(doc['roots'])} roots")
    print(f"pairs whose link is in the forest: {right} of {len(pairs)} (unrelated: in other trees; merged: "
          f"exactly its parents; same-valued models stand for one another); direction right "
          f"{directed_right} of {directed}")
    if misses:
        print("not as expected: " + ", ".join(misses))


def peer(a: str, b: str) -> tuple[str, float, float]:
    t0 = time.perf_counter()
    r = subprocess.run([str(PEER), "compare", a, b, "--json", "--no-cache"], capture_output=True, text=True,
                       timeout=900, cwd=ROOT)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"provenancekit compare {a} {b}: exit {r.returncode}: {r.stderr.strip()[-300:]}")
    doc = json.loads(r.stdout)
    return doc["scores"]["provenance_decision"], float(doc["scores"].get("identity_score") or 0.0), dt


def disguises(root: Path, base_dir: Path) -> list[LineagePair]:
    """Pairs written here to probe what each tool keys on (labels are the truth: same lineage or not):

    - minilm-ffn-permuted: the base with the feed-forward units of every layer permuted (rows of
      `intermediate.dense`, columns of `output.dense`): the same function, disguised; related.
    - minilm-no-tokenizer: the base weights and config, tokenizer files left out; related.
    - minilm-two-random-inits: two random initialisations of the architecture, same config and
      tokenizer, no training in common; unrelated.
    """
    import numpy as np
    from safetensors.numpy import load_file
    from tests.factories.lineage import _random_bert, write_hf_folder, write_safetensors

    base = load_file(str(base_dir / "model.safetensors"))
    perm = dict(base)
    rng = np.random.default_rng(5)
    for i in range(6):
        pre = f"encoder.layer.{i}."
        order = rng.permutation(base[pre + "intermediate.dense.weight"].shape[0])
        perm[pre + "intermediate.dense.weight"] = base[pre + "intermediate.dense.weight"][order]
        perm[pre + "intermediate.dense.bias"] = base[pre + "intermediate.dense.bias"][order]
        perm[pre + "output.dense.weight"] = np.ascontiguousarray(base[pre + "output.dense.weight"][:, order])
    out = [LineagePair("minilm-ffn-permuted", str(base_dir), str(write_hf_folder(perm, root / "permuted")),
                       "disguised", None)]
    bare = root / "no-tokenizer"
    bare.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(base_dir / "config.json", bare / "config.json")
    write_safetensors(base, bare / "model.safetensors")
    out.append(LineagePair("minilm-no-tokenizer", str(base_dir), str(bare), "same", None))
    r1 = write_hf_folder(_random_bert(base, 31), root / "random-31")
    r2 = write_hf_folder(_random_bert(base, 32), root / "random-32")
    out.append(LineagePair("minilm-two-random-inits", str(r1), str(r2), "unrelated", None))
    return out


def part2(root: Path) -> tuple[int, int, int]:
    pairs = build_hf_folders(root)
    pairs += disguises(root, Path(pairs[0].a))
    version = subprocess.run([str(PEER.parent / "python"), "-c", "import importlib.metadata as m; "
                              "print(m.version('cisco-ai-provenance-kit'))"],
                             capture_output=True, text=True).stdout.strip()
    print(f"\n# part 2: same lineage or not, on Hugging Face folders ({len(pairs)} pairs); "
          f"assay against provenancekit {version}")
    print(f"{'pair':24} {'expected':10} {'truth':9} {'assay':12} {'ok':3} {'s':>5}   "
          f"{'provenancekit decision':24} {'identity':>8} {'ok':3} {'s':>5}")
    a_right = p_right = 0
    for p in pairs:
        truth = p.relation != "unrelated"             # "disguised" copies are related
        doc, da = assay(p.a, p.b)
        a_ok = (doc["relation"] != "unrelated") == truth
        decision, ident, dp = peer(p.a, p.b)
        p_ok = decision.startswith(PEER_MATCH) == truth
        a_right += a_ok
        p_right += p_ok
        print(f"{p.name:24} {p.relation:10} {'related' if truth else 'unrelated':9} {doc['relation']:12} "
              f"{'yes' if a_ok else 'NO':3} {da:5.2f}   {decision:24} {ident:8.3f} "
              f"{'yes' if p_ok else 'NO':3} {dp:5.1f}")
    print(f"\nsame lineage or not, right: assay {a_right} of {len(pairs)}, provenancekit {p_right} of "
          f"{len(pairs)}")
    return a_right, p_right, len(pairs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--no-peer", action="store_true", help="skip the provenancekit part")
    args = ap.parse_args()
    shutil.rmtree(DATA, ignore_errors=True)
    try:
        part3(DATA / "set", part1(DATA / "set"))
        if not args.no_peer:
            if not PEER.exists():
                sys.stderr.write(f"lineage_eval: {PEER} missing; see benchmarks/README.md (or --no-peer)\n")
                return 2
            part2(DATA / "hf")
    except (RuntimeError, subprocess.TimeoutExpired, OSError, ValueError) as exc:
        sys.stderr.write(f"lineage_eval: {exc}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
