"""The one place that imports TensorFlow, tf_keras and TF-MOT.

TF-MOT only works with legacy Keras, which TensorFlow selects from TF_USE_LEGACY_KERAS at its
first import; so this module sets it before importing anything. Import from here lazily (inside
functions) so commands that train nothing never pay the ~2.5 s TensorFlow import.
"""

from __future__ import annotations

import os
import warnings

from effcli._native import native_quiet  # the import itself logs to fd 2

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # C++ info/warning chatter is noise for users


with native_quiet():
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras

tf.get_logger().setLevel("ERROR")
warnings.filterwarnings("ignore", message="Statistics for quantized inputs", category=UserWarning)

__all__ = ["keras", "tf", "tfmot"]
