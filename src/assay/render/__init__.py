"""Results to text and JSON. Pure functions: no I/O, no printing."""
