"""The emulated pickle machine and the symbolic values it builds."""

from assay.formats.pickle.machine import PickleMachine, PickleResult, looks_like_pickle, run_pickle
from assay.formats.pickle.symbols import Call, Extension, Global, Persistent, PickleBuffer, Raw

__all__ = ["Call", "Extension", "Global", "Persistent", "PickleBuffer", "PickleMachine",
           "PickleResult", "Raw", "looks_like_pickle", "run_pickle"]
