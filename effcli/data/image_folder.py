"""A folder of class subfolders (path/<class>/<image>), read with Pillow, like Keras's
`image_dataset_from_directory`: class index = position of the subfolder name in sorted order,
images anywhere below a class folder, other files ignored."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from effcli.data.base import (
    DataError,
    DataParams,
    Dataset,
    DataSplits,
    datasets,
    path_problem,
    resolve_path,
    stratified_split,
)
from effcli.recipe.source import Loc

EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")  # what Keras reads
_WHAT = "one subfolder per class holding its images (path/<class>/*.png)"

Side = Annotated[int, Field(ge=1, le=4096)]


class ImageFolderParams(DataParams):
    path: str = Field(description="the folder with one subfolder per class; relative to the recipe")
    image_size: tuple[Side, Side] = Field(
        description="[height, width] every image is resized to (bilinear), each 1..4096"
    )
    color: Literal["grayscale", "rgb"] = Field(
        "rgb", description="grayscale (1 channel) | rgb (3 channels; alpha dropped)"
    )


def _images(folder: Path) -> list[Path]:
    """Image files anywhere below `folder`, in a stable order."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file())


@datasets.register("image_folder")
class ImageFolderDataset(Dataset[ImageFolderParams]):
    """Images resized to `image_size`, in grayscale or RGB, scaled to [0, 1] as float32."""

    Params = ImageFolderParams
    kind = "image"

    @classmethod
    def check(cls, params: ImageFolderParams, root: str | Path) -> Iterable[tuple[Loc, str]]:
        problem = path_problem(resolve_path(params.path, root), "dir", _WHAT)
        if problem:
            yield ("data", "path"), problem

    def load(self, params: ImageFolderParams, seed: int) -> DataSplits:
        self.ensure_ready(params)
        from PIL import Image, UnidentifiedImageError

        root = resolve_path(params.path, self.root)
        classes = sorted(
            p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
        )
        if len(classes) < 2:
            raise DataError(
                f"{root} has {len(classes)} class subfolder(s); put each class's images in "
                "its own subfolder (path/<class>/*.png), at least 2 classes"
            )
        files: list[Path] = []
        labels: list[int] = []
        for index, name in enumerate(classes):
            found = _images(root / name)
            if not found:
                raise DataError(
                    f"class folder {root / name} has no images ({', '.join(EXTENSIONS)}); "
                    "add images or remove the folder"
                )
            files += found
            labels += [index] * len(found)

        height, width = params.image_size
        mode = "L" if params.color == "grayscale" else "RGB"
        x = np.empty((len(files), height, width, 1 if mode == "L" else 3), np.uint8)
        for i, file in enumerate(files):
            try:
                with Image.open(file) as opened:
                    image = opened.convert(mode).resize((width, height), Image.Resampling.BILINEAR)
                    x[i] = np.asarray(image).reshape(x.shape[1:])
            except (UnidentifiedImageError, OSError, ValueError) as exc:
                reason = str(exc).split(" '")[0] if isinstance(exc, UnidentifiedImageError) else exc
                raise DataError(
                    f"cannot read image {file}: {reason}; remove or replace the file"
                ) from None
        return stratified_split(
            x,
            np.asarray(labels, np.int64),
            params.split,
            seed,
            kind=self.kind,
            num_classes=len(classes),
            max_samples=params.max_samples,
            prepare=lambda a: a.astype(np.float32) / 255.0,
            info={
                "class_names": classes,
                "files": [str(f.relative_to(root)) for f in files],
            },
        )
