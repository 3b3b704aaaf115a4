from tests.audit.conftest import minilm  # noqa: F401  (shared fixture)
