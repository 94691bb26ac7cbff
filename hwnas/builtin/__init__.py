"""Built-in YAML definitions (`search_spaces/`, `hw_profiles/` at the repository top level)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent
SPACES_DIR = ROOT / "search_spaces"
PROFILES_DIR = ROOT / "hw_profiles"
