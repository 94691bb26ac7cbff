"""The `Dataset` record and the seeded, stratified train/val/test split that builds it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hwnas.errors import DataError
from hwnas.validation import check_float, check_int

MIN_PER_CLASS = 2  # fewest samples of a class that a stratified split can place in train and a held-out set


@dataclass(frozen=True, eq=False)
class Dataset:
    """A classification dataset split into train/val/test (X raw float32 [n, f], y int64 class ids)."""

    name: str
    source: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...]
    seed: int

    @property
    def n_features(self) -> int:
        """Number of input features."""
        return len(self.feature_names)

    @property
    def n_classes(self) -> int:
        """Number of classes (class ids are 0..n_classes-1)."""
        return len(self.class_names)

    def describe(self) -> dict[str, Any]:
        """JSON-able summary: name, source, split sizes, feature/class counts and seed."""
        return {
            "name": self.name,
            "source": self.source,
            "n_train": int(len(self.y_train)),
            "n_val": int(len(self.y_val)),
            "n_test": int(len(self.y_test)),
            "n_features": self.n_features,
            "n_classes": self.n_classes,
            "seed": self.seed,
        }


def encode_labels(labels: Sequence[str] | np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    """Map labels to class ids 0..C-1 in sorted order; return the ids and the original values as strings.

    Strings that are all numbers sort numerically ("2" < "10"); arrays sort by value.
    """
    if isinstance(labels, np.ndarray):
        values, ids = np.unique(labels, return_inverse=True)
        return ids.astype(np.int64).ravel(), tuple(str(v) for v in values.tolist())
    distinct = set(labels)
    try:
        ordered = sorted(distinct, key=float)
    except ValueError:
        ordered = sorted(distinct)
    index = {label: i for i, label in enumerate(ordered)}
    return np.fromiter((index[v] for v in labels), dtype=np.int64, count=len(labels)), tuple(ordered)


def check_options(seed: int, val_fraction: float, test_fraction: float) -> None:
    """Reject a seed or split fractions that cannot produce three non-empty splits."""
    check_int(seed, "seed", low=0, high=2**32 - 1, error=DataError)
    for option, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        check_float(value, option, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False, error=DataError)
    if val_fraction + test_fraction >= 1.0:
        raise DataError(
            f"val_fraction + test_fraction must be below 1 to leave training data, "
            f"got {val_fraction!r} + {test_fraction!r}"
        )


def check_classes(name: str, label: str, y: np.ndarray, class_names: tuple[str, ...]) -> None:
    """Require at least 2 classes and MIN_PER_CLASS samples of each."""
    if len(class_names) < 2:
        only = f" ({class_names[0]!r})" if class_names else ""
        raise DataError(f"{name}: {label} has only {len(class_names)} class{only}; classification needs at least 2")
    counts = np.bincount(y, minlength=len(class_names))
    rare = [f"{class_names[c]!r} has {counts[c]} sample{'s' if counts[c] != 1 else ''}"
            for c in np.flatnonzero(counts < MIN_PER_CLASS)]
    if rare:
        raise DataError(
            f"{name}: too few samples for a stratified train/val/test split in {label}: class "
            + ", class ".join(rare[:10]) + (f" (and {len(rare) - 10} more)" if len(rare) > 10 else "")
            + f"; each class needs at least {MIN_PER_CLASS} (add samples or drop the class)"
        )


def _count(fraction: float, n: int) -> int:
    """Rows that `fraction` of `n` rounds to (half up), at least 1."""
    return max(1, int(fraction * n + 0.5))


def split_indices(
    y: np.ndarray, seed: int, val_fraction: float, test_fraction: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stratified, seeded train/val/test row indices; val/test sizes are fractions of all rows.

    A class left with a single row after the test split goes to train (it cannot be stratified).
    Raises ValueError (from scikit-learn) when the sizes cannot hold every class.
    """
    from sklearn.model_selection import train_test_split

    n = len(y)
    rest, test = train_test_split(np.arange(n), test_size=_count(test_fraction, n), stratify=y, random_state=seed)
    lonely = np.bincount(y[rest])[y[rest]] < 2
    common = rest[~lonely]
    train, val = train_test_split(
        common, test_size=_count(val_fraction, n), stratify=y[common], random_state=seed
    )
    return np.concatenate([train, rest[lonely]]), val, test


def _as_float32(X: np.ndarray, feature_names: Sequence[str], where: str) -> np.ndarray:
    """``X`` as float32, the precision models compute in; DataError for a value beyond its range (it would be
    inf, and training NaN)."""
    X = np.asarray(X)
    with np.errstate(over="ignore"):
        out = X.astype(np.float32)
    beyond = ~np.isfinite(out)
    if beyond.any():
        row, col = np.argwhere(beyond)[0]
        raise DataError(f"{where}: feature {str(feature_names[col])!r} holds {float(X[row, col]):g}, "
                        f"beyond the float32 range models compute in (|x| <= {np.finfo(np.float32).max:.3g}); "
                        "rescale it")
    return out


def make_dataset(
    name: str,
    source: str,
    X: np.ndarray,
    y: np.ndarray,
    feature_names: Sequence[str],
    class_names: Sequence[str],
    *,
    label: str,
    display: str | None = None,
    seed: int,
    val_fraction: float,
    test_fraction: float,
) -> Dataset:
    """Check the classes, split X/y (stratified, seeded) and wrap them in a Dataset.

    `label` describes the label column for messages, e.g. "label column 'Y'"; messages start with
    `display` (the path as the user gave it), else `name`.
    """
    where = display or name
    class_names = tuple(str(c) for c in class_names)
    y = np.asarray(y, dtype=np.int64)
    check_classes(where, label, y, class_names)
    try:
        train, val, test = split_indices(y, seed, val_fraction, test_fraction)
    except ValueError as exc:
        raise DataError(
            f"{where}: cannot split {len(y)} rows with {len(class_names)} classes into stratified "
            f"train/val/test sets (val_fraction={val_fraction}, test_fraction={test_fraction}): {exc}"
        ) from None
    missing = sorted(set(range(len(class_names))) - set(y[train].tolist()))
    if missing:
        counts = np.bincount(y, minlength=len(class_names))
        raise DataError(
            f"{where}: class {class_names[missing[0]]!r} ({counts[missing[0]]} samples) got no training rows "
            f"with val_fraction={val_fraction}, test_fraction={test_fraction}; use smaller fractions or more data"
        )
    X = _as_float32(X, feature_names, where)
    return Dataset(
        name=name,
        source=source,
        X_train=X[train], y_train=y[train],
        X_val=X[val], y_val=y[val],
        X_test=X[test], y_test=y[test],
        feature_names=tuple(str(f) for f in feature_names),
        class_names=class_names,
        seed=int(seed),
    )
