"""Regenerate the bundled examples (run once by maintainers; the outputs are committed).

Needs torch==2.13.0 and safetensors: `.venv/bin/python examples/make_examples.py`.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

HERE = Path(__file__).parent


def main() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))
    sd = {k: v.contiguous() for k, v in model.state_dict().items()}
    folder = HERE / "tiny-classifier"
    folder.mkdir(exist_ok=True)
    save_file(sd, str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "config.json").write_text(json.dumps(
        {"architectures": ["TinyClassifier"], "hidden_size": 32, "num_labels": 4}, indent=2) + "\n")
    (folder / "README.md").write_text(
        "---\nlicense: apache-2.0\nbase_model: none\ndatasets:\n- synthetic\n---\n\n"
        "# tiny-classifier\n\nA 2-layer MLP with random weights, for assay's quick start.\n")
    torch.save({"state_dict": sd, "epoch": 3}, HERE / "tiny-checkpoint.pt")
    # A hostile pickle: loading it with pickle.load would run `echo pwned`. assay only reads it.
    cmd = b"echo pwned"
    payload = b"\x80\x04\x8c\x02os\x8c\x06system\x93\x8c" + bytes([len(cmd)]) + cmd + b"\x85R."
    (HERE / "hostile.pkl").write_bytes(payload)


if __name__ == "__main__":
    main()
