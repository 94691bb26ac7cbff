"""Runs fuzz cases through the hwnas CLI in one process: ``python fuzz_worker.py CASES.json RESULTS.jsonl``.

Each case is ``hwnas.cli.main(argv)`` with stdout and stderr captured, under a SIGALRM time bound; one JSON
line per case is appended (and flushed) to the results file as soon as it ends, so that the parent test knows
which case a hung or killed worker was running. The parent bounds the whole process's memory (RLIMIT_AS)
and kills it when a case overruns its bound by far (a hang in C code ignores SIGALRM).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sys
import time
import traceback


class CaseTimeout(BaseException):
    """A case ran past its time bound (a BaseException, so that no ``except Exception`` swallows it)."""


def _alarm(signum, frame):  # noqa: ANN001 - signal handler
    raise CaseTimeout


def run(case: dict) -> dict:
    from hwnas.cli import main

    out, err = io.StringIO(), io.StringIO()
    os.chdir(case["cwd"])
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(int(case["timeout_s"]))
    began = time.perf_counter()
    result = {"id": case["id"], "rc": None, "escaped": None, "timeout": False}
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                result["rc"] = main(case["argv"])
            except SystemExit as exc:  # argparse: usage errors exit 2
                result["rc"] = exc.code if isinstance(exc.code, int) else 1
    except CaseTimeout:
        result["timeout"] = True
    except BaseException as exc:  # an exception escaping main() would be a traceback for the user
        result["escaped"] = "".join(traceback.format_exception(exc))[-4000:]
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # main() leaves SIGINT ignored
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    result["seconds"] = time.perf_counter() - began
    result["stderr"] = err.getvalue()[-4000:]
    result["stdout_chars"] = len(out.getvalue())
    return result


def main() -> None:
    cases_file, results_file = sys.argv[1], sys.argv[2]
    cases = json.loads(open(cases_file, encoding="utf-8").read())
    with open(results_file, "a", encoding="utf-8") as results:
        for case in cases:
            print(json.dumps({"id": case["id"], "started": True}), file=results, flush=True)
            print(json.dumps(run(case)), file=results, flush=True)


if __name__ == "__main__":
    main()
