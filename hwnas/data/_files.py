"""Reading user data files: CSV tables (header auto-detected) and .npz archives with X and y, bounded.

A data file is read only if it is a regular file (a FIFO would wait forever, a device never end). Text
formats (CSV here; TXT and JSONL in :mod:`hwnas.data.text`) are read whole up to :data:`MAX_TEXT_BYTES`:
parsed into Python objects they take ten times that. An .npz archive is read without pickle, each array's
header first, so that a declared shape larger than :data:`MAX_ARRAY_BYTES` (or an object array) is refused
before anything is allocated.
"""

from __future__ import annotations

import csv
import io
import math
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwnas.errors import DataError
from hwnas.files import regular_file_size

MISSING_MARKERS = frozenset({"", "?", "na", "n/a", "nan", "null", "none"})
_MAX_LISTED = 5
#: The largest text data file read (CSV, TXT, JSONL).
MAX_TEXT_BYTES = 64 << 20
#: The most bytes the arrays of one .npz file may declare.
MAX_ARRAY_BYTES = 1 << 30


@dataclass(frozen=True)
class Table:
    """A parsed CSV: column names, cell strings per row, and each row's 1-based line in the file."""

    columns: tuple[str, ...]
    rows: list[list[str]]
    lines: list[int]
    has_header: bool


@dataclass(frozen=True)
class Arrays:
    """Features and labels read from a file, before splitting."""

    X: np.ndarray
    labels: list[str] | np.ndarray
    feature_names: tuple[str, ...]
    label: str  # describes the label column in messages


def _is_missing(cell: str) -> bool:
    """True for an empty cell or a common missing-value marker."""
    return cell.lower() in MISSING_MARKERS


def _is_number(cell: str) -> bool:
    """True when the cell is a finite number."""
    try:
        return math.isfinite(float(cell))
    except ValueError:
        return False


def _kind(cell: str) -> str:
    """'missing', 'number' or 'text'."""
    return "missing" if _is_missing(cell) else "number" if _is_number(cell) else "text"


def _sniff_delimiter(line: str) -> str:
    """The most frequent of comma, semicolon and tab in the first line (comma if none)."""
    return max((",", ";", "\t"), key=line.count)


def check_data_file(path: Path, display: str) -> int:
    """The size of the regular file ``path``; DataError naming ``display`` when it is missing or not one."""
    return regular_file_size(path, DataError, what="a data file", missing="file not found", shown_as=display)


def read_data_bytes(path: Path, display: str) -> bytes:
    """The bytes of a text data file of at most :data:`MAX_TEXT_BYTES`, or DataError."""
    size = check_data_file(path, display)
    if size > MAX_TEXT_BYTES:
        raise DataError(f"{display}: {size} bytes is more than the {MAX_TEXT_BYTES >> 20} MB hwnas reads from a "
                        "text data file; give tabular data as an .npz file (np.savez(path, X=..., y=...)) or "
                        "use a sample")
    try:
        with open(path, "rb") as f:
            return f.read(MAX_TEXT_BYTES + 1)[:MAX_TEXT_BYTES]  # bounded even if the file grows meanwhile
    except OSError as exc:
        raise DataError(f"{display}: cannot read file ({exc.strerror or exc})") from None


def decode_text(data: bytes, display: str, hint: str = "") -> str:
    """``data`` as UTF-8 (a BOM tolerated) without NUL characters, or DataError ending with ``hint``."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{display}: not UTF-8 text ({exc.reason} at byte {exc.start}){hint}") from None
    if "\0" in text:
        raise DataError(f"{display}: not text: it holds NUL characters (first at character {text.index(chr(0))}){hint}")
    return text


def unique_names(names: list[str] | tuple[str, ...], display: str) -> None:
    """DataError naming the first column name a header holds twice (which column would be meant is unclear)."""
    twice = [name for name, n in Counter(names).items() if n > 1]
    if twice:
        where = [j for j, name in enumerate(names) if name == twice[0]]
        raise DataError(f"{display}: the header names column {twice[0]!r} {len(where)} times (columns "
                        f"{', '.join(map(str, where))}); column names must be unique")


def _read_text(path: Path, display: str) -> str:
    """The file's text (UTF-8, BOM tolerated), or DataError."""
    return decode_text(read_data_bytes(path, display), display)


def _looks_like_header(first: list[str], second: list[str] | None) -> bool:
    """A first row is a header if it has text where the next row has no text (or, alone, any text)."""
    if second is None:
        return any(_kind(c) == "text" for c in first)
    return any(_kind(a) == "text" and _kind(b) != "text" for a, b in zip(first, second))


def read_table(path: Path, display: str, delimiter: str | None = None) -> Table:
    """Parse a CSV file into a Table; blank lines are skipped, every row must have the same width."""
    text = _read_text(path, display)
    if not text.strip():
        raise DataError(f"{display}: file is empty")
    first_line = next(line for line in text.splitlines() if line.strip())
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter or _sniff_delimiter(first_line))
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        for row in reader:
            cells = [c.strip() for c in row]
            if any(cells):
                rows.append(cells)
                lines.append(reader.line_num)
    except csv.Error as exc:
        raise DataError(f"{display}: malformed CSV at row {reader.line_num}: {exc}") from None
    width = len(rows[0])
    for cells, line in zip(rows, lines):
        if len(cells) != width:
            raise DataError(
                f"{display}: row {line} has {len(cells)} fields, expected {width} (as in row {lines[0]})"
            )
    has_header = _looks_like_header(rows[0], rows[1] if len(rows) > 1 else None)
    if has_header:
        columns = tuple(c or f"x{j}" for j, c in enumerate(rows[0]))
        unique_names(columns, display)
        rows, lines = rows[1:], lines[1:]
    else:
        columns = tuple(f"x{j}" for j in range(width))
    if not rows:
        raise DataError(f"{display}: has a header row but no data rows")
    return Table(columns, rows, lines, has_header)


def _column_label(table: Table, j: int) -> str:
    """How messages name column j."""
    return f"column {table.columns[j]!r} (index {j})"


def _list_columns(columns: tuple[str, ...]) -> str:
    """Comma-separated column names, abbreviated for wide tables."""
    shown = ", ".join(repr(c) for c in columns[:20])
    return shown + (f", ... ({len(columns)} columns)" if len(columns) > 20 else "")


def resolve_target(table: Table, target: str | None, display: str) -> int:
    """Index of the label column: by name, else a 0-based (or negative) index; default the last."""
    if target is None:
        return len(table.columns) - 1
    wanted = str(target).strip()
    if wanted in table.columns:
        return table.columns.index(wanted)
    try:
        index = int(wanted)
    except ValueError:
        index = None
    if index is not None and -len(table.columns) <= index < len(table.columns):
        return index % len(table.columns)
    raise DataError(
        f"{display}: unknown target column {wanted!r}; columns are {_list_columns(table.columns)} "
        f"(or give a 0-based index 0..{len(table.columns) - 1})"
    )


def _check_missing(table: Table, display: str) -> None:
    """DataError naming the first column with missing cells and its first rows."""
    bad_columns = []
    for j in range(len(table.columns)):
        rows = [line for cells, line in zip(table.rows, table.lines) if _is_missing(cells[j])]
        if rows:
            bad_columns.append((j, rows))
    if not bad_columns:
        return
    j, rows = bad_columns[0]
    shown = ", ".join(str(r) for r in rows[:_MAX_LISTED]) + (", ..." if len(rows) > _MAX_LISTED else "")
    others = ""
    if len(bad_columns) > 1:
        others = "; also in " + ", ".join(repr(table.columns[k]) for k, _ in bad_columns[1:_MAX_LISTED + 1])
        others += ", ..." if len(bad_columns) > _MAX_LISTED + 1 else ""
    raise DataError(
        f"{display}: {_column_label(table, j)} has {len(rows)} missing value{'s' if len(rows) > 1 else ''} "
        f"(row{'s' if len(rows) > 1 else ''} {shown}){others}; fill or drop them "
        f"(empty, '?', 'NA', 'NaN', 'null' count as missing)"
    )


def _numeric_column(table: Table, j: int, display: str) -> np.ndarray:
    """Column j as float64, or DataError showing the first non-numeric cell and its row."""
    cells = [row[j] for row in table.rows]
    try:
        values = np.asarray(cells).astype(np.float64)
        if np.isfinite(values).all():
            return values
    except ValueError:
        pass
    bad = [i for i, cell in enumerate(cells) if not _is_number(cell)]
    more = f" and {len(bad) - 1} more row{'s' if len(bad) > 2 else ''}" if len(bad) > 1 else ""
    raise DataError(
        f"{display}: feature {_column_label(table, j)} is not numeric: row {table.lines[bad[0]]} has "
        f"{cells[bad[0]]!r}{more}; features must be finite numbers (encode or drop this column)"
    )


def table_arrays(table: Table, target: str | None, display: str, drop: tuple[str, ...] = ()) -> Arrays:
    """Split a Table into numeric features and label strings (missing/non-numeric cells are DataErrors)."""
    if len(table.columns) - len(drop) < 2:
        raise DataError(
            f"{display}: has {len(table.columns)} column(s); need at least one feature column and a label column"
        )
    t = resolve_target(table, target, display)
    _check_missing(table, display)
    features = [j for j, c in enumerate(table.columns) if j != t and c not in drop]
    X = np.column_stack([_numeric_column(table, j, display) for j in features])
    return Arrays(
        X=X,
        labels=[row[t] for row in table.rows],
        feature_names=tuple(table.columns[j] for j in features),
        label=f"label {_column_label(table, t)}",
    )


def read_csv(path: Path, display: str, target: str | None) -> Arrays:
    """Features and labels of a user CSV file."""
    return table_arrays(read_table(path, display), target, display)


_NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def _npz_array(archive: zipfile.ZipFile, key: str, display: str) -> np.ndarray:
    """Array ``key`` of an open .npz archive; its header is checked first (no object arrays, which need pickle;
    no more than :data:`MAX_ARRAY_BYTES`), so that nothing is unpickled and nothing huge allocated."""
    member = f"{key}.npy"
    try:
        with archive.open(member) as f:
            version = np.lib.format.read_magic(f)
            if version not in _NPY_HEADERS:
                raise DataError(f"{display}: array {key!r} is in .npy format {version[0]}.{version[1]}, which hwnas "
                                "does not read; save it with np.savez(path, X=..., y=...)")
            shape, _, dtype = _NPY_HEADERS[version](f)
        if dtype.hasobject:
            raise DataError(f"{display}: array {key!r} holds Python objects, which cannot be read without pickle "
                            "(hwnas never unpickles a file); save numbers or strings")
        size = math.prod(shape) * dtype.itemsize
        if size > MAX_ARRAY_BYTES:
            raise DataError(f"{display}: array {key!r} of shape {shape} and dtype {dtype} is {size} bytes, more "
                            f"than the {MAX_ARRAY_BYTES >> 30} GB hwnas reads; use a sample")
        with archive.open(member) as f:
            return np.lib.format.read_array(f, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(f"{display}: array {key!r} is not a readable .npy array ({exc})") from None


def read_npz(path: Path, display: str) -> Arrays:
    """Features and labels of an .npz archive with a 2-D numeric `X` and a 1-D `y` of the same length."""
    if check_data_file(path, display) == 0:
        raise DataError(f"{display}: file is empty")
    if not zipfile.is_zipfile(path):
        raise DataError(f"{display}: not an .npz archive (not a zip file); save one with np.savez(path, X=..., y=...)")
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{display}: not a readable .npz archive ({exc})") from None
    with archive:
        found = sorted(name[:-4] for name in archive.namelist() if name.endswith(".npy"))
        absent = [key for key in ("X", "y") if key not in found]
        if absent:
            raise DataError(
                f"{display}: missing array{'s' if len(absent) > 1 else ''} {', '.join(map(repr, absent))}; "
                f"found {found or sorted(archive.namelist())} (save with np.savez(path, X=features, y=labels))"
            )
        X, y = _npz_array(archive, "X", display), _npz_array(archive, "y", display)
    return Arrays(X=_check_npz_X(X, display), labels=_check_npz_y(y, len(X), display),
                  feature_names=tuple(f"x{j}" for j in range(X.shape[1])), label="array 'y'")


def _check_npz_X(X: np.ndarray, display: str) -> np.ndarray:
    """A non-empty, numeric, finite 2-D X, or DataError."""
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise DataError(f"{display}: 'X' must be a non-empty 2-D array [rows, features], got shape {X.shape}")
    if not (np.issubdtype(X.dtype, np.number) or X.dtype == bool) or np.iscomplexobj(X):
        raise DataError(f"{display}: 'X' must be numeric, got dtype {X.dtype}")
    finite = np.isfinite(X)
    if not finite.all():
        row, col = np.argwhere(~finite)[0]
        raise DataError(
            f"{display}: 'X' has {int((~finite).sum())} NaN/inf value(s), first at X[{row}, {col}] = {X[row, col]}"
        )
    return X


def _check_npz_y(y: np.ndarray, n_rows: int, display: str) -> np.ndarray:
    """A 1-D y with one label per row of X (no NaN), or DataError."""
    if y.ndim != 1:
        raise DataError(f"{display}: 'y' must be a 1-D array of labels, got shape {y.shape} (use y.ravel())")
    if len(y) != n_rows:
        raise DataError(f"{display}: 'X' has {n_rows} rows but 'y' has {len(y)} labels; they must match")
    if y.dtype.kind not in "biufUS":
        raise DataError(f"{display}: 'y' must hold integer, float, bool or string labels, got dtype {y.dtype}")
    if np.issubdtype(y.dtype, np.floating) and not np.isfinite(y).all():
        raise DataError(f"{display}: 'y' has NaN/inf labels, first at y[{np.flatnonzero(~np.isfinite(y))[0]}]")
    return y
