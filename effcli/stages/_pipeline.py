"""The input pipeline of every training: tf.data batches, augmentation, soft labels.

Augmentation runs here, on training batches only: it is never applied to validation or test data
and never becomes part of the exported model (a RandomFlip inside a model would also block QAT).
Label smoothing and mixup need one-hot targets; then every split is one-hot, so the loss and the
`accuracy` metric see the same kind of labels everywhere.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from effcli.recipe.schema import AugmentSpec

# Which data kinds each transformation makes sense for (checked at plan time).
AUGMENT_KINDS: dict[str, tuple[str, ...]] = {
    "flip": ("image",),
    "translate": ("image", "sequence"),
    "rotate": ("image",),
    "zoom": ("image",),
    "contrast": ("image",),
    "noise": ("image", "sequence", "tabular"),
    "cutout": ("image", "sequence"),
    "mixup": ("image", "sequence", "tabular"),
}


def augment_problems(spec: AugmentSpec, kind: str) -> list[tuple[str, str]]:
    """(key, message) for each active transformation that does not fit `kind` data."""
    problems = []
    for name in spec.active():
        fits = AUGMENT_KINDS[name]
        if kind not in fits:
            problems.append(
                (
                    name,
                    f"'{name}' augments {' or '.join(fits)} data, but this recipe's data is "
                    f"{kind}; remove it",
                )
            )
    return problems


def one_hot_targets(label_smoothing: float, augment: AugmentSpec) -> bool:
    """Label smoothing and mixup train on soft (one-hot) targets."""
    return label_smoothing > 0 or augment.mixup > 0


def _labels(y: np.ndarray, num_classes: int, one_hot: bool) -> np.ndarray:
    if one_hot:
        return np.eye(num_classes, dtype=np.float32)[y]
    return y


def eval_batches(
    x: np.ndarray, y: np.ndarray, *, batch_size: int, num_classes: int, one_hot: bool
) -> Any:
    """Validation/test batches: no shuffling, no augmentation."""
    from effcli._tf import tf

    data = tf.data.Dataset.from_tensor_slices((x, _labels(y, num_classes, one_hot)))
    return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def training_batches(
    x: np.ndarray,
    y: np.ndarray,
    *,
    batch_size: int,
    seed: int,
    num_classes: int,
    augment: AugmentSpec,
    kind: str,
    one_hot: bool,
) -> Any:
    """Shuffled (reshuffled every epoch, seeded) and augmented training batches."""
    from effcli._tf import tf

    data = tf.data.Dataset.from_tensor_slices((x, _labels(y, num_classes, one_hot)))
    data = data.shuffle(len(x), seed=seed, reshuffle_each_iteration=True).batch(batch_size)
    transform = batch_transform(augment, kind, x.ndim - 1, seed)
    if transform is not None:
        data = data.map(transform, num_parallel_calls=tf.data.AUTOTUNE)
    return data.prefetch(tf.data.AUTOTUNE)


def batch_transform(augment: AugmentSpec, kind: str, sample_rank: int, seed: int) -> Any | None:
    """A function (x, y) -> (x, y) applying the active transformations to one batch.

    Images are (H, W) or (H, W, C); sequences (L,) or (L, C): the missing axis is added for the
    transformations and removed again.
    """
    from effcli._tf import keras, tf

    on = augment.active()
    if not on:
        return None
    layers = []
    if kind == "image":
        if "flip" in on:
            layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
        if "translate" in on:
            t = augment.translate
            layers.append(keras.layers.RandomTranslation(t, t, fill_mode="constant", seed=seed))
        if "rotate" in on:
            layers.append(
                keras.layers.RandomRotation(augment.rotate, fill_mode="constant", seed=seed)
            )
        if "zoom" in on:
            layers.append(keras.layers.RandomZoom(augment.zoom, fill_mode="constant", seed=seed))
    full_rank = {"image": 3, "sequence": 2}.get(kind, sample_rank)
    expand = sample_rank == full_rank - 1

    def transform(x: Any, y: Any) -> tuple[Any, Any]:
        if expand:
            x = x[..., tf.newaxis]
        for layer in layers:
            x = layer(x, training=True)
        if "contrast" in on and kind == "image":
            x = _contrast(x, augment.contrast)
        if kind == "sequence" and "translate" in on:
            x = _shift_sequences(x, augment.translate)
        if "cutout" in on:
            x = _cutout(x, augment.cutout, spatial=2 if kind == "image" else 1)
        if expand:
            x = x[..., 0]
        if "noise" in on:
            x = x + tf.random.normal(tf.shape(x), stddev=augment.noise, dtype=x.dtype)
        if "mixup" in on:
            x, y = _mixup(x, y, augment.mixup)
        return x, y

    return transform


def _contrast(x: Any, factor: float) -> Any:
    """Scale each image's channels about their mean by a random factor in [1-f, 1+f].

    keras' RandomContrast clips to [0, 255], which would cut every negative value of
    standardized inputs (data.normalize) to zero; this keeps the inputs' own range."""
    from effcli._tf import tf

    mean = tf.reduce_mean(x, axis=[1, 2], keepdims=True)
    scale = tf.random.uniform([tf.shape(x)[0], 1, 1, 1], 1.0 - factor, 1.0 + factor)
    return (x - mean) * scale + mean


def _shift_sequences(x: Any, fraction: float) -> Any:
    """Shift each (L, C) sequence by up to fraction*L steps, filling with zeros."""
    from effcli._tf import tf

    length = tf.shape(x)[1]
    limit = tf.cast(tf.math.ceil(fraction * tf.cast(length, tf.float32)), tf.int32)
    shifts = tf.random.uniform([tf.shape(x)[0]], -limit, limit + 1, dtype=tf.int32)
    positions = tf.range(length)[tf.newaxis, :] - shifts[:, tf.newaxis]  # (B, L) source index
    valid = (positions >= 0) & (positions < length)
    gathered = tf.gather(x, tf.clip_by_value(positions, 0, length - 1), batch_dims=1)
    return gathered * tf.cast(valid, x.dtype)[..., tf.newaxis]


def _cutout(x: Any, fraction: float, spatial: int) -> Any:
    """Zero one random square (images) or segment (sequences) per sample."""
    from effcli._tf import tf

    batch = tf.shape(x)[0]
    keep = None
    for axis in range(1, spatial + 1):
        size = tf.shape(x)[axis]
        side = tf.cast(tf.math.ceil(fraction * tf.cast(size, tf.float32)), tf.int32)
        start = tf.random.uniform([batch], 0, tf.maximum(size - side, 0) + 1, dtype=tf.int32)
        index = tf.range(size)[tf.newaxis, :]
        inside = (index >= start[:, tf.newaxis]) & (index < (start + side)[:, tf.newaxis])
        shape = [batch] + [1] * (len(x.shape) - 1)
        shape[axis] = size
        inside = tf.reshape(inside, shape)
        keep = inside if keep is None else keep & inside
    return x * (1.0 - tf.cast(keep, x.dtype))


def _mixup(x: Any, y: Any, alpha: float) -> tuple[Any, Any]:
    """Mix each sample (and its one-hot label) with another of the batch, weight ~ Beta(a, a)."""
    from effcli._tf import tf

    batch = tf.shape(x)[0]
    a = tf.random.gamma([batch], alpha, dtype=x.dtype)
    b = tf.random.gamma([batch], alpha, dtype=x.dtype)
    lam = a / (a + b)
    order = tf.random.shuffle(tf.range(batch))
    lam_x = tf.reshape(lam, [-1] + [1] * (len(x.shape) - 1))
    mixed_x = lam_x * x + (1 - lam_x) * tf.gather(x, order)
    mixed_y = lam[:, tf.newaxis] * y + (1 - lam[:, tf.newaxis]) * tf.gather(y, order)
    return mixed_x, mixed_y
