"""Fuzz cases: malformed datasets, through ``hwnas search --dataset``: tables (``.csv``, ``.npz``) for the MLP
family, texts (``.txt``, ``.jsonl``, ``.csv``, ``.tsv``) for the Transformer family. Each must be one line
naming the file, before any work; the few valid ones train one trial (``ok``), and data that trains but
cannot give a model is a search whose trials all fail (``failed``)."""

from __future__ import annotations

import io
import json
import os
import random
import zipfile

import numpy as np

from fuzzing import Case, Sandbox

#: Larger than any bound hwnas reads a data file up to; written sparse, so it costs no disk.
HUGE_BYTES = 3 << 30


def _csv(rows: list[list[object]]) -> str:
    return "".join(",".join(str(c) for c in row) + "\n" for row in rows)


def _table(rng: random.Random, n: int = 40, features: int = 3, classes: int = 2) -> list[list[object]]:
    """A valid table with a header: ``features`` numeric columns and a ``label`` column."""
    rows: list[list[object]] = [[f"f{j}" for j in range(features)] + ["label"]]
    for i in range(n):
        rows.append([round(rng.uniform(-5, 5), 3) for _ in range(features)] + [f"c{i % classes}"])
    return rows


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _npy_header_only(shape: tuple[int, ...], dtype: str = "<f8") -> bytes:
    """An .npz whose X.npy and y.npy declare ``shape`` (y: its rows) but hold a few bytes (reading them naively
    allocates it all)."""
    members = {}
    for name, dims in (("X", shape), ("y", shape[:1])):
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {"descr": dtype, "fortran_order": False, "shape": dims})
        members[f"{name}.npy"] = header.getvalue() + b"\0" * 64
    return _zip(members)


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _jsonl(records: list[object]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def _texts(rng: random.Random, n: int = 40, classes: int = 2) -> list[tuple[str, str]]:
    words = ["alpha", "beta", "gamma", "delta", "omega", "sigma"]
    return [(" ".join(rng.choice(words) for _ in range(rng.randint(2, 6))), f"k{i % classes}") for i in range(n)]


def cases(sandbox: Sandbox, rng: random.Random) -> list[Case]:
    out: list[Case] = []

    def search(case_id: str, dataset: str, *, space: str = "mlp_tabular", expect: str = "error",
               names: tuple[str, ...] | None = None, extra: tuple[str, ...] = ()) -> None:
        argv = ["search", space, "--dataset", dataset, "--trials", "1", "--epochs", "1", "--profile", "cpu-host-model",
                "--no-progress", "--out", str(sandbox.out(case_id)), *extra]
        out.append(Case(case_id, argv, expect=expect, names=(dataset,) if names is None else names))

    def file(case_id: str, name: str, content: str | bytes, **kw: object) -> None:
        search(case_id, str(sandbox.file(f"data/{case_id}/{name}", content)), **kw)  # type: ignore[arg-type]

    def special(case_id: str, name: str, make: str, **kw: object) -> None:
        """A path that is no regular file: a folder, a FIFO, a link to a device, a huge (sparse) file."""
        path = sandbox.inputs / "data" / case_id / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if make == "dir":
            path.mkdir()
        elif make == "fifo":
            os.mkfifo(path)
        elif make == "zero":
            os.symlink("/dev/zero", path)
        else:
            with open(path, "wb") as f:
                f.truncate(HUGE_BYTES)
        search(case_id, str(path), **kw)  # type: ignore[arg-type]

    table = _table(rng)
    good = _csv(table)
    lm = "The quick brown fox jumps over the lazy dog. " * 40

    # --- tables (.csv) for the MLP family --------------------------------------------------------------------
    file("data-csv-empty", "empty.csv", "")
    file("data-csv-blank", "blank.csv", "\n  \n\t\n")
    file("data-csv-header-only", "header.csv", "a,b,label\n")
    file("data-csv-latin1", "latin1.csv", "caf\xe9,b,label\n1,2,x\n3,4,y\n".encode("latin-1"))
    file("data-csv-utf16", "utf16.csv", good.encode("utf-16"))
    file("data-csv-random-bytes", "random.csv", rng.randbytes(4096))
    file("data-csv-nul-bytes", "nul.csv", good.replace("\n", "\0\n", 3))
    file("data-csv-one-column", "one.csv", _csv([["label"]] + [[i % 2] for i in range(40)]))
    file("data-csv-one-row", "row.csv", "1,2,0\n")
    file("data-csv-duplicate-header", "dup.csv", _csv([["f0", "f0", "label"]] + [r[:2] + r[-1:] for r in table[1:]]))
    file("data-csv-duplicate-target", "duptarget.csv", _csv([["f0", "label", "label"]] + [r[:2] + r[-1:]
                                                                                        for r in table[1:]]))
    file("data-csv-nan", "nan.csv", good.replace(str(table[5][0]), "nan", 1))
    file("data-csv-inf", "inf.csv", _csv(table[:3] + [[*table[3][:-2], "inf", table[3][-1]]] + table[4:]))
    file("data-csv-overflow", "overflow.csv", _csv(table[:3] + [[*table[3][:-2], "1e999", table[3][-1]]] + table[4:]))
    file("data-csv-beyond-float32", "big.csv", _csv(table[:3] + [[*table[3][:-2], "1e300", table[3][-1]]] + table[4:]))
    file("data-csv-ragged", "ragged.csv", good + "1,2\n")
    file("data-csv-text-feature", "text.csv", _csv([table[0]] + [["red", *r[1:]] for r in table[1:]]))
    file("data-csv-missing-marker", "missing.csv", good.replace(str(table[7][1]), "?", 1))
    file("data-csv-one-class", "oneclass.csv", _csv([table[0]] + [[*r[:-1], "same"] for r in table[1:]]))
    file("data-csv-singleton-class", "singleton.csv", good + "0.5,0.5,0.5,lonely\n")
    file("data-csv-too-few-rows", "few.csv", _csv(_table(rng, n=4)))
    file("data-csv-unclosed-quote", "quote.csv", good + '"1,2,3,c0\n4,5,6,c1\n')
    file("data-csv-empty-label", "nolabel.csv", good + "1,2,3,\n")
    file("data-csv-decimal-comma", "comma.csv", "a;b;label\n" + "".join(f"{i},5;{i};c{i % 2}\n" for i in range(40)))
    file("data-csv-wide-header-short-rows", "wide.csv", _csv([[f"c{j}" for j in range(50)]] + table[1:]))
    file("data-csv-target-missing", "target.csv", good, extra=("--target", "nosuchcolumn"),
         names=None)
    file("data-csv-target-index", "index.csv", good, extra=("--target", "99"))
    special("data-csv-folder", "folder.csv", "dir")
    special("data-csv-fifo", "fifo.csv", "fifo")
    special("data-csv-dev-zero", "zero.csv", "zero")
    special("data-csv-huge", "huge.csv", "huge")
    search("data-csv-absent", str(sandbox.inputs / "data" / "absent.csv"))
    file("data-csv-valid", "valid.csv", good, expect="ok")
    file("data-csv-valid-bom-semicolon-crlf", "bom.csv", "\ufeff" + good.replace(",", ";").replace("\n", "\r\n"),
         expect="ok")

    # --- arrays (.npz) for the MLP family --------------------------------------------------------------------
    X = np.asarray([r[:-1] for r in table[1:]], dtype=np.float64)
    y = np.arange(len(X)) % 2
    file("data-npz-empty", "empty.npz", b"")
    file("data-npz-random-bytes", "random.npz", rng.randbytes(2048))
    file("data-npz-truncated", "truncated.npz", _npz({"X": X, "y": y})[:300])
    file("data-npz-zip-of-text", "text.npz", _zip({"readme.txt": b"hello"}))
    file("data-npz-wrong-keys", "keys.npz", _npz({"features": X, "labels": y}))
    file("data-npz-no-y", "noy.npz", _npz({"X": X}))
    file("data-npz-X-1d", "x1d.npz", _npz({"X": X[:, 0], "y": y}))
    file("data-npz-X-3d", "x3d.npz", _npz({"X": X.reshape(len(X), 3, 1), "y": y}))
    file("data-npz-X-no-rows", "x0.npz", _npz({"X": X[:0], "y": y[:0]}))
    file("data-npz-X-no-columns", "xcol0.npz", _npz({"X": X[:, :0], "y": y}))
    file("data-npz-X-strings", "xstr.npz", _npz({"X": X.astype(str), "y": y}))
    file("data-npz-X-complex", "xcomplex.npz", _npz({"X": X.astype(complex), "y": y}))
    file("data-npz-X-structured", "xstruct.npz",
         _npz({"X": np.zeros(len(X), dtype=[("a", "f4"), ("b", "f4")]), "y": y}))
    file("data-npz-X-object", "xobject.npz", _zip({"X.npy": _pickled_object_npy(), "y.npy": _npy(y)}))
    file("data-npz-X-nan", "xnan.npz", _npz({"X": np.where(np.arange(X.size).reshape(X.shape) == 7, np.nan, X),
                                            "y": y}))
    file("data-npz-X-inf", "xinf.npz", _npz({"X": np.where(np.arange(X.size).reshape(X.shape) == 3, -np.inf, X),
                                            "y": y}))
    file("data-npz-X-beyond-float32", "xbig.npz", _npz({"X": X * 1e300, "y": y}))
    file("data-npz-y-2d", "y2d.npz", _npz({"X": X, "y": y.reshape(-1, 1)}))
    file("data-npz-y-length", "ylen.npz", _npz({"X": X, "y": y[:-3]}))
    file("data-npz-y-nan", "ynan.npz", _npz({"X": X, "y": np.where(y == 1, np.nan, 0.0)}))
    file("data-npz-y-one-class", "yone.npz", _npz({"X": X, "y": np.zeros_like(y)}))
    file("data-npz-y-complex", "ycomplex.npz", _npz({"X": X, "y": y.astype(complex) * 1j}))
    file("data-npz-huge-declared-shape", "declared.npz", _npy_header_only((1_000_000_000, 1_000)))
    file("data-npz-huge-declared-1d", "declared1d.npz", _npy_header_only((1 << 40,)))
    file("data-npz-target", "target.npz", _npz({"X": X, "y": y}), extra=("--target", "y"))
    special("data-npz-folder", "folder.npz", "dir")
    special("data-npz-fifo", "fifo.npz", "fifo")
    special("data-npz-huge", "huge.npz", "huge")
    file("data-npz-valid-bool-features", "bool.npz", _npz({"X": X > 0, "y": y}), expect="ok")

    # --- texts for the Transformer family ---------------------------------------------------------------------
    def text(case_id: str, name: str, content: str | bytes, **kw: object) -> None:
        file(case_id, name, content, space="transformer_ffn", **kw)

    def text_special(case_id: str, name: str, make: str) -> None:
        special(case_id, name, make, space="transformer_ffn")

    text("data-txt-empty", "empty.txt", "")
    text("data-txt-blank", "blank.txt", " \n\t\n ")
    text("data-txt-too-short", "short.txt", "abc")
    text("data-txt-latin1", "latin1.txt", ("caf\xe9 " * 200).encode("latin-1"))
    text("data-txt-random-bytes", "random.txt", rng.randbytes(4096))
    text("data-txt-huge-vocabulary", "vocab.txt", "".join(chr(rng.randrange(0x4E00, 0x9FFF)) for _ in range(60000)))
    text_special("data-txt-folder", "folder.txt", "dir")
    text_special("data-txt-fifo", "fifo.txt", "fifo")
    text_special("data-txt-dev-zero", "zero.txt", "zero")
    text_special("data-txt-huge", "huge.txt", "huge")
    search("data-txt-absent", str(sandbox.inputs / "data" / "absent.txt"), space="transformer_ffn")
    search("data-txt-unknown-name", "no_such_text", space="transformer_ffn")
    text("data-txt-npz-for-transformer", "arrays.npz", _npz({"X": X, "y": y}))

    pairs = _texts(rng)
    text("data-jsonl-empty", "empty.jsonl", "")
    text("data-jsonl-one-class", "one.jsonl", _jsonl([{"text": t, "label": "same"} for t, _ in pairs]))
    text("data-jsonl-singleton-class", "single.jsonl", _jsonl([{"text": t, "label": k} for t, k in pairs]
                                                             + [{"text": "x", "label": "lonely"}]))
    text("data-jsonl-not-json", "bad.jsonl", _jsonl([{"text": t, "label": k} for t, k in pairs]) + "{text: 1\n")
    text("data-jsonl-array-line", "array.jsonl", '["text", "label"]\n' * 40)
    text("data-jsonl-missing-label", "nolabel.jsonl", _jsonl([{"text": t} for t, _ in pairs]))
    text("data-jsonl-text-not-string", "number.jsonl", _jsonl([{"text": 3, "label": k} for _, k in pairs]))
    text("data-jsonl-label-null", "null.jsonl", _jsonl([{"text": t, "label": None} for t, _ in pairs]))
    text("data-jsonl-label-object", "object.jsonl", _jsonl([{"text": t, "label": {"a": 1}} for t, _ in pairs]))
    text("data-jsonl-latin1", "latin1.jsonl", _jsonl([{"text": t + "\xe9", "label": k} for t, k in pairs])
         .encode("utf-8").replace(b"\\u00e9", b"\xe9"))
    text("data-jsonl-large-vocabulary", "vocab.jsonl", _jsonl(  # a classifier only embeds its characters
        [{"text": "".join(chr(rng.randrange(0x4E00, 0x9FFF)) for _ in range(400)), "label": k} for _, k in pairs]),
         expect="ok")
    text_special("data-jsonl-fifo", "fifo.jsonl", "fifo")
    text_special("data-jsonl-huge", "huge.jsonl", "huge")

    rows = [["text", "label"], *([t, k] for t, k in pairs)]
    text("data-textcsv-empty", "empty.csv", "")
    text("data-textcsv-only-delimiters", "commas.csv", " , ,\n,,\n")
    text("data-textcsv-no-header", "noheader.csv", _csv(rows[1:]))
    text("data-textcsv-one-class", "one.csv", _csv([rows[0]] + [[t, "same"] for t, _ in pairs]))
    text("data-textcsv-duplicate-header", "dup.csv", _csv([["text", "text", "label"]] + [[t, t, k] for t, k in pairs]))
    text("data-textcsv-empty-label", "nolabel.csv", _csv(rows) + "words,\n")
    text("data-textcsv-ragged", "ragged.csv", _csv(rows) + "a,b,c\n")
    text("data-textcsv-nul", "nul.csv", _csv(rows).replace("\n", "\0\n", 2))
    text("data-textcsv-target-missing", "target.csv", _csv(rows), extra=("--target", "nosuch"))
    text("data-tsv-latin1", "latin1.tsv", ("text\tlabel\n" + "".join(f"caf\xe9 {i}\tk{i % 2}\n" for i in range(40)))
         .encode("latin-1"))
    text_special("data-textcsv-folder", "folder.csv", "dir")
    text_special("data-textcsv-dev-zero", "zero.csv", "zero")
    text("data-jsonl-valid", "valid.jsonl", _jsonl([{"text": t, "label": k} for t, k in pairs]), expect="ok")
    text("data-txt-valid", "valid.txt", lm, expect="ok")
    return out


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def _pickled_object_npy() -> bytes:
    """An object-array .npy (its data is a pickle): hwnas must refuse it without unpickling anything."""
    buffer = io.BytesIO()
    np.save(buffer, np.asarray([{"a": 1}, None, "x"], dtype=object), allow_pickle=True)
    return buffer.getvalue()
