"""Bounded reads: cursors over mapped files, archives walked under limits."""
