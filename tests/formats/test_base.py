from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from assay.errors import FormatError
from assay.formats.base import crash_guard, record_from_array


def test_crash_guard_turns_a_native_crash_into_a_format_error() -> None:
    def crash() -> None:
        os.kill(os.getpid(), signal.SIGSEGV)
    with pytest.raises(FormatError, match="crashed \\(SIGSEGV\\)"):
        crash_guard("x.h5", "the HDF5 library", crash)


def test_crash_guard_lets_ordinary_work_and_errors_through() -> None:
    crash_guard("x.h5", "lib", lambda: None)
    crash_guard("x.h5", "lib", lambda: 1 / 0)   # an exception in the child is the caller's to see


def test_record_from_array_keeps_scalars_scalar() -> None:
    rec = record_from_array("s", np.array(2.5, np.float32), "x")
    assert rec.shape == () and rec.read().item() == 2.5
