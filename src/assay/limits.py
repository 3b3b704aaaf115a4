"""All limits in one frozen value. Every count or length read from a file is checked against them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """Every bound a reader checks counts and lengths from a file against."""
    # headers and metadata
    max_header_bytes: int = 100 * 1024 * 1024      # safetensors JSON header, npy header, GGUF strings
    max_json_depth: int = 64
    max_tensors: int = 1_000_000
    max_dims: int = 16
    max_metadata_entries: int = 1_000_000
    max_string_bytes: int = 64 * 1024 * 1024
    max_array_items: int = 100_000_000
    # pickle machine
    max_pickle_ops: int = 50_000_000
    max_pickle_stack: int = 1_000_000
    max_pickle_memo: int = 10_000_000
    max_pickle_depth: int = 512        # nesting of the symbolic object graph when walked
    max_pickles_per_stream: int = 1024
    # archives and compression
    max_archive_members: int = 100_000
    max_member_bytes: int = 64 * 1024 * 1024 * 1024
    max_decompressed_bytes: int = 4 * 1024 * 1024 * 1024   # held in memory after inflating
    max_compression_ratio: int = 1000
    max_nesting: int = 4
    # folders
    max_folder_files: int = 10_000


DEFAULT_LIMITS = Limits()
