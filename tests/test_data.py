"""hwnas.data: bundled datasets, CSV/npz files, stratified seeded splits and DataError messages."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from hwnas.data import Dataset, list_datasets, load_dataset
from hwnas.errors import DataError, HwnasError

# name -> (rows, features, classes) as documented in hwnas/data/uci/README.md and scikit-learn
EXPECTED = {
    "breast_cancer": (569, 30, 2),
    "wine": (178, 13, 3),
    "iris": (150, 4, 3),
    "digits": (1797, 64, 10),
    "arrhythmia": (420, 278, 12),
    "balance_scale": (625, 4, 3),
    "breast_cancer_wisconsin": (683, 9, 2),
    "cardio": (2126, 21, 3),
    "vertebral_2c": (310, 6, 2),
    "vertebral_3c": (310, 6, 3),
    "mammographic_masses": (830, 5, 2),
    "pendigits": (10992, 16, 10),
    "seeds": (210, 7, 3),
    "redwine": (1599, 11, 6),
    "whitewine": (4898, 11, 7),
}


def _all_y(ds: Dataset) -> np.ndarray:
    return np.concatenate([ds.y_train, ds.y_val, ds.y_test])


def _all_X(ds: Dataset) -> np.ndarray:
    return np.concatenate([ds.X_train, ds.X_val, ds.X_test])


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _error(*args: object, **kwargs: object) -> str:
    """The DataError message load_dataset raises for these arguments."""
    with pytest.raises(DataError) as info:
        load_dataset(*args, **kwargs)  # type: ignore[arg-type]
    return str(info.value)


# --- bundled datasets -------------------------------------------------------------------------------------


def test_list_datasets_is_exactly_the_bundled_names() -> None:
    assert sorted(list_datasets()) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_bundled_dataset_loads_with_documented_shape(name: str) -> None:
    rows, features, classes = EXPECTED[name]
    ds = load_dataset(name)
    assert ds.name == name
    assert (ds.n_features, ds.n_classes) == (features, classes)
    assert len(ds.feature_names) == features and len(ds.class_names) == classes
    assert len(_all_y(ds)) == rows
    for X, y in ((ds.X_train, ds.y_train), (ds.X_val, ds.y_val), (ds.X_test, ds.y_test)):
        assert X.dtype == np.float32 and y.dtype == np.int64
        assert X.ndim == 2 and X.shape == (len(y), features)
        assert np.isfinite(X).all()
    assert set(np.unique(ds.y_train)) == set(range(classes))  # train sees every class
    assert _all_y(ds).min() == 0 and _all_y(ds).max() == classes - 1
    desc = ds.describe()
    assert json.loads(json.dumps(desc)) == desc
    assert (desc["n_train"], desc["n_val"], desc["n_test"]) == (len(ds.y_train), len(ds.y_val), len(ds.y_test))
    assert desc["n_train"] + desc["n_val"] + desc["n_test"] == rows


def test_bundled_sources_and_label_values() -> None:
    bc = load_dataset("breast_cancer")
    assert bc.source == "sklearn:load_breast_cancer"
    assert bc.class_names == ("malignant", "benign")
    cardio = load_dataset("cardio")
    assert cardio.source.startswith("uci:cardio") and "CC BY 4.0" in cardio.source
    assert load_dataset("redwine").class_names == ("3", "4", "5", "6", "7", "8")
    assert load_dataset("arrhythmia").class_names == tuple(str(v) for v in (*range(1, 11), 14, 16))
    wisconsin = load_dataset("breast_cancer_wisconsin")
    assert wisconsin.class_names == ("2", "3")
    assert wisconsin.feature_names == tuple(f"X{i}" for i in range(2, 11))  # sample ID X1 dropped
    assert _all_X(wisconsin).max() <= 10  # IDs are ~1e6, features are 1..10
    assert Counter(_all_y(wisconsin).tolist()) == {0: 444, 1: 239}


@pytest.mark.parametrize(
    ("alias", "name"),
    [("wine-red", "redwine"), ("wine_white", "whitewine"), ("column_3C", "vertebral_3c"),
     ("column-2c", "vertebral_2c"), ("balance-scale", "balance_scale"), ("Vertebral-3C", "vertebral_3c"),
     ("breast-cancer-wisconsin", "breast_cancer_wisconsin"), ("mammographic-masses", "mammographic_masses")],
)
def test_file_stem_aliases(alias: str, name: str) -> None:
    assert load_dataset(alias).name == name


def test_aliases_pick_the_right_file() -> None:
    assert load_dataset("column_2C").n_classes == 2
    assert load_dataset("column_3C").n_classes == 3


def test_uci_readme_ships_with_every_csv() -> None:
    uci = Path(__import__("hwnas.data").data.__file__).parent / "uci"
    readme = (uci / "README.md").read_text()
    assert "CC BY 4.0" in readme and "Dua" in readme and "Graff" in readme
    csvs = sorted(p.name for p in uci.glob("*.csv"))
    assert len(csvs) == 11
    for name in csvs:
        assert name in readme


def test_import_is_cheap_and_does_not_import_torch() -> None:
    code = "import sys, hwnas.data; print('torch' in sys.modules, 'sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_unknown_name_lists_bundled_names_and_file_option() -> None:
    message = _error("no_such_set")
    assert "'no_such_set'" in message
    for name in ("iris", "pendigits", "redwine", "vertebral_3c"):
        assert name in message
    assert ".csv" in message and ".npz" in message


def test_target_is_rejected_for_bundled_names() -> None:
    assert "target" in _error("iris", target="0")


def test_errors_are_hwnas_errors() -> None:
    assert issubclass(DataError, HwnasError)


# --- splits ----------------------------------------------------------------------------------------------


def test_split_sizes_follow_fractions_of_the_whole() -> None:
    ds = load_dataset("cardio", val_fraction=0.1, test_fraction=0.3)
    n = 2126
    assert abs(len(ds.y_val) - 0.1 * n) <= 1 and abs(len(ds.y_test) - 0.3 * n) <= 1
    assert len(ds.y_train) + len(ds.y_val) + len(ds.y_test) == n


def test_splits_are_stratified() -> None:
    ds = load_dataset("cardio", seed=3)  # classes 1655 / 295 / 176
    whole = np.bincount(_all_y(ds)) / len(_all_y(ds))
    for y in (ds.y_train, ds.y_val, ds.y_test):
        assert np.abs(np.bincount(y, minlength=3) / len(y) - whole).max() < 0.01


def _id_npz(tmp_path: Path, n: int = 90) -> Path:
    """An npz whose first feature is the row id, three balanced classes."""
    rng = np.random.default_rng(0)
    X = np.column_stack([np.arange(n), rng.normal(size=n)])
    path = tmp_path / "ids.npz"
    np.savez(path, X=X, y=np.arange(n) % 3)
    return path


def test_splits_are_disjoint_and_cover_all_rows(tmp_path: Path) -> None:
    ds = load_dataset(str(_id_npz(tmp_path)), seed=5)
    ids = [set(X[:, 0].astype(int).tolist()) for X in (ds.X_train, ds.X_val, ds.X_test)]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    assert ids[0] | ids[1] | ids[2] == set(range(90))
    assert [len(s) for s in ids] == [54, 18, 18]
    for X, y in ((ds.X_train, ds.y_train), (ds.X_val, ds.y_val), (ds.X_test, ds.y_test)):
        assert (X[:, 0].astype(int) % 3 == y).all()  # rows keep their labels


def test_splits_are_deterministic_per_seed_and_differ_across_seeds(tmp_path: Path) -> None:
    path = str(_id_npz(tmp_path))
    a, b, c = load_dataset(path, seed=1), load_dataset(path, seed=1), load_dataset(path, seed=2)
    for split in ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test"):
        assert np.array_equal(getattr(a, split), getattr(b, split))
    assert set(a.X_test[:, 0]) != set(c.X_test[:, 0])
    assert set(a.X_val[:, 0]) != set(c.X_val[:, 0])
    assert a.seed == 1 and c.describe()["seed"] == 2


def test_bundled_split_depends_on_seed() -> None:
    a, b = load_dataset("iris", seed=0), load_dataset("iris", seed=0)
    c = load_dataset("iris", seed=1)
    assert np.array_equal(a.X_test, b.X_test)
    assert not np.array_equal(a.X_test, c.X_test)


def test_two_sample_class_still_reaches_train(tmp_path: Path) -> None:
    # 10 + 10 + 2 rows, 7 test rows: the rounding gives 'tiny' one test row, leaving a single 'tiny' row
    # that cannot be stratified between train and val; it must go to train.
    rows = [f"{i},{i % 7},{'ab'[i % 2]}" for i in range(20)] + ["100,1,tiny", "101,2,tiny"]
    path = _write(tmp_path / "rare.csv", "\n".join(rows) + "\n")
    for seed in range(5):
        ds = load_dataset(str(path), seed=seed, test_fraction=0.3)
        assert ds.class_names == ("a", "b", "tiny")
        assert 2 in ds.y_train and 2 in ds.y_test
        assert len(_all_y(ds)) == 22


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [({"val_fraction": 0.0}, "val_fraction"), ({"test_fraction": 1.5}, "test_fraction"),
     ({"val_fraction": 0.5, "test_fraction": 0.5}, "below 1"), ({"seed": -1}, "seed")],
)
def test_bad_split_options(kwargs: dict[str, float], words: str) -> None:
    assert words in _error("iris", **kwargs)


def test_too_small_for_a_split_is_a_data_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "tiny.csv", "1,a\n2,a\n3,b\n4,b\n5,c\n6,c\n")
    message = _error(str(path))
    assert "tiny.csv" in message and "6 rows" in message and "3 classes" in message


# --- CSV files -------------------------------------------------------------------------------------------


def test_csv_with_header_string_labels_and_target_by_name(tmp_path: Path) -> None:
    lines = ["height,species,weight"] + [f"{i},{['cat', 'dog', 'ant'][i % 3]},{i * 2.5}" for i in range(30)]
    path = _write(tmp_path / "animals.csv", "\n".join(lines) + "\n")
    ds = load_dataset(str(path), target="species")
    assert ds.name == "animals.csv"
    assert ds.source == str(path.resolve())
    assert ds.feature_names == ("height", "weight")
    assert ds.class_names == ("ant", "cat", "dog")  # sorted
    X, y = _all_X(ds), _all_y(ds)
    assert len(y) == 30
    expected = np.array([{0: 1, 1: 2, 2: 0}[int(h) % 3] for h in X[:, 0]])
    assert np.array_equal(y, expected)
    assert np.allclose(X[:, 1], X[:, 0] * 2.5)


def test_csv_target_by_index_and_default_last(tmp_path: Path) -> None:
    lines = ["a,b,c"] + [f"{i % 2},{i},{i % 3}" for i in range(30)]
    path = str(_write(tmp_path / "t.csv", "\n".join(lines) + "\n"))
    assert load_dataset(path).feature_names == ("a", "b")
    assert load_dataset(path).n_classes == 3
    first = load_dataset(path, target="0")
    assert first.feature_names == ("b", "c") and first.class_names == ("0", "1")


def test_csv_without_header_numeric_labels_sort_numerically(tmp_path: Path) -> None:
    rows = [f"{i}.5,{i % 4},{[2, 10, 9][i % 3]}" for i in range(30)]
    path = _write(tmp_path / "plain.csv", "\n".join(rows) + "\n")
    ds = load_dataset(str(path))
    assert len(_all_y(ds)) == 30  # the first row is data, not a header
    assert ds.feature_names == ("x0", "x1")
    assert ds.class_names == ("2", "9", "10")
    assert 0.5 in _all_X(ds)[:, 0]


def test_csv_without_header_string_labels_keeps_first_row(tmp_path: Path) -> None:
    rows = [f"{i},{i * 3},{['setosa', 'virginica'][i % 2]}" for i in range(20)]
    path = _write(tmp_path / "iris_like.csv", "\n".join(rows) + "\n")
    ds = load_dataset(str(path))
    assert len(_all_y(ds)) == 20
    assert 0 in _all_X(ds)[:, 0]
    assert ds.class_names == ("setosa", "virginica")


def test_csv_semicolon_and_blank_lines(tmp_path: Path) -> None:
    rows = ["f1;f2;label", ""] + [f"{i};{i + 1};{i % 2}" for i in range(20)] + ["", ""]
    ds = load_dataset(str(_write(tmp_path / "semi.csv", "\n".join(rows))))
    assert ds.feature_names == ("f1", "f2") and len(_all_y(ds)) == 20


def test_csv_row_numbers_count_blank_lines(tmp_path: Path) -> None:
    text = "a,b,y\n\n" + "".join(f"{i},{i},{i % 2}\n" for i in range(6)) + "\n9,,1\n"
    assert "row 10" in _error(str(_write(tmp_path / "blank.csv", text)))


def test_csv_file_not_found(tmp_path: Path) -> None:
    message = _error(str(tmp_path / "missing.csv"))
    assert "missing.csv" in message and "not found" in message


def test_csv_empty_file(tmp_path: Path) -> None:
    message = _error(str(_write(tmp_path / "empty.csv", "\n\n")))
    assert "empty.csv" in message and "empty" in message


def test_csv_header_only(tmp_path: Path) -> None:
    assert "no data rows" in _error(str(_write(tmp_path / "h.csv", "a,b,y\n")))


def test_csv_missing_values_name_column_and_spreadsheet_rows(tmp_path: Path) -> None:
    lines = ["a,b,label"] + [f"{i},{'' if i in (2, 5) else i},{i % 2}" for i in range(20)]
    lines[9] = "8,NA,0"  # data row i=8 is line 10
    message = _error(str(_write(tmp_path / "gaps.csv", "\n".join(lines) + "\n")))
    assert "gaps.csv" in message and "'b'" in message
    assert "3 missing values" in message
    assert "rows 4, 7, 10" in message  # 1-based lines, header is row 1


def test_csv_missing_label(tmp_path: Path) -> None:
    lines = [f"{i},{i % 2}" for i in range(10)] + ["10,?"]
    message = _error(str(_write(tmp_path / "nolabel.csv", "\n".join(lines) + "\n")))
    assert "'x1'" in message and "row 11" in message


def test_csv_non_numeric_feature_names_column_and_value(tmp_path: Path) -> None:
    lines = ["size,colour,label"] + [f"{i},{i},{i % 2}" for i in range(10)]
    lines[4] = "3,blue,1"
    message = _error(str(_write(tmp_path / "text.csv", "\n".join(lines) + "\n")))
    assert "'colour'" in message and "'blue'" in message and "row 5" in message


def test_csv_unknown_target_lists_columns(tmp_path: Path) -> None:
    path = _write(tmp_path / "cols.csv", "alpha,beta,gamma\n" + "1,2,0\n" * 10)
    message = _error(str(path), target="delta")
    assert "'delta'" in message
    for column in ("alpha", "beta", "gamma"):
        assert column in message


def test_csv_single_class(tmp_path: Path) -> None:
    path = _write(tmp_path / "mono.csv", "a,label\n" + "".join(f"{i},same\n" for i in range(10)))
    message = _error(str(path))
    assert "mono.csv" in message and "'label'" in message and "1 class" in message and "'same'" in message


def test_csv_class_too_small_for_stratified_split(tmp_path: Path) -> None:
    rows = [f"{i},{i % 2}" for i in range(20)] + ["99,lonely"]
    message = _error(str(_write(tmp_path / "few.csv", "\n".join(rows) + "\n")))
    assert "few.csv" in message and "'lonely' has 1 sample" in message


def test_csv_ragged_row(tmp_path: Path) -> None:
    message = _error(str(_write(tmp_path / "ragged.csv", "1,2,0\n3,4,1\n5,1\n")))
    assert "row 3" in message and "2 fields" in message and "expected 3" in message


def test_csv_single_column(tmp_path: Path) -> None:
    assert "at least one feature" in _error(str(_write(tmp_path / "one.csv", "1\n2\n3\n")))


def test_unsupported_existing_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "data.txt", "1,2,0\n")
    message = _error(str(path))
    assert "data.txt" in message and "only .csv and .npz files are supported" in message


# --- npz files -------------------------------------------------------------------------------------------


def test_npz_happy_path(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 4)).astype(np.float64)
    y = np.array(["no", "yes"] * 30)
    path = tmp_path / "arrays.npz"
    np.savez(path, X=X, y=y)
    ds = load_dataset(str(path), seed=2)
    assert ds.name == "arrays.npz" and ds.source == str(path.resolve())
    assert ds.n_features == 4 and ds.class_names == ("no", "yes")
    assert ds.X_train.dtype == np.float32 and len(_all_y(ds)) == 60
    rows = {tuple(r) for r in X.astype(np.float32)}
    assert all(tuple(r) in rows for r in _all_X(ds))


def test_npz_missing_key(tmp_path: Path) -> None:
    path = tmp_path / "nokey.npz"
    np.savez(path, X=np.zeros((4, 2)), labels=np.zeros(4))
    message = _error(str(path))
    assert "'y'" in message and "labels" in message


def test_npz_shape_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "mismatch.npz"
    np.savez(path, X=np.zeros((5, 2)), y=np.zeros(6))
    message = _error(str(path))
    assert "5 rows" in message and "6 labels" in message


def test_npz_X_not_2d_and_y_not_1d(tmp_path: Path) -> None:
    np.savez(tmp_path / "flat.npz", X=np.zeros(5), y=np.zeros(5))
    assert "2-D" in _error(str(tmp_path / "flat.npz"))
    np.savez(tmp_path / "col.npz", X=np.zeros((5, 2)), y=np.zeros((5, 1)))
    assert "1-D" in _error(str(tmp_path / "col.npz"))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_npz_non_finite_X(tmp_path: Path, bad: float) -> None:
    X = np.ones((10, 3))
    X[7, 2] = bad
    path = tmp_path / "nonfinite.npz"
    np.savez(path, X=X, y=np.arange(10) % 2)
    message = _error(str(path))
    assert "NaN/inf" in message and "X[7, 2]" in message


def test_npz_not_an_archive(tmp_path: Path) -> None:
    message = _error(str(_write(tmp_path / "fake.npz", "not a zip")))
    assert "fake.npz" in message and "npz" in message


# --- bounded reading: what is no data file, or too much of one, fails before it is read --------------------


def _special(path: Path, kind: str) -> Path:
    """A folder, a FIFO, a link to /dev/zero, or a sparse 3 GB file at ``path``."""
    import os

    if kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        os.symlink("/dev/zero", path)
    else:
        with open(path, "wb") as f:
            f.truncate(3 << 30)
    return path


@pytest.mark.parametrize("kind, message", [("folder", "is a folder, not a data file"),
                                           ("fifo", "not a regular file"), ("device", "not a regular file"),
                                           ("huge", "is more than the 64 MB hwnas reads")])
@pytest.mark.parametrize("suffix", [".csv", ".npz", ".txt", ".jsonl"])
def test_only_regular_files_of_bounded_size_are_read(tmp_path: Path, kind: str, message: str, suffix: str) -> None:
    from hwnas.data import load_for_family

    path = _special(tmp_path / f"data{suffix}", kind)
    if suffix == ".npz" and kind == "huge":
        message = "not an .npz archive"  # arrays are bounded by their headers; a sparse file has none
    family = "mlp" if suffix in (".csv", ".npz") else "transformer"
    with pytest.raises(DataError) as info:
        load_for_family(family, str(path), target=None, seed=0, fixed={})
    assert str(info.value).startswith(f"{path}: ") and message in str(info.value)


def _npz_bytes(members: dict[str, bytes]) -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def _npy(array: np.ndarray | None = None, *, header: dict | None = None) -> bytes:
    """An .npy member: ``array`` saved, or only ``header`` (a declared shape with no data behind it)."""
    import io

    buffer = io.BytesIO()
    if header is not None:
        np.lib.format.write_array_header_1_0(buffer, header)
        return buffer.getvalue() + b"\0" * 16
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


@pytest.mark.parametrize("members, message", [
    ({"X.npy": _npy(header={"descr": "<f8", "fortran_order": False, "shape": (10**9, 10**3)}),
      "y.npy": _npy(np.zeros(3))}, "array 'X' of shape (1000000000, 1000) and dtype float64 is 8000000000000 bytes"),
    ({"X.npy": _npy(np.array([{"code": "run"}, None], dtype=object)), "y.npy": _npy(np.zeros(2))},
     "array 'X' holds Python objects, which cannot be read without pickle"),
    ({"X.npy": _npy(np.zeros((4, 2))), "y.npy": _npy(np.zeros(4, dtype=complex))},
     "'y' must hold integer, float, bool or string labels, got dtype complex128"),
    ({"X.npy": _npy(np.zeros((4, 2)))[:60], "y.npy": _npy(np.zeros(4))}, "array 'X' is not a readable .npy array"),
    ({"X": b"raw", "y.npy": _npy(np.zeros(4))}, "missing array 'X'; found ['y']"),
])
def test_npz_arrays_are_checked_by_their_headers_before_they_are_read(tmp_path: Path, members, message) -> None:
    path = tmp_path / "bad.npz"
    path.write_bytes(_npz_bytes(members))
    assert message in _error(str(path))


@pytest.mark.parametrize("text, message", [
    ("a,a,label\n" + "1,2,x\n3,4,y\n" * 5, "the header names column 'a' 2 times (columns 0, 1)"),
    ("a,b,label\n" + "1,2,x\n3,1e300,y\n" * 5, "feature 'b' holds 1e+300, beyond the float32 range"),
    ("a,b,label\n" + "1,2,x\n3,4,y\0\n" * 5, "not text: it holds NUL characters"),
])
def test_csv_header_names_values_and_characters_are_checked(tmp_path: Path, text: str, message: str) -> None:
    assert message in _error(str(_write(tmp_path / "t.csv", text)))


@pytest.mark.parametrize("name, content, message", [
    ("t.csv", " , ,\n,\n", "no header row (and no data rows)"),
    ("t.csv", "text,text,label\n" + "a,b,x\nc,d,y\n" * 5, "the header names column 'text' 2 times"),
    ("t.txt", "".join(chr(0x4E00 + i) for i in range(5000)) * 2, "5000 distinct characters, more than the 4096"),
])
def test_text_data_is_checked_before_a_model_is_built(tmp_path: Path, name: str, content: str, message: str) -> None:
    from hwnas.data import load_for_family

    path = _write(tmp_path / name, content)
    with pytest.raises(DataError) as info:
        load_for_family("transformer", str(path), target=None, seed=0, fixed={})
    assert str(info.value).startswith(f"{path}: ") and message in str(info.value)
