"""Every data source on small files written here: shapes, kinds, scaling, labels, the split
record, determinism, and max_samples. No TensorFlow."""

from __future__ import annotations

import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from effcli.data.base import DataError, DataSplits, datasets

SPLIT = {"train": 0.6, "val": 0.2, "test": 0.2}


def load(source: str, seed: int = 0, root: Path | None = None, **spec: Any) -> DataSplits:
    """Load exactly as the runner does: registry -> Params.model_validate -> load."""
    dataset = datasets.get(source)
    return dataset(root=root).load(dataset.Params.model_validate(spec), seed)


def write_cifar(folder: Path, per_batch: int = 20, skip: tuple[str, ...] = ()) -> Path:
    """A fake CIFAR-10 python folder in the real format: pickled dicts of bytes keys."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for b, name in enumerate(names):
        if name in skip:
            continue
        labels = [(i + b) % 10 for i in range(per_batch)]
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        data[0] = 0
        data[0, 1024 + 1 * 32 + 2] = 255  # image 0 of each batch: green pixel at row 1, col 2
        batch = {b"batch_label": name.encode(), b"labels": labels, b"data": data}
        batch[b"filenames"] = [f"{name}_{i}.png".encode() for i in range(per_batch)]
        with (folder / name).open("wb") as handle:
            pickle.dump(batch, handle)
    return folder


def write_image_folder(
    folder: Path, counts: dict[str, int], size: tuple[int, int] = (6, 5)
) -> Path:
    """Class subfolders of small PNG/JPEG images whose red channel encodes the class."""
    from PIL import Image

    for index, (name, count) in enumerate(counts.items()):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            pixels = np.zeros((*size, 3), np.uint8)
            pixels[..., 0] = 50 * index
            pixels[..., 2] = 255
            suffix = ".jpg" if i % 3 == 2 else ".png"
            Image.fromarray(pixels).save(folder / name / f"img{i}{suffix}")
    return folder


def write_csv(path: Path, rows: int = 60) -> Path:
    """Numbers, a text column and a text label; 3 classes, 'blue' seen only in the last rows."""
    lines = ["id,size,color,target"]
    for i in range(rows):
        color = "blue" if i >= rows - 1 else ("red" if i % 2 else "green")
        lines.append(f"{i},{10 + i % 7},{color},{['cat', 'ant', 'bee'][i % 3]}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_registered_sources() -> None:
    assert {"digits", "mnist1d", "npz", "image_folder", "cifar10", "tfds", "csv"} <= set(
        datasets.names()
    )
    assert "synthetic" in datasets.names()


def test_every_params_field_says_what_is_allowed() -> None:
    for name in datasets.names():
        for field, info in datasets.get(name).Params.model_fields.items():
            if field != "split":
                assert info.description, f"{name}.{field} has no description"


def test_digits_split_record_and_max_samples() -> None:
    full = load("digits")
    assert full.split["source_split"] == {"train": "all", "val": "all", "test": "all"}
    assert full.split["sizes"] == {"train": 1257, "val": 180, "test": 360}
    small = load("digits", max_samples=50)
    assert small.split["sizes"] == {"train": 50, "val": 50, "test": 50}
    assert small.split["class_counts"]["train"] == [5] * 10
    assert small.split["max_samples"] == 50
    # A subsample of the same split, the same each time.
    assert set(small.split["indices"]["test"]) <= set(full.split["indices"]["test"])
    again = load("digits", max_samples=50)
    assert again.split["indices"] == small.split["indices"]


def test_unused_max_samples_keeps_the_data_spec() -> None:
    """Node keys and run.json hash the spec: an unset max_samples must not appear in it."""
    params = datasets.get("digits").Params.model_validate({})
    assert params.model_dump(mode="json") == {"split": {"train": 0.7, "val": 0.1, "test": 0.2}}
    with_cap = datasets.get("digits").Params.model_validate({"max_samples": 9})
    assert with_cap.model_dump(mode="json")["max_samples"] == 9


def test_mnist1d_generated_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    import requests

    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("mnist1d must not download")

    monkeypatch.setattr(requests, "get", no_network)
    np.random.seed(123)
    random.seed(123)
    before = (np.random.random(), random.random())
    np.random.seed(123)
    random.seed(123)
    data = load("mnist1d", num_samples=200, split=SPLIT)
    assert (np.random.random(), random.random()) == before  # global RNG state left alone
    assert data.kind == "sequence" and data.input_shape == (40, 1)
    assert data.x_train.dtype == np.float32 and data.num_classes == 10
    # The generator's own 80/20 split: 160 train+val, 40 test.
    assert data.split["sizes"] == {"train": 120, "val": 40, "test": 40}
    assert data.split["source_split"]["test"] == "generator test part (20 %)"
    assert data.split["fractions"] == {"train": 0.75, "val": 0.25, "test": "source"}
    same = load("mnist1d", num_samples=200, split=SPLIT)
    np.testing.assert_array_equal(same.x_test, data.x_test)


def test_npz_single_file_infers_kind(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    y = np.arange(40) % 4
    np.savez(tmp_path / "img.npz", x=rng.integers(0, 256, (40, 6, 6), dtype=np.uint8), y=y)
    np.savez(tmp_path / "seq.npz", x=rng.normal(size=(40, 30, 2)), y=y)
    np.savez(tmp_path / "tab.npz", x=rng.normal(size=(40, 5)), y=y)
    image = load("npz", root=tmp_path, path="img.npz", split=SPLIT)
    assert (image.kind, image.input_shape) == ("image", (6, 6, 1))
    assert image.x_train.min() >= 0.0 and image.x_train.max() <= 1.0  # uint8 scaled
    sequence = load("npz", root=tmp_path, path="seq.npz", split=SPLIT)
    assert (sequence.kind, sequence.input_shape) == ("sequence", (30, 2))
    tabular = load("npz", root=tmp_path, path="tab.npz", split=SPLIT)
    assert (tabular.kind, tabular.input_shape, tabular.num_classes) == ("tabular", (5,), 4)
    forced = load("npz", root=tmp_path, path="seq.npz", kind="image", split=SPLIT)
    assert (forced.kind, forced.input_shape) == ("image", (30, 2, 1))
    npz = datasets.get("npz")
    assert npz.data_kind(npz.Params.model_validate({"path": "seq.npz"}), tmp_path) == "sequence"


def test_npz_train_and_test_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "tr.npz", a=rng.normal(size=(40, 3)), b=np.arange(40) % 2)
    np.savez(tmp_path / "te.npz", a=rng.normal(size=(7, 3)), b=np.arange(7) % 2)
    data = load("npz", root=tmp_path, train_path="tr.npz", test_path="te.npz", x_key="a", y_key="b")
    # val = ceil(40 x 0.1 / 0.8) = 6: in floats 0.1 / 0.8 is a hair above 1/8 (sklearn agrees).
    assert data.split["sizes"] == {"train": 34, "val": 6, "test": 7}
    assert data.split["source_split"] == {"train": "tr.npz", "val": "tr.npz", "test": "te.npz"}
    assert data.split["indices"]["test"] == list(range(7))


def test_npz_num_classes_allows_an_absent_class(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x=np.ones((30, 2)), y=np.arange(30) % 3)
    data = load("npz", root=tmp_path, path="d.npz", num_classes=4, split=SPLIT)
    assert data.num_classes == 4 and data.split["class_counts"]["train"][3] == 0


def test_image_folder(tmp_path: Path) -> None:
    folder = write_image_folder(tmp_path / "pics", {"dog": 6, "cat": 5, "bird": 5})
    (tmp_path / "pics" / "cat" / "notes.txt").write_text("ignored")
    rgb = load("image_folder", path=str(folder), image_size=[4, 3], split=SPLIT)
    assert (rgb.kind, rgb.input_shape, rgb.num_classes) == ("image", (4, 3, 3), 3)
    assert rgb.split["class_names"] == ["bird", "cat", "dog"]  # sorted, as Keras does
    assert sum(rgb.split["sizes"].values()) == 16
    assert rgb.x_train.dtype == np.float32 and rgb.x_train.max() <= 1.0
    # Red encodes the class folder's position in the dict above: bird 100, cat 50, dog 0.
    red = {0: 100 / 255, 1: 50 / 255, 2: 0.0}
    for x, y in zip(rgb.x_train, rgb.y_train, strict=True):
        assert abs(float(x[..., 0].mean()) - red[int(y)]) < 0.02
    gray = load("image_folder", path=str(folder), image_size=[2, 2], color="grayscale", split=SPLIT)
    assert gray.input_shape == (2, 2, 1)


def test_cifar10_layout_and_own_test_split(tmp_path: Path) -> None:
    folder = write_cifar(tmp_path / "cifar-10-batches-py")
    data = load("cifar10", path=str(folder))
    assert (data.kind, data.input_shape, data.num_classes) == ("image", (32, 32, 3), 10)
    assert data.split["sizes"] == {"train": 87, "val": 13, "test": 20}
    assert data.split["source_split"]["test"] == "test_batch"
    assert data.split["class_names"][0] == "airplane"
    assert data.x_test.dtype == np.float32
    # Test image 0 is black but for the green pixel at (1, 2): channel-last layout.
    first = data.x_test[0]
    assert first[1, 2, 1] == 1.0 and first.sum() == 1.0
    assert data.y_test[0] == 5  # labels of the test batch start at (0 + 5) % 10


def test_csv_preprocessing_fitted_on_train(tmp_path: Path) -> None:
    write_csv(tmp_path / "t.csv")
    data = load("csv", root=tmp_path, path="t.csv", label="target", drop=["id"], split=SPLIT)
    record = data.split
    assert data.kind == "tabular"
    assert record["class_names"] == ["ant", "bee", "cat"]
    assert record["label_mapping"] == {"ant": 0, "bee": 1, "cat": 2}
    train_rows = record["indices"]["train"]
    sizes = np.array([10 + i % 7 for i in train_rows], float)
    assert record["standardization"]["size"]["mean"] == pytest.approx(sizes.mean())
    assert data.x_train[:, 0].mean() == pytest.approx(0.0, abs=1e-6)
    assert data.x_train[:, 0].std() == pytest.approx(1.0, abs=1e-5)
    seen = record["categories"]["color"]
    assert record["features"] == ["size", *(f"color={c}" for c in seen)]
    assert np.all(data.x_train[:, 1:].sum(axis=1) == 1)  # one-hot
    labels = [["cat", "ant", "bee"][i % 3] for i in range(60)]
    expected = np.array([{"ant": 0, "bee": 1, "cat": 2}[labels[i]] for i in train_rows])
    np.testing.assert_array_equal(data.y_train, expected)
    if 59 not in train_rows:  # the only 'blue' row: unseen in training -> all zeros
        assert "blue" not in seen
        part = "val" if 59 in record["indices"]["val"] else "test"
        x = data.x_val if part == "val" else data.x_test
        row = record["indices"][part].index(59)
        assert x[row, 1:].sum() == 0


def test_synthetic_is_learnable_and_seeded() -> None:
    a = load("synthetic", shape=[16], classes=3, num_samples=90, separation=3.0, split=SPLIT)
    assert (a.kind, a.input_shape, a.num_classes) == ("tabular", (16,), 3)
    means = np.stack([a.x_train[a.y_train == c].mean(0) for c in range(3)])
    nearest = np.argmin(((a.x_test[:, None, :] - means[None]) ** 2).sum(-1), axis=1)
    assert (nearest == a.y_test).mean() > 0.9
    b = load("synthetic", shape=[16], classes=3, num_samples=90, separation=3.0, split=SPLIT)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    seq = load("synthetic", shape=[12, 2], classes=2, num_samples=40)
    assert (seq.kind, seq.input_shape) == ("sequence", (12, 2))
    image = load("synthetic", shape=[5, 5], classes=2, num_samples=40)
    assert (image.kind, image.input_shape) == ("image", (5, 5, 1))


def test_tfds_missing_package_is_one_clear_line(tmp_path: Path) -> None:
    import importlib.util

    if importlib.util.find_spec("tensorflow_datasets") is not None:
        pytest.skip("tensorflow_datasets is installed here")
    with pytest.raises(DataError) as info:
        load("tfds", root=tmp_path, name="mnist", data_dir="tfds_data")
    assert info.value.exit_code == 2
    assert str(info.value) == (
        "the tensorflow_datasets package is not installed; run `pip install "
        f"tensorflow-datasets`, and have 'mnist' prepared in {tmp_path / 'tfds_data'} (on a "
        f"machine with network: tfds build mnist --data_dir {tmp_path / 'tfds_data'}; effdl "
        "never downloads)"
    )


def test_relative_paths_resolve_against_the_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "data").mkdir()
    np.savez(tmp_path / "data" / "d.npz", x=np.ones((30, 2)), y=np.arange(30) % 3)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert load("npz", root=tmp_path, path="data/d.npz", split=SPLIT).num_classes == 3
    with pytest.raises(DataError):
        load("npz", path="data/d.npz")  # default root: the working directory
