"""The one place that imports TensorFlow, tf_keras and TF-MOT.

TF-MOT only works with legacy Keras, which TensorFlow selects from TF_USE_LEGACY_KERAS at its
first import; so this module sets it before importing anything. Import from here lazily (inside
functions) so commands that train nothing never pay the ~2.5 s TensorFlow import.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # C++ info/warning chatter is noise for users


@contextmanager
def native_quiet() -> Iterator[None]:
    """Send C++ log lines written straight to fd 2 (absl, converter) to /dev/null.

    Errors still surface as Python exceptions; EFFDL_DEBUG=1 (or --debug) keeps the output.
    """
    if os.environ.get("EFFDL_DEBUG", "") not in ("", "0"):
        yield
        return
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


with native_quiet():
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras

tf.get_logger().setLevel("ERROR")
warnings.filterwarnings("ignore", message="Statistics for quantized inputs", category=UserWarning)

__all__ = ["keras", "native_quiet", "tf", "tfmot"]
