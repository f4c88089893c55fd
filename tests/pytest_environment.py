"""Loaded with ``-p tests.pytest_environment`` (pyproject addopts) before pytest-django
starts Django, so that the settings module finds a test environment."""

import os
import tempfile

os.environ.setdefault("LOUPE_SECRET_KEY", "test-only-secret-key-" + "x" * 40)
os.environ.setdefault("LOUPE_DATA_DIR", tempfile.mkdtemp(prefix="loupe-test-data-"))
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
