"""Text data for the Transformer family: character/byte language modelling and sequence classification.

* :func:`load_text` → :class:`TextDataset`: a token stream (characters or UTF-8 bytes) split contiguously into
  train (first part), val, test, so no next-token window crosses a split boundary. ``"pydoc_topics"`` is the
  ~0.5 MB of English help text that ships with Python (``pydoc_data.topics``); a path reads a text file.
* :func:`load_sequence_classification` → :class:`SequenceDataset`: a user CSV/TSV (text and label columns) or
  JSONL file (``text`` and ``label`` keys) as padded character ids with stratified, seeded splits.

Every user mistake raises :class:`hwnas.errors.DataError`.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.data._dataset import check_classes, check_options, encode_labels, split_indices
from hwnas.data._files import decode_text, read_data_bytes, unique_names
from hwnas.errors import DataError
from hwnas.validation import check_int

BUILTIN_TEXTS = ("pydoc_topics",)
LEVELS = ("char", "byte")
#: The most distinct characters of a character-level language model: its output layer scores every one for
#: every token (a text of random code points would make a model too large to train).
MAX_CHAR_VOCAB = 4096
#: Evaluation windows used when a caller gives no cap (enough for a stable loss, cheap on a tiny model).
DEFAULT_EVAL_WINDOWS = 256
PAD, UNK = "<pad>", "<unk>"  # ids 0 and 1 of a SequenceDataset vocabulary


# --- language modelling -----------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class TextDataset:
    """A token stream split into contiguous train/val/test parts (1-D int64 token ids).

    ``vocab[i]`` is the character (``level="char"``) or byte value (``level="byte"``) of token id ``i``.
    Windows are ``seq_len`` tokens ``x`` and the same window shifted by one, ``y`` (next-token targets).
    """

    name: str
    source: str
    level: str
    vocab: tuple[str, ...] | tuple[int, ...]
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    seq_len: int
    seed: int = 0

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def split(self, split: str) -> np.ndarray:
        """The token ids of ``split`` ("train", "val" or "test")."""
        if split not in ("train", "val", "test"):
            raise ValueError(f"unknown split {split!r}; known: train, val, test")
        return getattr(self, split)

    def random_windows(self, rng: np.random.Generator, batch_size: int,
                       split: str = "train") -> tuple[np.ndarray, np.ndarray]:
        """``batch_size`` windows at random offsets of ``split``: ``x``, ``y`` int64 [batch, seq_len]."""
        ids = self.split(split)
        starts = rng.integers(0, len(ids) - self.seq_len, size=batch_size)
        return _windows(ids, starts, self.seq_len)

    def eval_windows(self, split: str = "val",
                     max_eval_windows: int | None = DEFAULT_EVAL_WINDOWS) -> tuple[np.ndarray, np.ndarray]:
        """Deterministic non-overlapping windows of ``split`` (at most ``max_eval_windows``, evenly spread over
        the split; None = all): ``x``, ``y`` int64 [n, seq_len]."""
        ids = self.split(split)
        n = (len(ids) - 1) // self.seq_len
        picks = np.arange(n)
        if max_eval_windows is not None and n > max_eval_windows:
            picks = np.linspace(0, n - 1, max(1, int(max_eval_windows))).round().astype(np.int64)
        return _windows(ids, picks * self.seq_len, self.seq_len)

    def encode(self, text: str | bytes) -> np.ndarray:
        """Token ids of ``text`` (DataError for a character outside the vocabulary)."""
        if self.level == "byte":
            data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
            return np.frombuffer(data, dtype=np.uint8).astype(np.int64)
        index = {c: i for i, c in enumerate(self.vocab)}
        missing = sorted({c for c in str(text) if c not in index})
        if missing:
            raise DataError(f"{self.name}: characters outside the vocabulary: {missing[:10]!r}")
        return np.fromiter((index[c] for c in str(text)), dtype=np.int64, count=len(text))

    def decode(self, ids: np.ndarray | list[int]) -> str:
        """The text of token ids (bytes decoded as UTF-8 with replacement characters)."""
        ids = [int(i) for i in ids]
        if self.level == "byte":
            return bytes(ids).decode("utf-8", errors="replace")
        return "".join(str(self.vocab[i]) for i in ids)

    def describe(self) -> dict[str, Any]:
        """JSON-able summary: name, source, level, vocab size, sequence length, split sizes (tokens), seed."""
        return {
            "name": self.name,
            "source": self.source,
            "task": "lm",
            "level": self.level,
            "vocab_size": self.vocab_size,
            "seq_len": self.seq_len,
            "n_train_tokens": int(len(self.train)),
            "n_val_tokens": int(len(self.val)),
            "n_test_tokens": int(len(self.test)),
            "seed": self.seed,
        }


def _windows(ids: np.ndarray, starts: np.ndarray, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """``x = ids[s : s+L]`` and ``y = ids[s+1 : s+L+1]`` for every start ``s``."""
    index = np.asarray(starts, dtype=np.int64)[:, None] + np.arange(seq_len + 1)
    win = ids[index]
    return np.ascontiguousarray(win[:, :-1]), np.ascontiguousarray(win[:, 1:])


def pydoc_topics_text() -> str:
    """The help topics of ``pydoc_data.topics`` joined in sorted key order (~0.5 MB of English)."""
    from pydoc_data.topics import topics

    return "".join(topics[k] for k in sorted(topics))


def _check_seq_len(seq_len: int) -> int:
    return check_int(seq_len, "seq_len", low=1, high=65536, error=DataError)


def _read_source(name_or_path: str | Path, level: str) -> tuple[str, str, str | bytes]:
    """(name, source, text or bytes) of a built-in text or a file."""
    spec = str(name_or_path)
    if spec == "pydoc_topics":
        text = pydoc_topics_text()
        return spec, "pydoc_data.topics (Python standard library)", text.encode("utf-8") if level == "byte" else text
    path = Path(spec).expanduser()
    if not os.path.lexists(path) and not (path.suffix or "/" in spec or "\\" in spec):
        raise DataError(
            f"unknown text dataset {spec!r}; built-in: {', '.join(BUILTIN_TEXTS)}, or a path to a .txt file"
        )
    data = read_data_bytes(path, spec)
    if level == "byte":
        return path.name, str(path.resolve()), data
    return path.name, str(path.resolve()), decode_text(data, spec, "; try level='byte'")


def load_text(
    name_or_path: str | Path = "pydoc_topics",
    *,
    level: str = "char",
    seq_len: int = 64,
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
) -> TextDataset:
    """Load a text for next-token prediction and split it contiguously: train first, then val, then test.

    ``level="char"``: vocabulary = sorted set of the characters of the whole text; ``"byte"``: UTF-8 bytes,
    vocabulary 0..255. Each split must hold at least ``seq_len + 1`` tokens. ``seed`` does not change the
    (contiguous) splits; it is recorded as the dataset's seed.
    """
    if level not in LEVELS:
        raise DataError(f"unknown text level {level!r}; known: {', '.join(LEVELS)}")
    seq_len = _check_seq_len(seq_len)
    check_options(seed, val_fraction, test_fraction)
    name, source, content = _read_source(name_or_path, level)
    if not content.strip():
        raise DataError(f"{name_or_path}: text is empty")
    if isinstance(content, bytes):
        vocab: tuple[Any, ...] = tuple(range(256))
        ids = np.frombuffer(content, dtype=np.uint8).astype(np.int64)
    else:
        vocab = tuple(sorted(set(content)))
        if len(vocab) > MAX_CHAR_VOCAB:
            raise DataError(f"{name_or_path}: {len(vocab)} distinct characters, more than the {MAX_CHAR_VOCAB} a "
                            "character-level model predicts among; train on bytes (level: byte in the space's "
                            "fixed values)")
        lookup = {c: i for i, c in enumerate(vocab)}
        ids = np.fromiter((lookup[c] for c in content), dtype=np.int64, count=len(content))
    n = len(ids)
    n_val, n_test = int(round(val_fraction * n)), int(round(test_fraction * n))
    n_train = n - n_val - n_test
    shortest = min(n_train, n_val, n_test)
    if shortest < seq_len + 1:
        raise DataError(
            f"{name_or_path}: too short for seq_len={seq_len}: {n} {level} tokens give splits of "
            f"{n_train}/{n_val}/{n_test} (train/val/test); each needs at least seq_len + 1 = {seq_len + 1}"
        )
    return TextDataset(
        name=name, source=source, level=level, vocab=vocab,
        train=ids[:n_train].copy(), val=ids[n_train : n_train + n_val].copy(), test=ids[n_train + n_val :].copy(),
        seq_len=seq_len, seed=int(seed),
    )


# --- sequence classification ------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SequenceDataset:
    """Texts as character ids [n, seq_len] (right-padded with id 0 = ``<pad>``, unknown characters id 1 =
    ``<unk>``, truncated to ``seq_len``) with class ids, split (stratified, seeded) into train/val/test."""

    name: str
    source: str
    vocab: tuple[str, ...]
    class_names: tuple[str, ...]
    seq_len: int
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    seed: int = 0
    pad_id: int = 0

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)`` of ``split`` ("train", "val" or "test")."""
        if split not in ("train", "val", "test"):
            raise ValueError(f"unknown split {split!r}; known: train, val, test")
        return getattr(self, f"x_{split}"), getattr(self, f"y_{split}")

    def encode(self, texts: list[str]) -> np.ndarray:
        """Character ids [len(texts), seq_len] of new texts with this vocabulary."""
        return encode_texts(texts, {c: i for i, c in enumerate(self.vocab)}, self.seq_len)

    def describe(self) -> dict[str, Any]:
        """JSON-able summary: name, source, vocabulary size, sequence length, split sizes, classes, seed."""
        return {
            "name": self.name,
            "source": self.source,
            "task": "classify",
            "vocab_size": self.vocab_size,
            "seq_len": self.seq_len,
            "n_train": int(len(self.y_train)),
            "n_val": int(len(self.y_val)),
            "n_test": int(len(self.y_test)),
            "n_classes": self.n_classes,
            "seed": self.seed,
        }


def encode_texts(texts: list[str], index: dict[str, int], seq_len: int) -> np.ndarray:
    """Character ids (``index``; unknown → 1) truncated/right-padded with 0 to ``seq_len``."""
    out = np.zeros((len(texts), seq_len), dtype=np.int64)
    unk = index.get(UNK, 1)
    for row, text in enumerate(texts):
        ids = [index.get(c, unk) for c in text[:seq_len]]
        out[row, : len(ids)] = ids
    return out


def _read_jsonl(text: str, display: str) -> list[tuple[str, str]]:
    """(text, label) of every non-blank JSONL line with ``text`` and ``label`` keys."""
    pairs = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{display}: line {number} is not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict) or "text" not in record or "label" not in record:
            raise DataError(f"{display}: line {number} must be a JSON object with keys 'text' and 'label'")
        if not isinstance(record["text"], str):
            raise DataError(f"{display}: line {number}: 'text' must be a string, got {type(record['text']).__name__}")
        if record["label"] is None or isinstance(record["label"], (dict, list)):
            raise DataError(f"{display}: line {number}: 'label' must be a string or number, got {record['label']!r}")
        pairs.append((record["text"], str(record["label"])))
    return pairs


def _read_delimited(text: str, display: str, delimiter: str, text_column: str, target: str) -> list[tuple[str, str]]:
    """(text, label) of every data row of a CSV/TSV with a header naming ``text_column`` and ``target``."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        rows = [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]
    except csv.Error as exc:
        raise DataError(f"{display}: malformed file at line {reader.line_num}: {exc}") from None
    if not rows:
        raise DataError(f"{display}: no header row (and no data rows)")
    header = [c.strip() for c in rows[0][1]]
    unique_names(header, display)
    absent = [c for c in (text_column, target) if c not in header]
    if absent:
        raise DataError(
            f"{display}: no column {' or '.join(map(repr, absent))} in the header row; columns are "
            f"{', '.join(map(repr, header))} (name them with text_column= and target=)"
        )
    t, y = header.index(text_column), header.index(target)
    pairs = []
    for line, row in rows[1:]:
        if len(row) != len(header):
            raise DataError(f"{display}: line {line} has {len(row)} fields, expected {len(header)} as in the header")
        if not row[y].strip():
            raise DataError(f"{display}: line {line} has an empty label in column {target!r}")
        pairs.append((row[t], row[y].strip()))
    return pairs


def load_sequence_classification(
    path: str | Path,
    *,
    seq_len: int = 128,
    target: str = "label",
    text_column: str = "text",
    seed: int = 0,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
) -> SequenceDataset:
    """Load a ``.csv``/``.tsv`` (header row naming ``text_column`` and ``target``) or ``.jsonl`` (objects with
    ``text`` and ``label``) file of labelled texts and split it (stratified, seeded).

    Characters become ids over the sorted characters of all texts after ``<pad>`` (0) and ``<unk>`` (1);
    texts are truncated or right-padded to ``seq_len``; labels are encoded in sorted order (numbers
    numerically)."""
    seq_len = _check_seq_len(seq_len)
    check_options(seed, val_fraction, test_fraction)
    display = str(path)
    file = Path(display).expanduser()
    suffix = file.suffix.lower()
    if suffix not in (".csv", ".tsv", ".jsonl"):
        raise DataError(f"{display}: unsupported file type {suffix or '(none)'!r}; use .csv, .tsv or .jsonl")
    text = decode_text(read_data_bytes(file, display), display)
    if not text.strip():
        raise DataError(f"{display}: file is empty")
    if suffix == ".jsonl":
        pairs = _read_jsonl(text, display)
    else:
        pairs = _read_delimited(text, display, "\t" if suffix == ".tsv" else ",", text_column, target)
    if not pairs:
        raise DataError(f"{display}: no data rows")
    texts = [p[0] for p in pairs]
    y, class_names = encode_labels([p[1] for p in pairs])
    check_classes(display, f"label {target!r}", y, class_names)
    try:
        train, val, test = split_indices(y, seed, val_fraction, test_fraction)
    except ValueError as exc:
        raise DataError(
            f"{display}: cannot split {len(y)} rows with {len(class_names)} classes into stratified "
            f"train/val/test sets (val_fraction={val_fraction}, test_fraction={test_fraction}): {exc}"
        ) from None
    vocab = (PAD, UNK, *sorted(set("".join(texts))))
    x = encode_texts(texts, {c: i for i, c in enumerate(vocab)}, seq_len)
    return SequenceDataset(
        name=file.name, source=str(file.resolve()), vocab=vocab, class_names=class_names, seq_len=seq_len,
        x_train=x[train], y_train=y[train], x_val=x[val], y_val=y[val], x_test=x[test], y_test=y[test],
        seed=int(seed),
    )
