from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import tempfile

# `hwnas profiles add` writes here, never into the user's real configuration.
os.environ["HWNAS_PROFILE_DIR"] = tempfile.mkdtemp(prefix="hwnas-profiles-")
