"""Every data problem is one line with its fix, checked word for word: before loading
(`Dataset.check`, for validation), while loading (DataError, exit 2), and in the recipe."""

from __future__ import annotations

import pickle
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from effcli.data.base import DataError, datasets
from effcli.errors import RecipeError
from effcli.plan import load_plan
from tests.unit.test_data_sources import load, write_cifar, write_image_folder

SPLIT = {"train": 0.6, "val": 0.2, "test": 0.2}
CIFAR = (
    "the CIFAR-10 python version (the extracted cifar-10-batches-py folder with "
    "data_batch_1..5 and test_batch)"
)


def error_of(source: str, root: Path | None = None, **spec: Any) -> str:
    with pytest.raises(DataError) as info:
        load(source, root=root, **spec)
    assert info.value.exit_code == 2
    message = str(info.value)
    assert "\n" not in message
    return message


def problems(source: str, root: Path, **spec: Any) -> list[tuple[tuple[Any, ...], str]]:
    dataset = datasets.get(source)
    return list(dataset.check(dataset.Params.model_validate(spec), root))


# --- missing paths: known from the recipe, so `check` reports them for validation ----------


@pytest.mark.parametrize(
    ("source", "spec", "key", "text"),
    [
        ("cifar10", {"path": "cifar"}, "path", f"put {CIFAR} there, or fix data.path"),
        (
            "image_folder",
            {"path": "cifar", "image_size": [8, 8]},
            "path",
            "put one subfolder per class holding its images (path/<class>/*.png) there, or fix "
            "data.path",
        ),
        (
            "csv",
            {"path": "cifar", "label": "y"},
            "path",
            "put a CSV file with a header row and a label column there, or fix data.path",
        ),
        (
            "npz",
            {"path": "cifar"},
            "path",
            "put an .npz file (numpy.savez) with the inputs and labels there, or fix data.path",
        ),
        (
            "tfds",
            {"name": "mnist", "data_dir": "cifar"},
            "data_dir",
            "put the prepared TFDS dataset 'mnist' (made by tfds build) there, or fix "
            "data.data_dir",
        ),
    ],
)
def test_missing_path(
    tmp_path: Path, source: str, spec: dict[str, Any], key: str, text: str
) -> None:
    message = f"{tmp_path / 'cifar'} does not exist; {text}"
    assert problems(source, tmp_path, **spec) == [(("data", key), message)]
    if source != "tfds":  # tfds first says the package is missing (not installed here)
        assert error_of(source, tmp_path, **spec) == f"data.{key}: {message}"


def test_npz_train_file_missing(tmp_path: Path) -> None:
    np.savez(tmp_path / "te.npz", x=np.ones((4, 2)), y=np.arange(4) % 2)
    assert problems("npz", tmp_path, train_path="tr.npz", test_path="te.npz") == [
        (
            ("data", "train_path"),
            f"{tmp_path / 'tr.npz'} does not exist; put an .npz file (numpy.savez) with the "
            "inputs and labels there, or fix data.train_path",
        )
    ]


def test_folder_where_a_file_is_expected(tmp_path: Path) -> None:
    assert problems("csv", tmp_path, path=".", label="y") == [
        (
            ("data", "path"),
            f"{tmp_path / '.'} is a folder, not a file; data.path must be a CSV file with a "
            "header row and a label column",
        )
    ]


# --- wrong archive layout ------------------------------------------------------------------


def test_cifar_missing_batch_is_named(tmp_path: Path) -> None:
    folder = write_cifar(tmp_path / "c", per_batch=2, skip=("data_batch_3",))
    assert error_of("cifar10", path=str(folder)) == (
        f"data.path: {folder} has no data_batch_3; data.path must be {CIFAR}"
    )


def test_cifar_parent_folder_points_to_the_inner_one(tmp_path: Path) -> None:
    write_cifar(tmp_path / "cifar-10-batches-py", per_batch=2)
    assert problems("cifar10", tmp_path, path=".") == [
        (
            ("data", "path"),
            f"{tmp_path / '.'} has no data_batch_1; it holds cifar-10-batches-py: point "
            f"data.path at {tmp_path / '.' / 'cifar-10-batches-py'}",
        )
    ]


def test_cifar_archive_not_extracted(tmp_path: Path) -> None:
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"\x1f\x8b")
    assert problems("cifar10", tmp_path, path="cifar-10-python.tar.gz") == [
        (
            ("data", "path"),
            f"{tmp_path / 'cifar-10-python.tar.gz'} is the archive; extract it (tar xzf "
            "cifar-10-python.tar.gz) and point data.path at the cifar-10-batches-py folder it "
            "makes",
        )
    ]


def test_cifar_batch_of_the_wrong_format(tmp_path: Path) -> None:
    folder = write_cifar(tmp_path / "c", per_batch=2)
    with (folder / "data_batch_2").open("wb") as handle:
        pickle.dump({"data": [1, 2]}, handle)
    assert error_of("cifar10", path=str(folder)) == (
        f"{folder / 'data_batch_2'}: not a CIFAR-10 python batch (a pickled dict with b'data' "
        "and b'labels' is expected); replace it with the file from cifar-10-python.tar.gz"
    )
    (folder / "data_batch_2").write_text("not a pickle")
    assert error_of("cifar10", path=str(folder)).startswith(
        f"{folder / 'data_batch_2'}: not a CIFAR-10 python batch (UnpicklingError: "
    )


# --- image folders -------------------------------------------------------------------------


def test_empty_class_folder(tmp_path: Path) -> None:
    folder = write_image_folder(tmp_path / "p", {"a": 3, "b": 3})
    (folder / "c").mkdir()
    (folder / "c" / "readme.txt").write_text("no images here")
    assert error_of("image_folder", path=str(folder), image_size=[4, 4]) == (
        f"class folder {folder / 'c'} has no images (.bmp, .gif, .jpeg, .jpg, .png); add "
        "images or remove the folder"
    )


def test_images_without_class_folders(tmp_path: Path) -> None:
    folder = write_image_folder(tmp_path / "p", {"only": 3})
    assert error_of("image_folder", path=str(folder), image_size=[4, 4]) == (
        f"{folder} has 1 class subfolder(s); put each class's images in its own subfolder "
        "(path/<class>/*.png), at least 2 classes"
    )


def test_unreadable_image(tmp_path: Path) -> None:
    folder = write_image_folder(tmp_path / "p", {"a": 5, "b": 5})
    (folder / "b" / "broken.png").write_bytes(b"not a png")
    assert error_of("image_folder", path=str(folder), image_size=[4, 4], split=SPLIT) == (
        f"cannot read image {folder / 'b' / 'broken.png'}: cannot identify image file; "
        "remove or replace the file"
    )


# --- npz arrays ----------------------------------------------------------------------------


def save(tmp_path: Path, x: Any, y: Any, name: str = "d.npz") -> Path:
    np.savez(tmp_path / name, x=x, y=y)
    return tmp_path / name


def test_labels_outside_0_to_n_minus_1_are_refused(tmp_path: Path) -> None:
    path = save(tmp_path, np.ones((30, 2)), np.arange(30) % 3 + 1)  # 1-based
    assert error_of("npz", path=str(path)) == (
        f"{path}: labels must be 0..2 for 3 classes; found 3; relabel them to 0..2 (or set "
        "data.num_classes if a class is absent)"
    )
    path = save(tmp_path, np.ones((30, 2)), np.array([0, 1, 7, -1, 9] * 6))
    assert error_of("npz", path=str(path), num_classes=5) == (
        f"{path}: labels must be 0..4 for 5 classes; found -1, 7, 9; relabel them to 0..4"
    )


def test_one_hot_or_fractional_labels_are_refused(tmp_path: Path) -> None:
    path = save(tmp_path, np.ones((4, 2)), np.eye(4))
    assert error_of("npz", path=str(path)) == (
        f"{path}: labels must be one class index per sample, shape (N,) (got shape (4, 4)); "
        "store integer labels, not one-hot rows"
    )
    path = save(tmp_path, np.ones((4, 2)), np.array([0.5, 1, 0, 1]))
    assert error_of("npz", path=str(path)) == (
        f"{path}: labels must be whole numbers 0..n-1 (got dtype float64); map each class to "
        "an index first"
    )


def test_x_and_y_lengths_differ(tmp_path: Path) -> None:
    path = save(tmp_path, np.ones((30, 2)), np.arange(29) % 3)
    assert error_of("npz", path=str(path)) == (
        f"{path}: x has 30 samples but y has 29; both need one entry per sample"
    )


def test_npz_missing_array_and_npy_file(tmp_path: Path) -> None:
    path = save(tmp_path, np.ones((30, 2)), np.arange(30) % 3)
    assert error_of("npz", path=str(path), y_key="labels") == (
        f"{path}: no array 'labels' (arrays: x, y); set data.x_key and data.y_key to the names "
        "used in the file"
    )
    np.save(tmp_path / "x.npy", np.ones(3))
    (tmp_path / "x.npz").write_bytes((tmp_path / "x.npy").read_bytes())
    assert error_of("npz", path=str(tmp_path / "x.npz")) == (
        f"{tmp_path / 'x.npz'}: a single .npy array, not an .npz archive; write both arrays "
        "with numpy.savez(path, x=..., y=...)"
    )


def test_npz_train_and_test_shapes_differ(tmp_path: Path) -> None:
    save(tmp_path, np.ones((30, 2)), np.arange(30) % 3, "tr.npz")
    test = save(tmp_path, np.ones((6, 3)), np.arange(6) % 3, "te.npz")
    assert error_of("npz", tmp_path, train_path="tr.npz", test_path="te.npz") == (
        f"{test}: test inputs have shape (3,) per sample but the train file's have (2,); both "
        "files need the same sample shape"
    )


# --- splits --------------------------------------------------------------------------------


def test_split_with_fewer_samples_than_classes(tmp_path: Path) -> None:
    path = save(tmp_path, np.ones((40, 2)), np.arange(40) % 10)
    assert error_of("npz", path=str(path)) == (
        "split 'val' would get 5 sample(s) for 10 classes, too few to stratify (train 27, val "
        "5, test 8 of 40 in the data); use more data or a larger data.split.val"
    )


def test_source_test_split_only_train_and_val_are_checked(tmp_path: Path) -> None:
    folder = write_cifar(tmp_path / "c", per_batch=4)  # classes 0..7 in the training batches
    assert error_of("cifar10", path=str(folder)) == (
        "split 'val' would get 3 sample(s) for 8 classes, too few to stratify (train 17, val "
        "3 of 20 in the source split 'data_batch_1..5'); use more data or a larger "
        "data.split.val"
    )


def test_class_with_a_single_sample(tmp_path: Path) -> None:
    y = np.array([0] * 15 + [1] * 14 + [2])
    path = save(tmp_path, np.ones((30, 2)), y)
    assert error_of("npz", path=str(path), split=SPLIT) == (
        "class(es) 2 have a single sample in the data; stratified splitting needs at least 2 "
        "per class: add samples of those classes or remove them"
    )


def test_max_samples_below_the_class_count() -> None:
    assert error_of("digits", max_samples=5) == (
        "data.max_samples is 5 but split 'train' has 10 classes; a stratified subsample needs "
        "one sample per class: use max_samples >= 10"
    )


# --- csv -----------------------------------------------------------------------------------


def test_csv_label_column_missing_or_empty(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a,target\n1,x\n2,y\n3,\n")
    assert error_of("csv", path=str(path), label="targt") == (
        f"data.label: no column 'targt' in {path} (did you mean 'target'?); columns: a, target"
    )
    assert error_of("csv", path=str(path), label="target") == (
        f"{path}: label column 'target' is empty in 1 row(s) (first on line 4); fill those "
        "labels or delete the rows"
    )


# --- recipe-level errors: the Params of each source, located in the file -------------------


def recipe_error(tmp_path: Path, data: str) -> str:
    path = tmp_path / "r.yaml"
    path.write_text(textwrap.dedent(f"name: t\ndata:\n{data}pipeline: [{{stage: train}}]\n"))
    with pytest.raises(RecipeError) as info:
        load_plan(path)
    return str(info.value).replace(str(path), "r.yaml")


def test_recipe_errors_name_line_and_fix(tmp_path: Path) -> None:
    assert recipe_error(tmp_path, "  source: npz\n  x_key: a\n") == (
        "r.yaml:2: data: give either path, or both train_path and test_path"
    )
    assert recipe_error(tmp_path, "  source: mnist1d\n  num_samples: 105\n") == (
        "r.yaml:4: data.num_samples: input should be a multiple of 10 (got 105); allowed: "
        "signals generated in total (an equal number per digit; the generator's own 80/20 "
        "split gives the test split), a multiple of 10 from 100 to 1000000"
    )
    assert recipe_error(
        tmp_path, "  source: image_folder\n  path: p\n  image_size: [8, 8]\n  colour: rgb\n"
    ) == (
        "r.yaml:6: data.colour: unknown key 'colour' (did you mean 'color'?); allowed keys: "
        "color, image_size, max_samples, normalize, path, save_test, source, split"
    )
    assert recipe_error(tmp_path, "  source: synthetic\n  shape: [4]\n  kind: image\n") == (
        "r.yaml:2: data: kind image needs a shape of 2 or 3 size(s) (got [4])"
    )
    assert recipe_error(tmp_path, "  source: digits\n  max_samples: 0\n") == (
        "r.yaml:4: data.max_samples: must be >= 1 (got 0); allowed: at most this many samples "
        "per split (train, val, test), a stratified subsample taken after splitting, for quick "
        "runs; a whole number >= 1, or omit it"
    )
