"""Where the tests and the benchmarks find the project, the shared corpus and the artifacts
folder (no Django, no pytest: the benchmarks import it too)."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
# The shared DICOM corpus: LOUPE_SHARED_DICOM, else ../shared/dicom beside the project.
SHARED_DICOM = Path(os.environ.get("LOUPE_SHARED_DICOM", PROJECT_DIR.parent / "shared" / "dicom"))
# Screenshots and reports the tests save: LOUPE_TEST_ARTIFACTS, else ./test-artifacts.
ARTIFACTS = Path(os.environ.get("LOUPE_TEST_ARTIFACTS", PROJECT_DIR / "test-artifacts"))
