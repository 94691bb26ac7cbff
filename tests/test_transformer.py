"""The Transformer / tiny-LM family: text data, model, ONNX export, LM and sequence-classification training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from hwnas.data.text import load_sequence_classification, load_text, pydoc_topics_text
from hwnas.errors import DataError
from hwnas.lowering import TokenExporter, lower
from hwnas.lowering.runtime import onnx_logits
from hwnas.models.transformer import build_transformer
from hwnas.train.lm import evaluate_classifier, evaluate_lm, train_lm, train_sequence_classifier

SEQ = 32
TINY = {"depth": 2, "d_model": 32, "heads": 2}


@pytest.fixture(scope="module")
def chars():
    return load_text("pydoc_topics", level="char", seq_len=SEQ)


def _tiny_lm(data, config=TINY, seed=0):
    torch.manual_seed(seed)
    return build_transformer(config, vocab_size=data.vocab_size, seq_len=data.seq_len)


def _train(data, seed=0):
    model = _tiny_lm(data, seed=seed)
    result = train_lm(model, data, epochs=2, steps_per_epoch=50, batch_size=32, lr=1e-2, seed=seed, patience=2)
    return model, result


@pytest.fixture(scope="module")
def trained(chars):
    return _train(chars)


# --- text data -------------------------------------------------------------------------------------------------


def test_load_text_char_and_byte_sizes_and_contiguous_splits(chars):
    text = pydoc_topics_text()
    assert chars.vocab == tuple(sorted(set(text))) and chars.vocab_size == len(set(text))
    joined = np.concatenate([chars.train, chars.val, chars.test])
    assert np.array_equal(joined, chars.encode(text))  # contiguous, in order, nothing lost
    n = len(text)
    assert len(chars.val) == len(chars.test) == round(0.1 * n) and len(chars.train) == n - 2 * round(0.1 * n)
    assert chars.decode(chars.val[:50]) == text[len(chars.train) : len(chars.train) + 50]
    data = load_text(level="byte", seq_len=SEQ)
    raw = text.encode("utf-8")
    assert data.vocab_size == 256
    assert np.array_equal(np.concatenate([data.train, data.val, data.test]), np.frombuffer(raw, np.uint8))
    assert json.loads(json.dumps(data.describe()))["n_train_tokens"] == len(data.train)


def test_windows_are_next_token_shifted(chars):
    x, y = chars.random_windows(np.random.default_rng(0), 8)
    assert x.shape == y.shape == (8, SEQ) and x.dtype == np.int64
    assert np.array_equal(x[:, 1:], y[:, :-1])
    x2, _ = chars.random_windows(np.random.default_rng(0), 8)
    assert np.array_equal(x, x2)
    x, y = chars.eval_windows("val", max_eval_windows=None)
    assert len(x) == (len(chars.val) - 1) // SEQ
    assert np.array_equal(x[3], chars.val[3 * SEQ : 4 * SEQ])
    assert np.array_equal(y[3], chars.val[3 * SEQ + 1 : 4 * SEQ + 1])
    capped, _ = chars.eval_windows("test", max_eval_windows=10)
    assert len(capped) == 10 and np.array_equal(capped, chars.eval_windows("test", max_eval_windows=10)[0])


def test_load_text_file_and_errors(tmp_path):
    path = tmp_path / "story.txt"
    path.write_text("the quick brown fox jumps over the lazy dog. " * 20, encoding="utf-8")
    data = load_text(str(path), seq_len=8)
    assert data.name == "story.txt" and data.vocab_size == len(set(path.read_text()))
    with pytest.raises(DataError, match="too short for seq_len=100"):
        load_text(str(path), seq_len=100)
    with pytest.raises(DataError, match="unknown text level 'word'"):
        load_text(str(path), level="word")
    with pytest.raises(DataError, match="file not found"):
        load_text(str(tmp_path / "missing.txt"))
    (tmp_path / "empty.txt").write_text("  \n")
    with pytest.raises(DataError, match="empty"):
        load_text(str(tmp_path / "empty.txt"))
    with pytest.raises(DataError, match="unknown text dataset 'shakespeare'"):
        load_text("shakespeare")


# --- the model ---------------------------------------------------------------------------------------------------


def test_tiny_lm_learns_pydoc_text_and_is_reproducible(chars, trained):
    model, result = trained
    assert result.steps == 100
    assert result.val_perplexity < 0.3 * chars.vocab_size  # uniform guessing: perplexity = vocab size
    assert evaluate_lm(model, chars)[0] == pytest.approx(result.val_loss, rel=1e-9)
    _, again = _train(chars)
    assert again.val_loss == result.val_loss


def test_causal_mask_prevents_looking_ahead(chars):
    model = _tiny_lm(chars).eval()
    tokens = torch.as_tensor(chars.val[: 2 * SEQ].reshape(2, SEQ))
    changed = tokens.clone()
    t = 10
    changed[:, t + 1] = (changed[:, t + 1] + 1) % chars.vocab_size
    with torch.no_grad():
        a, b = model(tokens), model(changed)
    assert torch.equal(a[:, : t + 1], b[:, : t + 1])
    assert not torch.allclose(a[:, t + 1 :], b[:, t + 1 :])


def test_heads_must_divide_d_model(chars):
    with pytest.raises(ValueError, match=r"d_model \(30\).*heads \(4\)"):
        build_transformer({"depth": 1, "d_model": 30, "heads": 4}, vocab_size=10, seq_len=8)
    with pytest.raises(ValueError, match="'ffn' has 3 values for 2 layers"):
        build_transformer({**TINY, "ffn": ["dense"] * 3}, vocab_size=10, seq_len=8)


def test_onnx_export_reproduces_torch_and_perplexity(chars, trained, tmp_path):
    model, _ = trained
    exporter = TokenExporter(SEQ, chars.vocab_size, chars.eval_windows("train", 8)[0])
    path = lower(model, tmp_path / "lm.onnx", exporter, {"hwnas.dataset": chars.describe()}).path
    graph = onnx.load(str(path)).graph
    ops = [n.op_type for n in graph.node]
    assert ops.count("Softmax") == 2 and "MatMul" in ops and "Gather" in ops
    assert graph.input[0].name == "tokens" and graph.output[0].name == "logits"
    tokens = chars.eval_windows("val", 3)[0]
    with torch.no_grad():
        ref = model(torch.as_tensor(tokens)).numpy()
    out = onnx_logits(path, tokens)  # batch 3 (exported with 2): the batch axis is dynamic
    assert out.shape == (3, SEQ, chars.vocab_size) and np.abs(out - ref).max() <= 1e-4
    for split in ("val", "test"):
        torch_loss, torch_ppl = evaluate_lm(model, chars, split)
        onnx_loss, onnx_ppl = evaluate_lm(lambda tokens: onnx_logits(path, tokens), chars, split)
        assert onnx_loss == pytest.approx(torch_loss, rel=1e-4) and onnx_ppl == pytest.approx(torch_ppl, rel=1e-4)


@pytest.mark.parametrize("ffn", ["dense", "lowrank", "blockdiag", "swiglu", "moe"])
def test_every_ffn_kind_exports(ffn, tmp_path):
    config = {"depth": 2, "d_model": 16, "heads": 2, "ffn": [ffn, "dense"], "expansion": 2, "rank": 4, "blocks": 4,
              "experts": 3, "top_k": 2, "weight_bits": [8, None]}
    torch.manual_seed(0)
    model = build_transformer(config, vocab_size=20, seq_len=8)
    lower(model, tmp_path / f"{ffn}.onnx", TokenExporter(8, 20, np.zeros((4, 8), np.int64)))  # checks parity 1e-4


def test_classifier_exports_class_scores(tmp_path):
    torch.manual_seed(0)
    model = build_transformer(TINY, vocab_size=12, seq_len=8, task="classify", n_classes=3)
    path = lower(model, tmp_path / "cls.onnx", TokenExporter(8, 12, np.zeros((4, 8), np.int64))).path
    tokens = np.random.default_rng(0).integers(0, 12, (5, 8))
    with torch.no_grad():
        ref = model(torch.as_tensor(tokens)).numpy()
    out = onnx_logits(path, tokens)
    assert out.shape == (5, 3) and np.abs(out - ref).max() <= 1e-4


# --- sequence classification -----------------------------------------------------------------------------------


def _write_reviews(path: Path, n: int = 60) -> None:
    rng = np.random.default_rng(0)
    rows = ["text,label"]
    for i in range(n):
        label = ["pos", "neg", "meh"][i % 3]
        word = {"pos": "good", "neg": "bad", "meh": "okay"}[label]
        rows.append(f"\"{' '.join([word] * int(rng.integers(1, 5)))}, really\",{label}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def test_sequence_classification_csv(tmp_path):
    path = tmp_path / "reviews.csv"
    _write_reviews(path)
    data = load_sequence_classification(path, seq_len=16, seed=0)
    assert data.class_names == ("meh", "neg", "pos") and data.vocab[:2] == ("<pad>", "<unk>")
    assert data.x_train.shape[1] == 16 and data.x_train.dtype == np.int64
    assert len(data.y_train) + len(data.y_val) + len(data.y_test) == 60
    for y in (data.y_train, data.y_val, data.y_test):
        assert set(y.tolist()) == {0, 1, 2}  # stratified
    encoded = data.encode(["bad, really", "x" * 40])
    assert encoded[0, 11:].tolist() == [0] * 5 and encoded[1].tolist() == [1] * 16  # padded / unknown+truncated
    again = load_sequence_classification(path, seq_len=16, seed=0)
    assert np.array_equal(again.x_val, data.x_val)
    torch.manual_seed(0)
    model = build_transformer({"depth": 1, "d_model": 16, "heads": 2}, vocab_size=data.vocab_size, seq_len=16,
                              task="classify", n_classes=data.n_classes)
    result = train_sequence_classifier(model, data, epochs=30, batch_size=16, lr=1e-2, seed=0, patience=30)
    assert result.val_accuracy == 1.0 and evaluate_classifier(model, data, "test")[1] == 1.0


def test_sequence_classification_jsonl_and_errors(tmp_path):
    good = tmp_path / "a.jsonl"
    good.write_text("".join(json.dumps({"text": t, "label": i % 2}) + "\n" for i, t in enumerate(["ab", "cd"] * 5)))
    data = load_sequence_classification(good, seq_len=4)
    assert data.n_classes == 2 and data.describe()["n_classes"] == 2
    cases = {
        "bad.jsonl": ('{"text": "a", "label": 1}\nnot json\n', "line 2 is not valid JSON"),
        "nokey.jsonl": ('{"text": "a"}\n', "line 1 must be a JSON object with keys 'text' and 'label'"),
        "cols.csv": ("sentence,label\nhi,1\n", "no column 'text'"),
        "one.csv": ("text,label\na,x\nb,x\nc,x\n", "only 1 class"),
        "ragged.tsv": ("text\tlabel\na\t1\nb\n", "line 3 has 1 fields"),
        "empty.csv": ("", "file is empty"),
        "data.txt": ("text,label\n", "unsupported file type"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_text(content)
        with pytest.raises(DataError, match=message):
            load_sequence_classification(tmp_path / name)
    with pytest.raises(DataError, match="file not found"):
        load_sequence_classification(tmp_path / "missing.csv")
