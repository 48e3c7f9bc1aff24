"""The quickstart recipe runs on the user data formats by changing only its `data:` block.

The data are scikit-learn's digits written out as an npz file, an image folder, a CIFAR-10
python folder (32x32x3 in the real pickle layout) and a CSV of pixel columns, so every format
must give a model that really learns (well above the 10 % of chance).
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import yaml

from effcli.plan import load_plan
from tests.integration.helpers import ROOT, project, run_doc

pytestmark = pytest.mark.slow


def digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return (bunch.images * 255 / 16).astype(np.uint8), bunch.target.astype(np.int64)


def write_npz(folder: Path) -> dict[str, object]:
    """Also standardized by the recipe, and large-data mode: no test.npz kept."""
    x, y = digits()
    np.savez(folder / "digits.npz", x=x[..., np.newaxis], y=y)
    return {"source": "npz", "path": "digits.npz", "normalize": "standardize", "save_test": False}


def write_images(folder: Path) -> dict[str, object]:
    from PIL import Image

    x, y = digits()
    for i, (image, label) in enumerate(zip(x, y, strict=True)):
        (folder / "images" / f"digit{label}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / "images" / f"digit{label}" / f"{i}.png")
    return {"source": "image_folder", "path": "images", "image_size": [8, 8], "color": "grayscale"}


def write_cifar(folder: Path) -> dict[str, object]:
    x, y = digits()
    big = np.kron(x, np.ones((4, 4), np.uint8))  # 8x8 -> 32x32, same digit
    rgb = np.repeat(big[:, np.newaxis], 3, axis=1).reshape(len(x), 3072)  # CHW rows, as CIFAR
    out = folder / "cifar-10-batches-py"
    out.mkdir()
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for part, name in zip(np.array_split(np.arange(len(x)), 6), names, strict=True):
        batch = {b"data": rgb[part], b"labels": y[part].tolist(), b"batch_label": name.encode()}
        (out / name).write_bytes(pickle.dumps(batch))
    return {"source": "cifar10", "path": "cifar-10-batches-py"}


def write_csv(folder: Path) -> dict[str, object]:
    x, y = digits()
    header = ",".join(f"p{i}" for i in range(64)) + ",digit"
    rows = [
        ",".join(map(str, image.ravel())) + f",{label}" for image, label in zip(x, y, strict=True)
    ]
    (folder / "digits.csv").write_text(header + "\n" + "\n".join(rows) + "\n")
    return {"source": "csv", "path": "digits.csv", "label": "digit", "shape": [8, 8, 1]}


WRITERS = {"npz": write_npz, "image_folder": write_images, "cifar10": write_cifar, "csv": write_csv}


# cifar10 (2+ min) and npz run in `make test-all`; csv and image folders in `make test`.
SLOW_SOURCES = {"cifar10", "npz"}


@pytest.mark.parametrize(
    "source",
    [pytest.param(s, marks=[pytest.mark.full] if s in SLOW_SOURCES else []) for s in WRITERS],
)
def test_quickstart_runs_with_only_its_data_block_changed(tmp_path: Path, source: str) -> None:
    folder = project(tmp_path)
    data = WRITERS[source](folder)
    quickstart = yaml.safe_load((ROOT / "recipes" / "quickstart.yaml").read_text())
    # The unchanged quickstart validates and plans on this data (no training yet).
    recipe = folder / "quickstart.yaml"
    recipe.write_text(yaml.safe_dump({**quickstart, "data": data}, sort_keys=False))
    assert len(load_plan(recipe).first_replicates()) == 9
    # One of its variants, trained briefly (once), learns from this data through the runner.
    doc = {
        **quickstart,
        "replicates": 1,
        "data": data,
        "train": {"epochs": 12, "early_stopping": {"enabled": False}},
        "pipeline": [
            {"stage": "train", "width_multiplier": 0.25},
            {"stage": "quantize", "mode": "int8"},
        ],
    }
    (row,) = run_doc(folder, "short", doc).values()
    assert row["status"] == "ok", row["error"]
    assert float(row["tflite_accuracy"]) > 0.5
    split = json.loads((folder / "out" / "split.json").read_text())
    saved = data.get("save_test", True)
    assert (folder / "out" / "test.npz").exists() is saved and split["test_saved"] is saved
    if "normalize" in data:  # int8 calibrated on standardized inputs: the file takes them
        assert split["normalize"]["mode"] == "standardize" and len(split["normalize"]["std"]) == 1
