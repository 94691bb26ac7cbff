"""Our synthesis flow (hwnas.circuit.synth + hw_profiles/egfet.lib) vs the published exact bespoke printed MLPs.

garmeniakos/Ax-Printed-ML-Classifiers ships the Verilog of exact bespoke MLP classifiers (8-bit weights, 4-bit
inputs; ``baseline_models/hdl/{CA,RW,WW,BS,V3,PD}/*MLP_C*.v``) and a table of their measured area and power
(Synopsys Design Compiler + the EGT PDK, PrimeTime). That repository has no licence, so its Verilog is not
copied into hwnas: export it and point ``--designs`` at the folder::

    git -C <mirror-or-clone> archive HEAD baseline_models | tar -x -C DIR
    python benchmarks/printed_published_synth.py --designs DIR

Each design is synthesised as shipped (top module ``top``; its ``predo`` output keeps the output-layer sums as
ports) with no constant fitted to any design. Prints synthesised area / power / delay vs published, their
ratios, the median |error| and the median synthesis time; writes
``benchmarks/results/printed_published_synth.json``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import environment, fnum, header, table, write_json  # noqa: E402

from hwnas.circuit.synth import SynthesisReport, file_digest, synthesise  # noqa: E402
from hwnas.errors import ProfileError  # noqa: E402

LIBRARY = Path(__file__).resolve().parents[1] / "hw_profiles" / "egfet.lib"
README = "garmeniakos/Ax-Printed-ML-Classifiers README, 'Measured Results' (Baseline [1])"
MICRO20 = "Mubarik et al., MICRO 2020 (REFERENCES.md)"
#: folder code: (dataset, published area cm^2, published power mW, source; other reported power, its source).
PUBLISHED = {
    "CA": ("Cardio", 33.4, 124.2, README, (97.3, MICRO20)),
    "RW": ("RedWine", 17.6, 73.5, README, (53.3, MICRO20)),
    "WW": ("WhiteWine", 31.2, 126.4, README, (98.4, MICRO20)),
    "BS": ("Balance Scale", 9.3, 39.6, README, None),
    "V3": ("Vertebral 3C", 8.8, 41.9, README, None),
    "PD": ("Pendigits", 67.0, 213.0, MICRO20, None),
}


def find_design(root: Path, code: str) -> Path:
    """The exact MLP-C Verilog of ``code`` under ``root`` (an export, a checkout, or its ``hdl`` folder)."""
    for hdl in (root / "baseline_models" / "hdl", root / "hdl", root):
        found = sorted((hdl / code).glob("*MLP_C*.v"))
        if found:
            return found[0]
    raise SystemExit(f"no {code}/*MLP_C*.v under {root} (export it: git -C REPO archive HEAD baseline_models | "
                     f"tar -x -C {root})")


def run_one(code: str, path: Path, timeout_s: float, cache: Path | None) -> dict[str, object]:
    name, area, power, source, other = PUBLISHED[code]
    row: dict[str, object] = {"code": code, "dataset": name, "file": f"{path.parent.name}/{path.name}",
                              "published_area_cm2": area, "published_power_mw": power, "published_source": source,
                              "other_published_power_mw": other}
    start = time.perf_counter()
    try:
        report: SynthesisReport = synthesise(path.read_text(), "top", LIBRARY, timeout_s=timeout_s, cache_dir=cache)
    except ProfileError as exc:
        row["error"] = str(exc)
        return row
    row.update(report.to_dict())
    row.update(area_ratio=report.area_cm2 / area, power_ratio=report.power_mw / power,
               wall_seconds=round(time.perf_counter() - start, 2))
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--designs", type=Path, required=True, help="folder holding baseline_models/hdl (see above)")
    ap.add_argument("--jobs", type=int, default=2, help="designs synthesised at once (one Yosys process each)")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per design")
    ap.add_argument("--cache", type=Path, default=None, help="synthesis cache folder (default: none)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    env = environment()
    print(header(env))
    paths = {code: find_design(args.designs, code) for code in PUBLISHED}
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        rows = list(pool.map(lambda c: run_one(c, paths[c], args.timeout, args.cache), PUBLISHED))
    ok = [r for r in rows if "error" not in r]
    print(table(
        ["design", "cells", "area cm2", "pub.", "ratio", "power mW", "pub.", "ratio", "delay ms", "synth s"],
        [[r["dataset"], r.get("cell_count", "-") if "error" in r else sum(r["cells"].values()),
          fnum(r.get("area_cm2"), 3), r["published_area_cm2"], fnum(r.get("area_ratio"), 3),
          fnum(r.get("power_mw"), 4), r["published_power_mw"], fnum(r.get("power_ratio"), 3),
          fnum(r.get("delay_ms"), 4), fnum(r.get("seconds"), 3)] for r in rows]))
    for r in rows:
        if "error" in r:
            print(f"{r['dataset']}: {r['error']}")
    summary = {}
    if ok:
        summary = {
            "median_abs_area_error": statistics.median(abs(r["area_ratio"] - 1) for r in ok),
            "median_abs_power_error": statistics.median(abs(r["power_ratio"] - 1) for r in ok),
            "median_synthesis_seconds": statistics.median(r["seconds"] for r in ok),
            "designs": len(ok), "failed": len(rows) - len(ok), "jobs": args.jobs,
        }
        print(f"median |error|: area {summary['median_abs_area_error']:.1%}, power "
              f"{summary['median_abs_power_error']:.1%} (goal <= 20 %); median synthesis time "
              f"{summary['median_synthesis_seconds']:.1f} s per design ({args.jobs} at once)")
    out = write_json("printed_published_synth", {
        "environment": env, "library": str(LIBRARY.name), "library_digest": file_digest(LIBRARY),
        "fitted_constants": "none", "summary": summary, "designs": rows}, args.out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
