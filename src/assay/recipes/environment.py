"""What a build ran on, and the controlled environment its child process gets.

The child does not inherit the caller's environment: it gets PATH, a private HOME and TMPDIR,
a fixed locale and time zone, every thread pool the usual numeric libraries read pinned to the
build's thread count, the hash seed, and the offline switches of the Hugging Face libraries.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata
from typing import Any

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "BLIS_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
OFFLINE_VARS = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
                "PIP_NO_INDEX": "1"}
ALWAYS_RECORDED = ("numpy", "assay")


def child_env(threads: int, seed: int, home: str, context_file: str, pythonpath: str) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, "TMPDIR": home,
           "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TZ": "UTC",
           "PYTHONHASHSEED": str(seed), "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1",
           "PYTHONPATH": pythonpath, "OMP_DYNAMIC": "FALSE", "MKL_DYNAMIC": "FALSE",
           "OMP_WAIT_POLICY": "PASSIVE",     # idle threads sleep: same results, far less CPU when shared
           "CUBLAS_WORKSPACE_CONFIG": ":4096:8", "CUDA_VISIBLE_DEVICES": "", "MPLBACKEND": "Agg",
           "ASSAY_BUILD_CONTEXT": context_file}
    env.update({v: str(threads) for v in THREAD_VARS})
    env.update(OFFLINE_VARS)
    return env


def cpu_info(path: str = "/proc/cpuinfo") -> dict[str, Any]:
    """CPU model and flags of the first processor listed, and the CPUs this process may use."""
    model, flags = platform.processor() or platform.machine(), []
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = fh.read(1 << 20)
        block = text.split("\n\n", 1)[0]
        for line in block.splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("model name", "cpu model", "uarch"):
                model = value.strip()
            elif key in ("flags", "Features", "isa"):
                flags = sorted(set(value.split()))
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    return {"model": model, "flags": flags, "count": os.cpu_count() or 1, "usable": usable}


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def capture(pinned_packages: dict[str, str], pinned_python: str | None, threads: int,
            seed: int) -> dict[str, Any]:
    """The environment of a build, with every difference from the recipe's pins listed."""
    names = sorted(set(pinned_packages) | set(ALWAYS_RECORDED))
    packages = {n: package_version(n) for n in names}
    mismatches = []
    python = platform.python_version()
    if pinned_python and python != pinned_python and not python.startswith(pinned_python + "."):
        mismatches.append(f"Python {python} runs the build; the recipe pins {pinned_python}")
    for name, want in sorted(pinned_packages.items()):
        have = packages.get(name)
        if have != want:
            mismatches.append(f"{name} {have or 'is not installed'}"
                              f"{' is installed' if have else ''}; the recipe pins {want}")
    return {"python": python, "implementation": platform.python_implementation(),
            "os": f"{platform.system()} {platform.release()}", "machine": platform.machine(),
            "cpu": cpu_info(), "threads": threads, "seed": seed, "packages": packages,
            "variables": {**{v: str(threads) for v in THREAD_VARS}, "PYTHONHASHSEED": str(seed),
                          **OFFLINE_VARS},
            "mismatches": mismatches}
