"""What stages pass along and the cache stores: a Keras model or a TFLite flatbuffer.

Each kind knows how to save and load itself and how to become a deployable .tflite, so the runner
can cache and export any stage's output without knowing the technique that produced it.
"""

from __future__ import annotations

import os
import shutil
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from effcli.results.rundir import KERAS_FILE, TFLITE_FILE


class Artifact(ABC):
    kind: ClassVar[str]

    @abstractmethod
    def save(self, folder: Path) -> None:
        """Write into `folder` (which the caller renames into place atomically)."""

    @classmethod
    @abstractmethod
    def load(cls, folder: Path) -> Artifact: ...

    @abstractmethod
    def to_tflite(self) -> TFLiteModel:
        """The deployable form of this artifact."""


class KerasModel(Artifact):
    """A plain (stripped) tf_keras model; exported as float32 TFLite when nothing quantized it.

    `file` is where this very model is already stored (the cache entry it was loaded from or
    saved to): saving it again links that file instead of serializing the model once more."""

    kind = "keras"

    def __init__(self, model: Any, file: Path | None = None) -> None:
        self.model = model
        self.file = file

    def save(self, folder: Path) -> None:
        target = folder / KERAS_FILE
        if self.file is not None and self.file.is_file():
            try:
                os.link(self.file, target)  # the same bytes, nothing to serialize or copy
            except OSError:  # another file system, or links not supported
                shutil.copyfile(self.file, target)
            return
        self.model.save(target)

    @classmethod
    def load(cls, folder: Path) -> KerasModel:
        from effcli._tf import keras

        file = folder / KERAS_FILE
        return cls(keras.models.load_model(file, compile=False), file=file)

    def to_tflite(self) -> TFLiteModel:
        from effcli._tf import tf

        converter = tf.lite.TFLiteConverter.from_keras_model(self.model)
        content = converter.convert()
        return TFLiteModel(content, source=self)


class TFLiteModel(Artifact):
    """A converted flatbuffer, with the Keras model it came from (for Keras-side metrics)."""

    kind = "tflite"

    def __init__(self, content: bytes, source: KerasModel | None = None) -> None:
        self.content = content
        self.source = source

    def save(self, folder: Path) -> None:
        (folder / TFLITE_FILE).write_bytes(self.content)
        if self.source is not None:
            self.source.save(folder)

    @classmethod
    def load(cls, folder: Path) -> TFLiteModel:
        source = KerasModel.load(folder) if (folder / KERAS_FILE).exists() else None
        return cls((folder / TFLITE_FILE).read_bytes(), source=source)

    def to_tflite(self) -> TFLiteModel:
        return self


ARTIFACT_KINDS: dict[str, type[Artifact]] = {cls.kind: cls for cls in (KerasModel, TFLiteModel)}
