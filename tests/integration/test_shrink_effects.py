"""Each shrink technique really has its effect, measured in the exported .tflite file.

One run directory trains a tiny base once; each test adds a pipeline on top of it and checks the
file: m:n groups of zeros, int8/float16 tensors, preserved sparsity and clusters after QAT.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from effcli.measure.flatbuffer import Flatbuffer, model_stats
from effcli.measure.litert import LiteRTModel
from tests.integration.helpers import project, run_doc

pytestmark = pytest.mark.slow

BASE = {"stage": "train", "width_multiplier": 0.25}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return project(tmp_path_factory.mktemp("effects"))


def run(workdir: Path, name: str, *stages: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Run [train, *stages] (sweeps allowed); rows by variant id, all of them ok."""
    doc = {
        "name": "effects",
        "extends": "base",
        "train": {"epochs": 8, "early_stopping": {"enabled": False}},
        "pipeline": [BASE, *stages],
    }
    mine = run_doc(workdir, name, doc)
    for row in mine.values():
        assert row["status"] == "ok", row["error"]
    return mine


def tflite(workdir: Path, row: dict[str, str]) -> bytes:
    return (workdir / "out" / "artifacts" / row["variant"] / "model.tflite").read_bytes()


def kernels(content: bytes) -> dict[str, np.ndarray]:
    """Kernel constants of the file's conv/dense ops, by op output name (TFLite layout)."""
    fb = Flatbuffer(content)
    found = {}
    for op in fb.graph.operators:
        if fb.op_type(op) in ("CONV_2D", "FULLY_CONNECTED"):
            name = fb.tensor(int(op.outputs[0])).name.decode()
            weight = fb.weight(int(op.inputs[1]))
            assert weight is not None, f"{name}: kernel is not a stored constant"
            found[name] = weight[1]
    return found


def test_pruning_pays_off_in_gzip_not_raw_bytes(workdir: Path) -> None:
    rows = run(
        workdir, "prune", {"stage": "prune", "enabled": {"sweep": [False, True]}, "sparsity": 0.8}
    )
    dense, pruned = sorted(rows.values(), key=lambda r: float(r["kernel_sparsity"]))
    assert float(pruned["prune_achieved_sparsity"]) == pytest.approx(0.8, abs=0.02)
    # Raw float32 bytes barely move; compressed bytes fall with the zeros.
    assert abs(int(pruned["tflite_bytes"]) - int(dense["tflite_bytes"])) < 1000
    assert int(pruned["gzip_bytes"]) < 0.6 * int(dense["gzip_bytes"])
    inner = list(kernels(tflite(workdir, pruned)).values())[1:-1]  # first/last kept dense
    for kernel in inner:
        assert np.mean(kernel == 0) == pytest.approx(0.8, abs=0.02)


def test_m_by_n_pruning_puts_two_zeros_in_every_four_input_weights(workdir: Path) -> None:
    (row,) = run(workdir, "m_by_n", {"stage": "prune", "structure": "m_by_n", "epochs": 1}).values()
    assert float(row["prune_m_by_n_groups_ok"]) == 1.0
    inner = list(kernels(tflite(workdir, row)).values())[1:-1]
    assert inner
    for kernel in inner:  # TFLite keeps input channels last: groups of 4 along that axis
        groups = kernel.reshape(-1, kernel.shape[-1]).reshape(-1, 4)
        assert np.all(np.sum(groups == 0, axis=1) >= 2)


def test_post_training_modes_store_what_they_promise(workdir: Path) -> None:
    rows = run(
        workdir,
        "ptq",
        {"stage": "quantize", "mode": {"sweep": ["dynamic", "float16", "int8"]}},
    )
    by_mode = {r["quantize.mode"]: r for r in rows.values()}
    float_rows = run(workdir, "float", {"stage": "prune", "enabled": False, "sparsity": 0.5})
    (float_row,) = float_rows.values()
    for mode, kernel_dtype in (("dynamic", "int8"), ("float16", "float16"), ("int8", "int8")):
        content = tflite(workdir, by_mode[mode])
        inner = list(kernels(content).values())[1:]
        assert all(k.dtype == np.dtype(kernel_dtype) for k in inner), mode
        assert int(by_mode[mode]["tflite_bytes"]) < int(float_row["tflite_bytes"]), mode
    int8 = LiteRTModel(tflite(workdir, by_mode["int8"]))
    assert int8.input_detail["dtype"] == np.int8 and int8.output_detail["dtype"] == np.int8
    assert model_stats(tflite(workdir, by_mode["int8"])).weight_dtypes.get("float32", 0) == 0
    # Quantization costs little accuracy on this data.
    for row in by_mode.values():
        assert float(row["tflite_accuracy"]) > float(float_row["tflite_accuracy"]) - 0.05


@pytest.mark.full  # 80 s here; clustering and pruning each keep their own tests in `make test`
def test_pcqat_keeps_both_the_zeros_and_the_clusters(workdir: Path) -> None:
    rows = run(
        workdir,
        "pcqat",
        {"stage": "prune", "sparsity": 0.5, "epochs": 3},
        {"stage": "cluster", "clusters": 8, "epochs": 1},
        {"stage": "quantize", "mode": "qat", "epochs": 1},
    )
    (row,) = rows.values()
    content = tflite(workdir, row)
    assert model_stats(content).weight_dtypes.get("float32", 0) < 1000  # only folded BN scales
    inner = list(kernels(content).values())[1:-1]
    for kernel in inner:
        assert kernel.dtype == np.int8
        assert np.mean(kernel == 0) >= 0.48  # the pruned zeros survived QAT
        # Per-channel int8: each output channel holds at most 8 centroids plus zero.
        assert max(len(np.unique(kernel[c])) for c in range(kernel.shape[0])) <= 9
