"""User-facing errors: the CLI prints these as one clear message, without a traceback."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

#: The most characters of one message (a trial's reason, a candidate's error) kept: a device tool may print a
#: 200 MB line, which must not go whole into the study, the terminal or a log.
MAX_MESSAGE_CHARS = 2000


def clip(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` in at most ``limit`` characters: its beginning and a note saying how many were cut (so clipping
    twice changes nothing)."""
    if len(text) <= limit:
        return text
    keep = limit - len(f" … ({len(text)} characters cut)")  # the note with a count at least as long
    return f"{text[:keep]} … ({len(text) - keep} characters cut)"


class HwnasError(Exception):
    """Base class of every error caused by user input (files, options, constraints)."""


class SpaceError(HwnasError):
    """A search-space definition is malformed or contradictory."""


class DataError(HwnasError):
    """A dataset name or file cannot be used."""


class ProfileError(HwnasError):
    """A hardware profile is unknown, malformed, or failed to produce a number."""


class ConfigError(HwnasError):
    """Search options (sampler, objectives, constraints, storage) are invalid."""


class CircuitError(HwnasError):
    """A model has no exact circuit (Verilog) form, or a circuit tool (simulator, synthesis) failed on it."""


class CandidateError(Exception):
    """One candidate failed (diverged, failed to export or to profile); its trial is recorded as failed.

    ``artifact``: the ONNX file the candidate got as far as lowering, kept with the failed trial."""

    def __init__(self, message: str, *, artifact: "Path | None" = None) -> None:
        super().__init__(clip(message))
        self.artifact = artifact
