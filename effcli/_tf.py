"""The one place that imports TensorFlow, tf_keras and TF-MOT, and that sets how TensorFlow runs.

TF-MOT only works with legacy Keras, which TensorFlow selects from TF_USE_LEGACY_KERAS at its
first import; so the environment is set before anything is imported. `tf`, `keras` and `tfmot`
are imported on first use (`from effcli._tf import keras` inside a function), so commands that
train nothing never pay the seconds of the TensorFlow import, and importing this module alone
(for `ENVIRONMENT`, say) costs nothing.

Threads: TensorFlow's float reductions are not bit-identical across intra-op thread counts, so
every node runs with the same count under every executor (`configure`, called once per process
before the first op), and the count is recorded with each node.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from effcli._native import native_quiet  # the import itself logs to fd 2

# What a process that trains must have in its environment before TensorFlow is imported.
ENVIRONMENT = {"TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
THREADS_VARIABLE = "EFFDL_TF_THREADS"  # intra-op threads per node; every executor honours it
DEFAULT_THREADS = 1

_state: dict[str, Any] = {"configured": None, "deterministic": False}


def _load() -> None:
    os.environ["TF_USE_LEGACY_KERAS"] = ENVIRONMENT["TF_USE_LEGACY_KERAS"]
    # C++ info/warning chatter is noise for users (effdl --debug shows it).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", ENVIRONMENT["TF_CPP_MIN_LOG_LEVEL"])
    with native_quiet():
        import tensorflow as tf
        import tensorflow_model_optimization as tfmot
        import tf_keras as keras

    tf.get_logger().setLevel("ERROR")
    warnings.filterwarnings(
        "ignore", message="Statistics for quantized inputs", category=UserWarning
    )
    globals().update(tf=tf, keras=keras, tfmot=tfmot)


def __getattr__(name: str) -> Any:
    """`tf`, `keras`, `tfmot`: imported on first access (PEP 562)."""
    if name in ("tf", "keras", "tfmot"):
        _load()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def node_threads() -> int:
    """Intra-op threads every node runs with: EFFDL_TF_THREADS, else 1 (the same number
    under every executor, so a node's numbers do not depend on where it ran)."""
    raw = os.environ.get(THREADS_VARIABLE, "")
    try:
        return max(1, int(raw)) if raw else DEFAULT_THREADS
    except ValueError:
        return DEFAULT_THREADS


def configure(threads: int | None = None) -> dict[str, Any]:
    """Fix TensorFlow's thread pools for this process (once, before its first op); returns the
    settings in force, for the records. A second call with other threads keeps the first."""
    if _state["configured"] is None:
        intra = threads or node_threads()
        tf = __getattr__("tf")
        try:
            tf.config.threading.set_intra_op_parallelism_threads(intra)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:  # TensorFlow already ran an op in this process: report what it uses
            intra = int(tf.config.threading.get_intra_op_parallelism_threads() or 0)
        _state["configured"] = {"intra_op_threads": intra, "inter_op_threads": 1}
    return dict(_state["configured"])


def build() -> dict[str, Any]:
    """The TensorFlow build this process runs (version, commit, CUDA or not)."""
    tf = __getattr__("tf")
    info = dict(tf.sysconfig.get_build_info())
    return {
        "version": tf.__version__,
        "git_version": tf.version.GIT_VERSION,
        "cuda": bool(info.get("is_cuda_build", False)),
    }


def gpus() -> list[str]:
    """The GPUs TensorFlow sees in this process (a worker sees the one it was given)."""
    tf = __getattr__("tf")
    return [device.name for device in tf.config.list_physical_devices("GPU")]


def reset_gpu_peak() -> None:
    """Start a new peak of GPU memory (first GPU: a worker has one)."""
    __getattr__("tf").config.experimental.reset_memory_stats("GPU:0")


def gpu_peak_bytes() -> int:
    """Peak bytes TensorFlow's allocator held on the first GPU since the last reset."""
    return int(__getattr__("tf").config.experimental.get_memory_info("GPU:0")["peak"])


@contextmanager
def precision_policy(mixed: bool) -> Iterator[None]:
    """Build and train what runs inside in mixed_float16 (a GPU's fast path), then go back to
    float32. Refused without a GPU: on CPU float16 math is emulated, slower, and changes the
    numbers, so a recipe asking for it would silently measure something else."""
    if not mixed:
        yield
        return
    from effcli.errors import StageFailed

    if not gpus():
        raise StageFailed(
            "train.mixed_precision needs a GPU and TensorFlow sees none: remove "
            "mixed_precision (or set it false) to train on this CPU"
        )
    keras = __getattr__("keras")
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")


def set_determinism(on: bool) -> None:
    """TensorFlow op determinism on or off for what runs next in this process."""
    if on == _state["deterministic"]:
        return
    tf = __getattr__("tf")
    if on:
        tf.config.experimental.enable_op_determinism()
    else:  # TensorFlow has no public switch back; this is what enable_op_determinism sets
        from tensorflow.python.framework import config as tf_config

        tf_config.disable_op_determinism()
    _state["deterministic"] = on


def determinism() -> bool:
    return bool(_state["deterministic"])


def default_8bit_quantize() -> tuple[Any, Any]:
    """TF-MOT's plain 8-bit registry and quantize-config modules (not in its public API): QAT
    gives chosen layers their plain config. Private imports of TF-MOT live here only."""
    __getattr__("tfmot")
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_configs,
        default_8bit_quantize_registry,
    )

    return default_8bit_quantize_registry, default_8bit_quantize_configs


def efficientnet_builder() -> Any:
    """tf_keras' EfficientNet constructor with free width/depth coefficients (the public API
    has only B0..B7). Private imports of tf_keras live here only."""
    __getattr__("keras")
    from tf_keras.src.applications.efficientnet import EfficientNet

    return EfficientNet


# `tf`, `keras` and `tfmot` are public too, served by __getattr__ on first use.
__all__ = [
    "ENVIRONMENT",
    "build",
    "configure",
    "default_8bit_quantize",
    "determinism",
    "gpu_peak_bytes",
    "gpus",
    "node_threads",
    "precision_policy",
    "reset_gpu_peak",
    "set_determinism",
]
