"""The printed-egfet model vs the published exact bespoke MLPs (Mubarik MICRO'20 / Armeniakos DATE'22).

The published designs' trained weights are not public, so each topology is costed with random weights:
N(0, 1) weights and biases (numpy ``default_rng(seed)``, seeds 0-9), quantised per layer to 8 bits, 4-bit
inputs, ReLU hidden layers. Prints a table (median over seeds, min-max in brackets) and writes JSON to
``benchmarks/results/printed_vs_published.json``. Run: ``python benchmarks/printed_vs_published.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hwnas.graph import LinearLayer
from hwnas.profiles.printed import MODEL_NAME, CircuitCost, EgfetTech, estimate_circuit

#: name: (topology, published area cm^2, published power mW) — 8-bit weights, 4-bit inputs, exact designs.
PUBLISHED = {
    "Cardio": ((21, 3, 3), 33.4, 97.3),
    "Pendigits": ((16, 5, 10), 67.0, 213.0),
    "RedWine": ((11, 2, 6), 17.6, 53.3),
    "WhiteWine": ((11, 4, 7), 31.2, 98.4),
}
SEEDS = range(10)
OUT = Path(__file__).resolve().parent / "results" / "printed_vs_published.json"


def random_mlp(topology: tuple[int, ...], seed: int) -> list[LinearLayer]:
    """Random-normal weights and biases for ``topology``; ReLU after every hidden layer."""
    rng = np.random.default_rng(seed)
    pairs = list(zip(topology, topology[1:]))
    return [LinearLayer(f"fc{i}", "random", rng.standard_normal((n_in, n_out)), rng.standard_normal(n_out),
                        "relu" if i < len(pairs) - 1 else None)
            for i, (n_in, n_out) in enumerate(pairs)]


def _summary(costs: list[CircuitCost], attr: str, published: float | None = None) -> dict[str, float]:
    """Median / min / max of one metric over the seeds, and their ratios to ``published`` if given."""
    values = np.array([getattr(c, attr) for c in costs])
    out = {"median": float(np.median(values)), "min": float(values.min()), "max": float(values.max())}
    if published:
        out.update({f"ratio_{k}": v / published for k, v in list(out.items())})
    return out


def compare(act_bits: int | None) -> dict[str, dict[str, object]]:
    """Per dataset: predicted area / power / delay over the seeds and their ratios to the published figures."""
    out: dict[str, dict[str, object]] = {}
    for name, (topology, area, power) in PUBLISHED.items():
        costs = [estimate_circuit(random_mlp(topology, s), 8, 4, act_bits=act_bits) for s in SEEDS]
        out[name] = {"topology": "-".join(map(str, topology)), "published_area_cm2": area,
                     "published_power_mw": power, "area_cm2": _summary(costs, "area_cm2", area),
                     "power_mw": _summary(costs, "power_mw", power),
                     "delay_ms": _summary(costs, "delay_ms")}
    return out


def main() -> None:
    results = {"model": MODEL_NAME, "tech": EgfetTech().__dict__, "weights": "N(0,1), numpy default_rng(seed)",
               "seeds": list(SEEDS), "weight_bits": 8, "input_bits": 4,
               "full_precision": compare(None), "act_bits_8": compare(8)}
    header = (f"{'dataset':<10} {'topology':<9} {'pub. area':>9} {'pred. area':>10} {'ratio':>17} "
              f"{'area a8':>8} {'ratio a8':>8} {'pub. mW':>8} {'pred. mW':>8} {'ratio':>6} {'delay ms':>9}")
    print(header)
    for name, row in results["full_precision"].items():
        a8 = results["act_bits_8"][name]
        a, p, d = row["area_cm2"], row["power_mw"], row["delay_ms"]
        print(f"{name:<10} {row['topology']:<9} {row['published_area_cm2']:>9.1f} {a['median']:>10.1f} "
              f"{a['ratio_median']:>5.2f} [{a['ratio_min']:.2f}-{a['ratio_max']:.2f}] "
              f"{a8['area_cm2']['median']:>8.1f} {a8['area_cm2']['ratio_median']:>8.2f} "
              f"{row['published_power_mw']:>8.1f} {p['median']:>8.1f} {p['ratio_median']:>6.2f} {d['median']:>9.1f}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
