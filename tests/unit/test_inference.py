"""Inference context: real all-MiniLM-L6-v2 embeddings, readiness checks, input validation."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import numpy as np
import pytest

from hcp.errors import ConfigError, ContextUnavailableError, ValidationError
from hcp.inference import (
    InferenceModel,
    MiniLMEmbedder,
    create_model,
    known_models,
    register_model,
    unregister_model,
)
from hcp.mining import cuda_available

MINILM = "all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def model() -> Iterator[InferenceModel]:
    # Loading takes seconds; every read-only test shares this one warmed model.
    m = create_model(MINILM)
    m.load()
    m.warm()
    yield m
    m.unload()


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b))  # rows are L2-normalized


def test_embeddings_have_shape_dtype_and_unit_norm(model: InferenceModel) -> None:
    texts = ["A cat sits on the mat.", "Stock prices fell sharply today.", "Hello"]
    out = model.embed(texts)
    assert isinstance(out, np.ndarray)
    assert out.shape == (3, 384) and out.dtype == np.float32
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert np.isfinite(out).all()
    assert model.embed(["Hello"]).shape == (1, 384)


def test_embeddings_are_deterministic_and_batch_independent(model: InferenceModel) -> None:
    texts = ["Bitcoin difficulty adjusts every two weeks.", "Short one."]
    batch = model.embed(texts)
    singles = np.vstack([model.embed([t]) for t in texts])
    assert np.allclose(batch, singles, atol=1e-4)  # padding in a batch must not change a row


@pytest.mark.parametrize(
    ("anchor", "similar", "unrelated"),
    [
        (
            "A man is playing a guitar.",
            "Someone is strumming a guitar.",
            "The stock market closed lower today.",
        ),
        (
            "How do I reset my password?",
            "I forgot my password and need to change it.",
            "The recipe calls for two eggs.",
        ),
        (
            "The GPU switched from mining to inference.",
            "The graphics card moved from hashing to serving AI models.",
            "Children are playing football in the park.",
        ),
        (
            "It is raining heavily outside.",
            "There is a strong downpour right now.",
            "She bought a new laptop yesterday.",
        ),
    ],
)
def test_similar_sentences_score_higher(
    model: InferenceModel, anchor: str, similar: str, unrelated: str
) -> None:
    a, s, u = model.embed([anchor, similar, unrelated])
    assert cosine(a, s) > cosine(a, u) + 0.2
    assert cosine(a, s) > 0.5


def test_health_check_is_true_when_warm_and_cheap(model: InferenceModel) -> None:
    assert model.loaded and model.health_check()
    assert model.resident_bytes() > 50 * 2**20  # ~22.7 M float32 parameters
    n = 2000
    started = time.perf_counter()
    for _ in range(n):
        model.health_check()
    per_call_ms = (time.perf_counter() - started) * 1000 / n
    assert per_call_ms < 0.1  # runs inside a latency-critical mode switch


def test_probe_runs_a_real_forward_pass(model: InferenceModel) -> None:
    times = [model.probe() for _ in range(3)]
    assert all(t > 0 for t in times)
    assert min(times) < 1000


@pytest.mark.parametrize(
    "bad",
    [[], "a bare string", [""], ["   "], ["ok", 3], [None], ["x"] * 257, ["y" * 8193], 42],
    ids=[
        "empty",
        "str",
        "empty-item",
        "blank-item",
        "non-str",
        "none",
        "too-many",
        "too-long",
        "int",
    ],
)
def test_bad_input_is_refused(model: InferenceModel, bad: object) -> None:
    with pytest.raises(ValidationError):
        model.embed(bad)  # type: ignore[arg-type]


def test_lifecycle_unload_and_reload() -> None:
    m = MiniLMEmbedder(device=None, warm_batch_sizes=(1,))
    assert not m.loaded and not m.health_check() and m.resident_bytes() == 0
    with pytest.raises(ContextUnavailableError):
        m.embed(["not loaded yet"])
    m.load()
    m.load()  # idempotent
    assert m.loaded and not m.health_check()  # resident but not warmed yet
    m.warm()
    assert m.health_check()
    m.unload()
    assert not m.loaded and not m.health_check() and m.resident_bytes() == 0
    with pytest.raises(ContextUnavailableError):
        m.embed(["after unload"])
    with pytest.raises(ContextUnavailableError):
        m.probe()
    m.warm()  # the cold path: warm() loads again
    assert m.health_check() and m.embed(["back"]).shape == (1, 384)
    m.unload()


class _ToyModel(InferenceModel):
    """A torch-free plug-in, to test what the base class guarantees to every model."""

    name = "toy"
    dimensions = 3
    device = "cpu"

    def __init__(self, rows: np.ndarray) -> None:
        super().__init__(max_texts=4, max_text_chars=10)
        self._rows = rows
        self._loaded = False

    @property
    def loaded(self) -> bool:
        return self._loaded

    def load(self) -> None:
        self._loaded = True

    def warm(self) -> None:
        self.load()

    def unload(self) -> None:
        self._loaded = False

    def health_check(self) -> bool:
        return self._loaded

    def resident_bytes(self) -> int:
        return 0

    def _encode(self, texts: list[str]) -> np.ndarray:
        return self._rows[: len(texts)]

    def _probe(self) -> float:
        return 0.01


def test_base_class_enforces_the_contract() -> None:
    toy = _ToyModel(np.array([[3.0, 4.0, 0.0], [0.0, 0.0, 0.0]]))
    with pytest.raises(ContextUnavailableError):
        toy.embed(["a"])
    with pytest.raises(ContextUnavailableError):
        toy.probe()
    toy.load()
    out = toy.embed(["a", "b"])
    assert out.dtype == np.float32
    assert np.allclose(out[0], [0.6, 0.8, 0.0]) and np.allclose(out[1], 0.0)  # zero row: no NaN
    with pytest.raises(ValidationError):
        toy.embed(["a"] * 5)  # the plug-in's own limits apply
    with pytest.raises(ContextUnavailableError):
        toy.embed(["a", "b", "c"])  # model returned the wrong number of rows
    assert toy.probe() == pytest.approx(0.01)


def test_registry() -> None:
    assert MINILM in known_models()
    with pytest.raises(ConfigError) as info:
        create_model("no-such-model")
    assert MINILM in str(info.value) and info.value.context["known"] == known_models()
    register_model("toy-test", lambda device: _ToyModel(np.zeros((1, 3))))
    try:
        assert isinstance(create_model("toy-test"), _ToyModel)
        with pytest.raises(ConfigError):  # a second registration must say replace=True
            register_model("toy-test", lambda device: _ToyModel(np.zeros((1, 3))))
    finally:
        unregister_model("toy-test")
    assert "toy-test" not in known_models()
    with pytest.raises(ConfigError):
        MiniLMEmbedder(device="not-a-device")


def test_package_import_stays_light() -> None:
    code = "import sys, hcp.inference; print('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


@pytest.mark.gpu
@pytest.mark.skipif(not cuda_available(), reason="GPU test: CUDA unavailable")
def test_minilm_on_cuda() -> None:
    m = MiniLMEmbedder(device="cuda")
    m.warm()
    try:
        assert m.health_check()
        assert m.embed(["on the GPU"]).shape == (1, 384)
        assert m.probe() > 0
    finally:
        m.unload()
    assert not m.health_check()
