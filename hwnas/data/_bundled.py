"""Bundled datasets: scikit-learn's toy sets and the UCI printed-MLP benchmark CSVs in `uci/`."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from hwnas.data._files import Arrays, read_table, table_arrays

# canonical name -> scikit-learn loader function (sklearn.datasets)
SKLEARN: dict[str, str] = {
    "breast_cancer": "load_breast_cancer",
    "wine": "load_wine",
    "iris": "load_iris",
    "digits": "load_digits",
}


@dataclass(frozen=True)
class UciFile:
    """How to read one bundled UCI CSV."""

    file: str
    delimiter: str = ","
    target: str | None = None  # None: last column
    drop: tuple[str, ...] = ()


# canonical name -> bundled file in hwnas/data/uci/
UCI: dict[str, UciFile] = {
    "arrhythmia": UciFile("arrhythmia.csv"),
    "balance_scale": UciFile("balance-scale.csv"),
    "breast_cancer_wisconsin": UciFile("breast-cancer-wisconsin.csv", delimiter=";", target="Y", drop=("X1",)),
    "cardio": UciFile("cardio.csv"),
    "vertebral_2c": UciFile("column_2C.csv"),
    "vertebral_3c": UciFile("column_3C.csv"),
    "mammographic_masses": UciFile("mammographic_masses.csv"),
    "pendigits": UciFile("pendigits.csv"),
    "seeds": UciFile("seeds.csv"),
    "redwine": UciFile("wine-red.csv"),
    "whitewine": UciFile("wine-white.csv"),
}


def name_key(name: str) -> str:
    """Normalised lookup key: case-insensitive, '-' and '_' equivalent."""
    return name.strip().lower().replace("-", "_")


def _aliases() -> dict[str, str]:
    """Lookup key -> canonical name, for canonical names and the UCI file stems."""
    table = {name_key(name): name for name in (*SKLEARN, *UCI)}
    table.update({name_key(Path(spec.file).stem): name for name, spec in UCI.items()})
    return table


ALIASES: dict[str, str] = _aliases()


def canonical_name(name: str) -> str | None:
    """The bundled dataset `name` refers to, or None."""
    return ALIASES.get(name_key(name))


def bundled_names() -> list[str]:
    """Every canonical bundled dataset name, sorted."""
    return sorted((*SKLEARN, *UCI))


def source_of(name: str) -> str:
    """Provenance string recorded in Dataset.source."""
    if name in SKLEARN:
        return f"sklearn:{SKLEARN[name]}"
    return f"uci:{name} (bundled, CC BY 4.0)"


def load_sklearn(name: str) -> tuple[Arrays, tuple[str, ...]]:
    """Features/labels of a scikit-learn toy set and its class names (target_names)."""
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, SKLEARN[name])()
    arrays = Arrays(
        X=np.asarray(bunch.data, dtype=np.float32),
        labels=np.asarray(bunch.target, dtype=np.int64),
        feature_names=tuple(str(f) for f in bunch.feature_names),
        label="target",
    )
    return arrays, tuple(str(c) for c in bunch.target_names)


def load_uci(name: str) -> Arrays:
    """Features/labels of a bundled UCI CSV."""
    spec = UCI[name]
    with resources.as_file(resources.files("hwnas.data").joinpath("uci", spec.file)) as path:
        table = read_table(path, f"{name} ({spec.file})", delimiter=spec.delimiter)
    return table_arrays(table, spec.target, f"{name} ({spec.file})", drop=spec.drop)
