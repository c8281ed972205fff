"""ONNX and TorchScript exports score exactly like the detector, on real data; bad exports write nothing."""

from __future__ import annotations

import numpy as np
import onnxruntime
import pytest
import torch

from vae import ExportError, InputError, VAEDetector


@pytest.fixture(scope="module")
def fitted(cardio):
    normal = cardio.X[cardio.y == 0]
    detector = VAEDetector(seed=0, epochs=10, device="cpu").fit(normal[:1000])
    return detector, cardio.X[1000:]


def test_onnx_scores_and_flags_like_the_detector(fitted, tmp_path):
    detector, rows = fitted
    report = detector.export(tmp_path / "m.onnx", "onnx", rows)
    assert report.relative_diff <= 1e-5 and report.n_rows == len(rows)
    session = onnxruntime.InferenceSession(str(report.path), providers=["CPUExecutionProvider"])
    score, flag = session.run(None, {"x": rows[:7].astype(np.float32)})  # another batch size than traced
    prediction = detector.predict(rows[:7])
    np.testing.assert_allclose(score, prediction.score, rtol=1e-5, atol=1e-6)
    assert (flag == prediction.is_anomaly).all()


def test_torchscript_scores_and_flags_like_the_detector(fitted, tmp_path):
    detector, rows = fitted
    report = detector.export(tmp_path / "m.pt", "torchscript", rows)
    score, flag = torch.jit.load(str(report.path))(torch.from_numpy(rows[:5].astype(np.float32)))
    np.testing.assert_allclose(score.numpy(), detector.score(rows[:5]), rtol=1e-6)
    assert (flag.numpy() == detector.predict(rows[:5]).is_anomaly).all()


def test_a_failed_parity_check_writes_nothing_and_keeps_the_old_file(fitted, tmp_path):
    detector, rows = fitted
    target = tmp_path / "m.pt"
    target.write_bytes(b"previous artifact")
    with pytest.raises(ExportError, match="parity check failed"):
        detector.export(target, "torchscript", rows, tolerance=-1.0)
    assert target.read_bytes() == b"previous artifact"
    assert list(tmp_path.iterdir()) == [target]


def test_unknown_format_is_refused(fitted, tmp_path):
    with pytest.raises(InputError, match="unknown export format 'tflite'"):
        fitted[0].export(tmp_path / "m", "tflite", fitted[1])
