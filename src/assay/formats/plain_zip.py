"""Zip archives that are no model format assay reads (no PyTorch `data.pkl`, no Keras config, no
NumPy members): read for what a scan needs. Every member is listed with what it starts with, the
archive's oddities are recorded, and members that are pickles go through the emulated machine.
They hold no tensors. Asked after every specific zip-based reader."""

from __future__ import annotations

from assay.formats.base import Probe, Reader, archive_observations, hidden_pickle, keeping, looks_like
from assay.model.artifact import ModelArtifact

MAX_PICKLE_MEMBER = 64 << 20        # larger pickle members are listed, not run through the machine


def sniff(p: Probe) -> bool:
    return p.zip is not None


def read(p: Probe) -> ModelArtifact:
    z = p.zip
    assert z is not None
    art = ModelArtifact(path=p.path, format="zip", files=[p.path])
    with keeping(art):
        for m in z.members:
            if m.size <= MAX_PICKLE_MEMBER and not m.flags & 0x1 and looks_like(z.head(m, 512)) == "pickle":
                hidden_pickle(art, z.data(m), p.path, m.name, 0)
        archive_observations(art, z)
    art.metadata["zip"] = {"members": len(z.members)}
    return art


READERS = [Reader("zip", sniff, read, "other zip archives (members listed and checked, no tensors)")]
