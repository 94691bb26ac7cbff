"""Finds the last match of each of a ``command`` profile's patterns in a command's output, in its own process.

Python's ``re`` cannot be interrupted (a signal handler runs only between bytecodes), so a pattern that
backtracks catastrophically on some output would hang the search; in a process of its own it is killed when it
runs past its bound. Run as ``python -I -S _match.py``: it needs only the standard library. stdin is
``{"text": str, "patterns": [[key, regex, group], ...]}``; stdout ``{key: [matched, captured] or null}``, where
``captured`` is the named ``group`` when the regex has one, else its first group.
"""

import json
import re
import sys

#: Memory the matching may take (its backtracking stack grows on the heap): far above what bounded text needs.
MEMORY_BYTES = 1 << 30


def _bound_memory() -> None:
    try:
        import resource
    except ImportError:  # not on this platform: the time bound still holds
        return
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = MEMORY_BYTES if hard == resource.RLIM_INFINITY else min(MEMORY_BYTES, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def last_matches(text: str, patterns: list[list[str]]) -> dict[str, list[str] | None]:
    found: dict[str, list[str] | None] = {}
    for key, pattern, group in patterns:
        regex = re.compile(pattern, re.MULTILINE)
        match = None
        for match in regex.finditer(text):  # keep only the last: an empty-matching pattern makes millions
            pass
        if match is None:
            found[key] = None
            continue
        captured = match.group(group) if group in regex.groupindex else match.group(1)
        found[key] = [match.group(0), captured or ""]
    return found


if __name__ == "__main__":
    _bound_memory()
    request = json.load(sys.stdin)
    json.dump(last_matches(request["text"], request["patterns"]), sys.stdout)
