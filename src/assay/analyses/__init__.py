"""Analyses work on `ModelArtifact` values only: no file I/O, no printing, no exits."""
