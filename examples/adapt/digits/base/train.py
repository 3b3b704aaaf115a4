"""The "pretrained" base of the image example: a small CNN trained on scikit-learn's 8x8 digits
0-4 only. `assay adapt` later retargets its frozen convolutions to the digits 5-9 it never saw.
Run by `assay rebuild recipe.toml`, never directly.
"""

import numpy as np
import torch
from torch import nn

from assay.recipes import entry


def load() -> tuple[np.ndarray, np.ndarray]:
    data = np.loadtxt(entry.input_path("digits"), delimiter=",", dtype=np.float32)
    x, y = data[:, :-1].reshape(-1, 1, 8, 8) / 16.0, data[:, -1].astype(np.int64)
    keep = y < 5
    return x[keep], y[keep]


def main() -> None:
    entry.configure_torch(torch)
    p = entry.params()
    x, y = load()
    w = p["width"]
    model = nn.Sequential(nn.Conv2d(1, w, 3, padding=1), nn.ReLU(), nn.Conv2d(w, 2 * w, 3, padding=1),
                          nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2 * w * 16, 5))
    opt = torch.optim.SGD(model.parameters(), lr=p["lr"], momentum=p["momentum"])
    xs, ys = torch.from_numpy(x), torch.from_numpy(y)
    order = torch.Generator().manual_seed(entry.seed())
    for _ in range(p["epochs"]):
        model.train()
        for batch in torch.randperm(len(ys), generator=order).split(p["batch"]):
            opt.zero_grad()
            nn.functional.cross_entropy(model(xs[batch]), ys[batch]).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            acc = float((model(xs).argmax(1) == ys).float().mean())
        entry.report_epoch({k: v.detach().numpy().copy() for k, v in model.state_dict().items()},
                           {"train_accuracy": acc})
    entry.save_outputs({k: v.detach().numpy().copy() for k, v in model.state_dict().items()})


if __name__ == "__main__":
    main()
