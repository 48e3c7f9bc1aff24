"""Models users bring: `model: {factory: "pkg.module:function", args: {...}}` or `{path: file}`.

`factory` RUNS USER CODE: the named module is imported (from the recipe's folder first, then the
Python path) only when a stage builds the model, never by `validate` or `plan`, and only that
module. The function gets `input_shape`, `num_classes` and the recipe's `args` as keyword
arguments and must return an uncompiled tf_keras Functional or Sequential model that outputs
logits (TF-MOT cannot wrap subclassed or Keras 3 models). `path` loads a saved tf_keras model
(.keras, .h5 or a SavedModel folder) with its weights, to start from a trained model; a `train`
stage with `epochs: 0` keeps it as it is. A file Keras 3 saved is refused at validation, with how
to rebuild it in tf_keras. Node keys include the module's or file's content hash,
so editing the code or replacing the file reruns what depends on it.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import sys
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ConfigDict, Field

from effcli.models.base import FamilyParams, ModelFamily, families

if TYPE_CHECKING:
    from effcli._tf import keras


def file_digest(path: Path) -> str:
    """sha256 of a file, or of every file (names and bytes) under a folder."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def saved_by_keras3(path: Path) -> str | None:
    """The Keras version that saved `path` when it is Keras 3 (which tf_keras cannot load), read
    without TensorFlow: a .keras file is a zip whose metadata.json names `keras_version`, an .h5
    file has it as an attribute. None for tf_keras files and anything unreadable (the loader
    then says what is wrong)."""
    version = ""
    if path.suffix == ".keras" and zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                version = str(json.loads(archive.read("metadata.json")).get("keras_version", ""))
        except (KeyError, ValueError, OSError, zipfile.BadZipFile):
            return None
    elif path.suffix in (".h5", ".hdf5") and path.is_file():
        try:
            import h5py  # a tf_keras dependency, without TensorFlow

            with h5py.File(path, "r") as handle:
                raw = handle.attrs.get("keras_version", "")
            version = raw.decode() if isinstance(raw, bytes) else str(raw)
        except (ImportError, OSError):
            return None
    major = version.split(".")[0]
    return version if major.isdigit() and int(major) >= 3 else None


def keras3_refusal(path: str, version: str) -> str:
    """One line: what the file is and the two ways to a model effdl can train."""
    return (
        f"{path} was saved by Keras 3 (keras {version}), which tf_keras cannot load; effdl "
        "trains tf_keras models (TF-MOT needs them): rebuild the same layers with `import "
        "tf_keras as keras`, copy the weights (`new.set_weights(keras3_model.get_weights())`) "
        "and save that with `new.save(...)`, or build the model in a factory (README 'Models "
        "users bring')"
    )


class FactoryParams(FamilyParams):
    """The function to call; any other key is passed to it as a keyword argument."""

    model_config = ConfigDict(extra="allow", frozen=True)

    factory: str = Field(description="'package.module:function'")
    search_path: str = Field(description="the recipe's folder, searched first for the module")


class PathParams(FamilyParams):
    path: str = Field(description="a saved tf_keras model (.keras/.h5/SavedModel folder)")


def _module_origin(module: str, search_path: str) -> str | None:
    """Where `module` would be imported from, without importing it or its parent packages
    (`importlib.util.find_spec("a.b")` would import `a`): None when it is not found."""
    parts = module.split(".")
    local = Path(search_path, *parts)
    for candidate in (local.with_suffix(".py"), local / "__init__.py"):
        if candidate.is_file():
            return str(candidate)
    try:
        spec = importlib.util.find_spec(parts[0])  # a top-level lookup imports nothing
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if len(parts) == 1:
        return spec.origin
    for folder in spec.submodule_search_locations or []:
        inner = Path(folder, *parts[1:])
        for candidate in (inner.with_suffix(".py"), inner / "__init__.py"):
            if candidate.is_file():
                return str(candidate)
    return None


def _forget_local_modules(module: str, search_path: str) -> None:
    """Drop cached imports that would not be the code whose digest keyed the node: a module
    (or parent package) kept next to the recipe is always re-read (it may have been edited
    since an earlier node imported it), and a cached module from another place (another
    recipe's folder with a module of the same name) is replaced. Installed packages that
    resolve to the same file stay cached."""
    parts = module.split(".")
    folder = Path(search_path).resolve()
    for name in (".".join(parts[: i + 1]) for i in range(len(parts))):
        cached = getattr(sys.modules.get(name), "__file__", None)
        if cached is None:
            continue
        expected = _module_origin(name, search_path)
        local = expected is not None and Path(expected).resolve().is_relative_to(folder)
        if local or expected is None or Path(cached).resolve() != Path(expected).resolve():
            del sys.modules[name]
    importlib.invalidate_caches()


def check_tf_keras_model(model: Any, what: str) -> None:
    """A tf_keras Functional/Sequential model, or a ValueError saying what it is instead."""
    from effcli._tf import keras

    if not isinstance(model, keras.Model):
        kind = f"{type(model).__module__}.{type(model).__name__}"
        hint = (
            " (a Keras 3 model: build it with `import tf_keras as keras`)"
            if kind.startswith("keras.")
            else ""
        )
        raise ValueError(f"{what} is a {kind}, not a tf_keras model{hint}")
    if not getattr(model, "_is_graph_network", False):
        raise ValueError(
            f"{what} is a subclassed tf_keras model; TF-MOT can only wrap Functional or "
            "Sequential models"
        )


@families.register("factory")
class FactoryFamily(ModelFamily[FactoryParams]):
    """A user function building the model."""

    Params = FactoryParams
    data_kinds = ("image", "sequence", "tabular")

    @classmethod
    def check(cls, params: FactoryParams) -> Iterable[tuple[tuple[Any, ...], str]]:
        module = params.factory.split(":")[0]
        if _module_origin(module, params.search_path) is None:
            yield (
                ("factory",),
                f"module '{module}' not found next to the recipe or on the Python path; "
                "check the name or install the package",
            )

    @classmethod
    def fingerprint(cls, params: FactoryParams) -> dict[str, Any]:
        origin = _module_origin(params.factory.split(":")[0], params.search_path)
        return {"module_sha256": file_digest(Path(origin))} if origin else {}

    def build(
        self, params: FactoryParams, input_shape: tuple[int, ...], num_classes: int
    ) -> keras.Model:
        module_name, function_name = params.factory.split(":")
        kwargs = dict(params.model_extra or {})
        _forget_local_modules(module_name, params.search_path)
        sys.path.insert(0, params.search_path)
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # the user's module failed to import: say so in one line
            raise ValueError(
                f"importing {module_name} failed: {type(exc).__name__}: {exc}"
            ) from None
        finally:
            sys.path.remove(params.search_path)
        function = getattr(module, function_name, None)
        if not callable(function):
            raise ValueError(f"{module_name} has no function {function_name}")
        try:
            model = function(input_shape=tuple(input_shape), num_classes=num_classes, **kwargs)
        except Exception as exc:
            raise ValueError(f"{params.factory} raised {type(exc).__name__}: {exc}") from None
        check_tf_keras_model(model, f"what {params.factory} returned")
        return logits_model(model)


@families.register("path")
class PathFamily(ModelFamily[PathParams]):
    """A saved, possibly trained, tf_keras model."""

    Params = PathParams
    data_kinds = ("image", "sequence", "tabular")

    @classmethod
    def check(cls, params: PathParams) -> Iterable[tuple[tuple[Any, ...], str]]:
        path = Path(params.path)
        if not path.exists():
            yield ("path",), f"no model at {params.path}; save one there or fix the path"
        elif version := saved_by_keras3(path):
            yield ("path",), keras3_refusal(params.path, version)

    @classmethod
    def fingerprint(cls, params: PathParams) -> dict[str, Any]:
        path = Path(params.path)
        return {"sha256": file_digest(path)} if path.exists() else {}

    def build(
        self, params: PathParams, input_shape: tuple[int, ...], num_classes: int
    ) -> keras.Model:
        from effcli._tf import keras

        if version := saved_by_keras3(Path(params.path)):  # replaced since it was planned
            raise ValueError(keras3_refusal(params.path, version))
        try:
            model = keras.models.load_model(params.path, compile=False)
        except Exception as exc:
            reason = " ".join(str(exc).split())[:200]
            raise ValueError(f"cannot load {params.path}: {reason}") from None
        check_tf_keras_model(model, params.path)
        if tuple(model.input_shape[1:]) != tuple(input_shape):
            raise ValueError(
                f"{params.path} takes inputs of shape {tuple(model.input_shape[1:])}, the data "
                f"has {tuple(input_shape)}"
            )
        if model.output_shape[-1] != num_classes:
            raise ValueError(
                f"{params.path} predicts {model.output_shape[-1]} classes, the data has "
                f"{num_classes}"
            )
        return logits_model(model)


def logits_model(model: Any) -> Any:
    """The model itself when it outputs logits; else the same model with a linear last layer.

    Distillation softens logits with T; a teacher ending in softmax would be softened twice.
    """
    from effcli._tf import keras

    last = model.layers[-1]
    activation = getattr(last, "activation", None)
    name = getattr(activation, "__name__", "")
    if last.__class__.__name__ == "Softmax" or (
        last.__class__.__name__ == "Activation" and name == "softmax"
    ):
        return keras.Model(model.inputs, last.input, name=f"{model.name}_logits")
    if name == "softmax":
        config = {**last.get_config(), "activation": "linear"}
        head = last.__class__.from_config(config)
        outputs = head(last.input)
        head.set_weights(last.get_weights())
        return keras.Model(model.inputs, outputs, name=f"{model.name}_logits")
    if name not in ("linear", ""):
        raise ValueError(
            f"the model's last layer applies '{name}'; effdl needs logits or softmax outputs"
        )
    return model
