"""Datasets a search trains on: bundled names (scikit-learn toy sets, UCI printed-MLP sets) or .csv/.npz files.

`load_dataset` returns a `Dataset` with seeded, stratified train/val/test splits of raw float32 features
(standardisation is the model's job). Every user mistake raises `hwnas.errors.DataError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from hwnas.data._bundled import SKLEARN, bundled_names, canonical_name, load_sklearn, load_uci, source_of
from hwnas.data._dataset import Dataset, check_options, encode_labels, make_dataset
from hwnas.data._files import Arrays, read_csv, read_npz
from hwnas.errors import DataError

__all__ = ["Dataset", "TEXT_DATASETS", "load_dataset", "load_for_family", "list_datasets"]

#: Bundled text for the Transformer family (language modelling).
TEXT_DATASETS = ("pydoc_topics",)

_FILE_SUFFIXES = (".csv", ".npz")


def list_datasets() -> list[str]:
    """Every bundled dataset name (aliases such as 'wine-red' or 'column_3C' are also accepted)."""
    return bundled_names()


def load_dataset(
    name_or_path: str,
    *,
    target: str | None = None,
    seed: int = 0,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
) -> Dataset:
    """Load a bundled dataset by name, or a .csv/.npz file by path, and split it (stratified, seeded).

    `target` picks the label column of a CSV (name or 0-based index; default the last column).
    val/test fractions are of all rows; the rest is train.
    """
    check_options(seed, val_fraction, test_fraction)
    spec = str(name_or_path)
    if Path(spec).suffix.lower() in _FILE_SUFFIXES:
        return _load_file(Path(spec), spec, target, seed, val_fraction, test_fraction)
    name = canonical_name(spec)
    if name is None:
        raise _unknown(spec)
    if target is not None:
        raise DataError(f"{name}: 'target' only applies to CSV files; bundled datasets have a fixed label")
    if name in SKLEARN:
        arrays, class_names = load_sklearn(name)
        y = arrays.labels
    else:
        arrays = load_uci(name)
        y, class_names = encode_labels(arrays.labels)
    return make_dataset(name, source_of(name), arrays.X, y, arrays.feature_names, class_names,
                        label=arrays.label, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction)


def _load_file(path: Path, display: str, target: str | None, seed: int,
               val_fraction: float, test_fraction: float) -> Dataset:
    """Load a .csv or .npz file and split it."""
    path = path.expanduser()
    if path.suffix.lower() == ".csv":
        arrays: Arrays = read_csv(path, display, target)
    else:
        if target is not None:
            raise DataError(f"{display}: 'target' only applies to CSV files; an .npz file's labels are array 'y'")
        arrays = read_npz(path, display)
    y, class_names = encode_labels(arrays.labels)
    return make_dataset(path.name, str(path.resolve()), arrays.X, y, arrays.feature_names, class_names,
                        label=arrays.label, display=display, seed=seed,
                        val_fraction=val_fraction, test_fraction=test_fraction)


def _unknown(spec: str) -> DataError:
    """The error for a name that is neither bundled nor a .csv/.npz path."""
    hint = ""
    if Path(spec).expanduser().is_file():
        hint = " (an existing file, but only .csv and .npz files are supported)"
    return DataError(
        f"unknown dataset {spec!r}{hint}; bundled datasets are: {', '.join(bundled_names())}; "
        "or give a path to a .csv file (labels in the last column unless target names one) "
        "or to an .npz file with arrays X and y"
    )


def load_for_family(model: str, dataset: Any, *, target: str | None, seed: int, fixed: Mapping[str, Any]) -> Any:
    """The data a model family trains on, from a name or path (an already-loaded dataset is returned as is).

    ``mlp`` → tabular classification (:func:`load_dataset`); ``transformer`` → language modelling on
    ``pydoc_topics`` or a ``.txt`` file, or sequence classification on a ``.csv``/``.tsv``/``.jsonl`` file of
    text and label. ``fixed`` is the space's fixed values (``seq_len``, ``level`` configure text)."""
    from hwnas.data.text import SequenceDataset, TextDataset, load_sequence_classification, load_text

    if isinstance(dataset, (Dataset, TextDataset, SequenceDataset)):
        return dataset
    if model != "transformer":
        return load_dataset(dataset, target=target, seed=seed)
    seq_len = int(fixed.get("seq_len", 64))
    if str(dataset).endswith((".csv", ".tsv", ".jsonl")):
        return load_sequence_classification(dataset, seq_len=seq_len, target=target or "label", seed=seed)
    if str(dataset) not in TEXT_DATASETS and not str(dataset).endswith(".txt"):
        raise DataError(f"dataset {dataset!r}: the transformer family trains on text: {list(TEXT_DATASETS)}, a .txt "
                        "file (language modelling) or a .csv/.tsv/.jsonl file with text and label (classification)")
    return load_text(dataset, level=str(fixed.get("level", "char")), seq_len=seq_len, seed=seed)
