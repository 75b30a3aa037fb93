"""The `cli` fixture lives in tests/conftest.py (runtime tests use it too)."""
