"""A small convolutional network on the 8x8 digits that scikit-learn ships, in PyTorch (CPU).

Run by `assay rebuild recipe.toml`, never directly: assay pins the thread pools and the hash seed;
`entry.configure_torch` pins torch's threads and seed and turns on deterministic algorithms. The
weights are written as safetensors through `entry.save_outputs`, never with `torch.save`.
"""

import numpy as np
import torch
from torch import nn

from assay.recipes import entry


def load() -> tuple[np.ndarray, np.ndarray]:
    data = np.loadtxt(entry.input_path("digits"), delimiter=",", dtype=np.float32)
    x, y = data[:, :-1].reshape(-1, 1, 8, 8) / 16.0, data[:, -1].astype(np.int64)
    order = np.random.default_rng(entry.seed()).permutation(len(y))
    return x[order], y[order]


def network(width: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1), nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(2 * width * 16, 10))


def weights(model: nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def main() -> None:
    entry.configure_torch(torch)
    p = entry.params()
    x, y = load()
    n = p["train_size"]
    xs, ys = torch.from_numpy(x[:n]), torch.from_numpy(y[:n])
    xt, yt = torch.from_numpy(x[n:]), torch.from_numpy(y[n:])
    model = network(p["width"])
    opt = torch.optim.SGD(model.parameters(), lr=p["lr"], momentum=p["momentum"])
    order = torch.Generator().manual_seed(entry.seed())
    for _ in range(p["epochs"]):
        model.train()
        perm = torch.randperm(n, generator=order)
        for i in range(0, n, p["batch"]):
            batch = perm[i:i + p["batch"]]
            opt.zero_grad()
            nn.functional.cross_entropy(model(xs[batch]), ys[batch]).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            acc = float((model(xt).argmax(1) == yt).float().mean())
        entry.report_epoch(weights(model), {"accuracy": acc})
    entry.save_outputs(weights(model), metadata={"recipe": "digits-cnn"})


def predict(tensors: dict[str, np.ndarray]) -> np.ndarray:
    """Classes predicted for the held-out digits (the probe set)."""
    entry.configure_torch(torch)
    x, _ = load()
    model = network(entry.params()["width"])
    model.load_state_dict({k: torch.from_numpy(v) for k, v in tensors.items()})
    model.eval()
    with torch.no_grad():
        return model(torch.from_numpy(x[entry.params()["train_size"]:])).argmax(1).numpy()


if __name__ == "__main__":
    main()
