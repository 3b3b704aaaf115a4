"""Recipes: a model's source (pinned inputs, entry point, parameters, environment), the one place
where training runs, and the comparison of a published file with a rebuild.

- `schema`: the recipe TOML (`assay.recipe/1`), read with pydantic.
- `pinning`: where each input lives and whether its digest still matches.
- `environment`: what the build ran on, and the controlled environment of the child process.
- `runner`: `rebuild` — checks inputs, runs the entry point in a child process, writes the outputs
  and the build record (`record`, JSON `assay.build/1`).
- `entry`: the small helper API that training entry points import (runs only in the child).
- `challenge`: the verdict ladder (`assay.challenge/1`).

Nothing here imports a format reader: functions that need to read weights take an `open_model`
callable from `assay.api`.
"""
