"""Model folders: Hugging Face style folders with config, model card and (sharded) weights.

Weight files are recognised by content through the same reader table as single files. When a
`*.index.json` names shards, exactly those files are read (each must stay inside the folder and
every listed tensor must be found in its shard). Without an index, the folder's weight files of
the most preferred format are read (safetensors before PyTorch before the rest), since hubs
often ship the same weights twice; the others are listed in the folder metadata.
`config.json`, `generation_config.json` and the model card's YAML front matter are metadata;
chat templates in tokenizer files are observations.
"""

from __future__ import annotations

import os
from typing import Any

from assay.errors import AssayError, FormatError, LimitError, UnknownFormatError
from assay.formats.templates import record_templates
from assay.io.jsonfile import read_json_file
from assay.limits import Limits
from assay.model.artifact import ModelArtifact

PREFERENCE = ["safetensors", "pytorch-zip", "pytorch-legacy", "gguf", "onnx", "keras",
              "hdf5-keras", "numpy-npz", "numpy-npy", "joblib", "torchscript"]
MAX_SIDE_FILE = 16 * 1024 * 1024
NOT_WEIGHTS = {"json-config", "jinja-template"}
CARD_KEYS = ("license", "license_name", "license_link", "base_model", "base_model_relation",
             "datasets", "language", "library_name", "pipeline_tag", "tags")


def _files(root: str, limits: Limits) -> list[str]:
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for f in sorted(filenames):
            if f.startswith("."):
                continue
            p = os.path.join(dirpath, f)
            if os.path.islink(p) and not _inside(root, os.path.realpath(p)):
                continue
            if os.path.isfile(p):
                out.append(p)
                if len(out) > limits.max_folder_files:
                    raise LimitError(root, f"folder holds more than {limits.max_folder_files} files")
    return out


def _inside(root: str, path: str) -> bool:
    root = os.path.realpath(root)
    return os.path.commonpath([root, os.path.realpath(path)]) == root


def card_front_matter(path: str) -> dict[str, Any]:
    """The YAML front matter of a model card (README.md), parsed with yaml.safe_load."""
    if os.path.getsize(path) > MAX_SIDE_FILE:
        return {}
    with open(path, encoding="utf-8", errors="replace") as fh:
        text = fh.read()
    if not text.startswith("---"):
        return {}
    end = text.find("\n---", 3)
    if end < 0:
        return {}
    import yaml
    try:
        data = yaml.safe_load(text[3:end])
    except yaml.YAMLError:
        raise FormatError(path, "model card front matter is not valid YAML") from None
    return data if isinstance(data, dict) else {}


def _index(path: str, root: str) -> dict[str, str]:
    data = read_json_file(path)
    wm = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(wm, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                           for k, v in wm.items()):
        raise FormatError(path, "index has no weight_map of tensor names to shard files")
    for shard in set(wm.values()):
        full = os.path.join(os.path.dirname(path), shard)
        if os.path.isabs(shard) or not _inside(root, full):
            raise FormatError(path, f"shard {shard!r} lies outside the model folder")
        if not os.path.isfile(full):
            raise FormatError(path, f"shard {shard!r} is missing")
    return wm


def read_folder(root: str, limits: Limits) -> ModelArtifact:
    from assay.formats import read_file

    files = _files(root, limits)
    art = ModelArtifact(path=root, format="folder")
    meta: dict[str, Any] = {}
    indexes = [f for f in files if f.endswith(".index.json")]
    weight_sets: dict[str, list[ModelArtifact]] = {}
    chosen: list[ModelArtifact]
    if indexes:
        index = indexes[0]
        wm = _index(index, root)
        shards = sorted(set(wm.values()))
        chosen = [read_file(os.path.join(os.path.dirname(index), s), limits) for s in shards]
        found = {t.name for part in chosen for t in part.tensors}
        missing = sorted(set(wm) - found)
        if missing:
            raise FormatError(index, f"{len(missing)} indexed tensors are not in their shards, "
                              f"e.g. {missing[0]!r}")
        meta["index"] = os.path.relpath(index, root)
        if len(indexes) > 1:
            meta["other_indexes"] = [os.path.relpath(i, root) for i in indexes[1:]]
    else:
        for f in files:
            if f.endswith((".json", ".md", ".txt", ".py", ".yaml", ".yml", ".jinja", ".j2")):
                continue
            try:
                part = read_file(f, limits)
            except UnknownFormatError:
                continue
            if part.format in NOT_WEIGHTS:
                continue
            weight_sets.setdefault(part.format, []).append(part)
        if not weight_sets:
            raise UnknownFormatError(root, "folder holds no model weight file assay recognises")
        best = min(weight_sets, key=lambda k: PREFERENCE.index(k) if k in PREFERENCE else 99)
        chosen = weight_sets[best]
        others = [p.path for k, v in weight_sets.items() if k != best for p in v]
        if others:
            meta["other_weight_files"] = [os.path.relpath(p, root) for p in others]
    _side_files(root, files, art, meta)
    names: dict[str, str] = {}
    for part in chosen:
        art.parts.append(part)
        art.files.extend(part.files)
        art.observations.extend(part.observations)
        for t in part.tensors:
            if t.name in names:
                raise FormatError(part.path, f"tensor {t.name!r} also appears in {names[t.name]}")
            names[t.name] = part.path
            art.tensors.append(t)
        for k, v in part.metadata.items():
            art.metadata.setdefault(k, v)
    formats = sorted({p.format for p in chosen})
    art.format = "folder:" + "+".join(formats)
    meta["weight_files"] = [os.path.relpath(p.path, root) for p in chosen]
    art.metadata["folder"] = meta
    return art


def _side_files(root: str, files: list[str], art: ModelArtifact, meta: dict[str, Any]) -> None:
    for f in files:
        base = os.path.basename(f)
        try:
            if base == "config.json" and os.path.dirname(f) == root.rstrip(os.sep):
                cfg = read_json_file(f)
                if isinstance(cfg, dict):
                    art.metadata["config"] = cfg
            elif base == "README.md" and os.path.dirname(f) == root.rstrip(os.sep):
                card = card_front_matter(f)
                if card:
                    art.metadata["card"] = {k: card[k] for k in CARD_KEYS if k in card}
            elif base in ("tokenizer_config.json", "chat_template.json"):
                tok = read_json_file(f)
                if isinstance(tok, dict):
                    record_templates(art, tok.get("chat_template"), f)
            elif base.endswith((".jinja", ".j2")):
                with open(f, encoding="utf-8", errors="replace") as fh:
                    art.observe("template", "template file", f, text=fh.read(MAX_SIDE_FILE))
        except AssayError as exc:
            meta.setdefault("unreadable_side_files", []).append(exc.one_line())
