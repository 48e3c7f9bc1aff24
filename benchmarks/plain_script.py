"""The quickstart sweep written by hand: plain tf_keras + TF-MOT + LiteRT, no effcli.

This is the baseline of the overhead benchmark: it does the work of
`effdl run recipes/quickstart.yaml` (the survey CNN on scikit-learn's digits at widths 0.25, 0.5
and 1.0; each kept dense and pruned to 50 % and 80 %; every one exported as full-int8 TFLite,
evaluated on the test split and timed: 9 variants, 3 trainings, 6 pruning fine-tunes), so that
effdl's wall time divided by this script's is effdl's overhead.

The work matches effdl's choices (configs/base.yaml and the stage defaults):
- data: digits / 16 as 8x8x1 float32; stratified split 70/10/20 with seed 0 (test first, then
  val from the rest, indices sorted), exactly as effcli.data.base.stratified_split;
- model: the survey CNN (3 blocks of 2 conv3x3 + BatchNorm, max-pool; 32, 64w, 128w filters;
  Dense(512w); logits), same layer names and parameter counts;
- training: Adam 1e-3, cross-entropy on logits, batch 32, seeded reshuffling every epoch, 20
  epochs; best val_accuracy epoch restored; stops after 5 epochs without improvement once past
  epoch 8. Seeds are reset before each model is built and before each fit, as effdl does;
- pruning: TF-MOT magnitude pruning of every conv/dense kernel but the first and the last,
  PolynomialDecay 0 -> target over the first 70 % of 10 fine-tune epochs (Adam 1e-3), masks
  updated every tenth of the ramp, best val_accuracy epoch kept once the masks are final, then
  strip_pruning;
- export: full-int8 TFLite (int8 input and output), calibrated on 256 seeded training samples;
- measurement: LiteRT with 1 thread; latency of one test sample, median over 3 repeats of
  (20 warm-up + 200 timed invokes); accuracy on the test split in batches of 256.

What effdl does besides, and this script does not (the overhead being measured): node keys and
hashing, the cache (a `.keras` file per trained node, which its cache needs, and another next to
each variant's .tflite), results.csv, JSON records, split.json/test.npz, flatbuffer statistics
(parameters, MACs, memory) and gzip size, the achieved-sparsity and finite-weight checks, progress
output, and the Keras model's own test accuracy (a `predict` on the test split per variant).
The early-stopping rule above is written as a small callback: keras' EarlyStopping ignores the
first `start_from_epoch` epochs for the best epoch and restores weights only when it stops, so it
would run a different number of epochs than effdl.

Usage: python benchmarks/plain_script.py --out DIR [--epochs N] [--threads N] [--quiet]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

START = time.perf_counter()  # wall time includes the TensorFlow import, as a user would see it

os.environ["TF_USE_LEGACY_KERAS"] = "1"  # TF-MOT needs tf_keras; must be set before the import
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_model_optimization as tfmot  # noqa: E402
import tf_keras as keras  # noqa: E402
from ai_edge_litert.interpreter import Interpreter  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

SEED = 0
WIDTHS = (0.25, 0.5, 1.0)
SPARSITIES = (None, 0.5, 0.8)  # None: not pruned
TRAIN_EPOCHS = 20
BATCH_SIZE = 32
LEARNING_RATE = 1e-3
PATIENCE, START_FROM_EPOCH = 5, 8  # early stopping on val_accuracy
PRUNE_EPOCHS, PRUNE_LEARNING_RATE, PRUNE_RAMP_END = 10, 1e-3, 0.7
CALIBRATION_SAMPLES = 256
WARMUP_RUNS, TIMED_RUNS, TIMING_REPEATS = 20, 200, 3


@dataclass(frozen=True)
class Splits:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_data(seed: int = SEED) -> Splits:
    """Digits scaled to [0, 1], split 70/10/20 stratified: test first, then val from the rest."""
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., np.newaxis]
    y = digits.target.astype(np.int64)
    index = np.arange(len(y))
    rest, test = train_test_split(index, test_size=0.2, random_state=seed, stratify=y)
    train, val = train_test_split(
        rest, test_size=0.1 / (0.7 + 0.1), random_state=seed, stratify=y[rest]
    )
    train, val, test = np.sort(train), np.sort(val), np.sort(test)
    return Splits(x[train], y[train], x[val], y[val], x[test], y[test])


def survey_cnn(width: float, input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    """Three blocks of two 3x3 conv + BatchNorm and a 2x2 pool (32, 64w, 128w filters), a
    Dense(512w) and a logits head; a pool is skipped once the feature map is 1x1."""

    def scaled(units: int) -> int:
        return max(1, int(round(units * width)))

    inputs = keras.Input(shape=input_shape, name="input")
    x, size = inputs, min(input_shape[:2])
    for block, filters in enumerate([32, scaled(64), scaled(128)], start=1):
        for conv in (1, 2):
            x = keras.layers.Conv2D(
                filters, 3, padding="same", activation="relu", name=f"conv{block}_{conv}"
            )(x)
            x = keras.layers.BatchNormalization(name=f"bn{block}_{conv}")(x)
        if size >= 2:
            x = keras.layers.MaxPooling2D(2, name=f"pool{block}")(x)
            size //= 2
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(scaled(512), activation="relu", name="dense")(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=f"cnn_w{width:g}")


class BestValidation(keras.callbacks.Callback):
    """Keep the weights of the best val_accuracy epoch (from `select_from` on) and restore them
    at the end; with `patience`, stop after that many epochs without improvement once past
    epoch `start_from`."""

    def __init__(self, select_from: int = 1, patience: int | None = None, start_from: int = 0):
        super().__init__()
        self.select_from, self.patience, self.start_from = select_from, patience, start_from
        self.best = -math.inf
        self.best_weights: list[np.ndarray] | None = None
        self.wait = 0

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        value, done = (logs or {}).get("val_accuracy"), epoch + 1
        if value is None or done < self.select_from:
            return
        if value > self.best:
            self.best, self.best_weights, self.wait = value, self.model.get_weights(), 0
        elif self.patience is not None and done > self.start_from:
            self.wait += 1
            if self.wait >= self.patience:
                self.model.stop_training = True

    def on_train_end(self, logs: dict[str, float] | None = None) -> None:
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)


def fit(
    model: keras.Model, data: Splits, epochs: int, learning_rate: float, callbacks: list[Any]
) -> None:
    """Adam on cross-entropy of the logits, batches of 32 reshuffled (seeded) every epoch."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    keras.utils.set_random_seed(SEED)
    train = (
        tf.data.Dataset.from_tensor_slices((data.x_train, data.y_train))
        .shuffle(len(data.x_train), seed=SEED, reshuffle_each_iteration=True)
        .batch(BATCH_SIZE)
        .prefetch(tf.data.AUTOTUNE)
    )
    val = (
        tf.data.Dataset.from_tensor_slices((data.x_val, data.y_val))
        .batch(BATCH_SIZE)
        .prefetch(tf.data.AUTOTUNE)
    )
    model.fit(train, validation_data=val, epochs=epochs, verbose=0, callbacks=callbacks)


def train(width: float, data: Splits, epochs: int) -> keras.Model:
    """Build and train the CNN at `width`, with early stopping on validation accuracy."""
    keras.utils.set_random_seed(SEED)
    model = survey_cnn(width, data.x_train.shape[1:], num_classes=10)
    stopper = BestValidation(patience=PATIENCE, start_from=START_FROM_EPOCH)
    fit(model, data, epochs, LEARNING_RATE, [stopper])
    return model


def prune(trained: keras.Model, sparsity: float, data: Splits, epochs: int) -> keras.Model:
    """Magnitude-prune every conv/dense kernel but the first and last to `sparsity` while
    fine-tuning, then strip the pruning wrappers."""
    keras.utils.set_random_seed(SEED)
    base = keras.models.clone_model(trained)  # the wrappers alter the layers they wrap
    base.set_weights(trained.get_weights())
    kernels = [
        layer.name
        for layer in base.layers
        if isinstance(layer, keras.layers.Conv2D | keras.layers.Dense)
    ]
    targets = set(kernels[1:-1])

    # The schedule must fit the real number of steps: TF-MOT only updates masks up to end_step,
    # at steps where step % frequency == 0.
    steps_per_epoch = math.ceil(len(data.x_train) / BATCH_SIZE)
    total = epochs * steps_per_epoch
    ramp = max(1, min(total, math.ceil(PRUNE_RAMP_END * total)))
    frequency = min(max(1, ramp // 10), ramp)
    end_step = (ramp // frequency) * frequency
    schedule = tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=0.0,
        final_sparsity=sparsity,
        begin_step=0,
        end_step=end_step,
        frequency=frequency,
    )

    def wrap(layer: keras.layers.Layer) -> keras.layers.Layer:
        if layer.name in targets:
            return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule)
        return layer

    pruned = keras.models.clone_model(base, clone_function=wrap)
    # Select the best epoch only once the masks are final.
    best = BestValidation(select_from=math.ceil(end_step / steps_per_epoch))
    fit(pruned, data, epochs, PRUNE_LEARNING_RATE, [tfmot.sparsity.keras.UpdatePruningStep(), best])
    return tfmot.sparsity.keras.strip_pruning(pruned)


def to_int8_tflite(model: keras.Model, x_train: np.ndarray) -> bytes:
    """Full-integer TFLite with int8 input/output, calibrated on seeded training samples."""
    pick = np.random.default_rng(SEED).permutation(len(x_train))[:CALIBRATION_SAMPLES]
    samples = x_train[pick].astype(np.float32)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([sample[np.newaxis]] for sample in samples)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


def quantize_input(x: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """Float inputs as the model's int8 input, with its scale and zero point."""
    scale, zero_point = detail["quantization"]
    return np.clip(np.round(x / scale + zero_point), -128, 127).astype(np.int8)


def measure(path: Path, data: Splits) -> tuple[float, float]:
    """(test accuracy, median latency in ms of one single-sample invoke) with LiteRT, 1 thread."""
    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]

    interpreter.set_tensor(inp["index"], quantize_input(data.x_test[:1], inp))
    medians = []
    for _ in range(TIMING_REPEATS):
        for _ in range(WARMUP_RUNS):
            interpreter.invoke()
        times = np.empty(TIMED_RUNS)
        for i in range(TIMED_RUNS):
            start = time.perf_counter()
            interpreter.invoke()
            times[i] = time.perf_counter() - start
        medians.append(np.percentile(times, 50))
    latency_ms = float(np.median(medians) * 1e3)

    # The output's scale is positive, so the argmax of the int8 logits is the predicted class.
    predictions = []
    for start in range(0, len(data.x_test), 256):
        chunk = data.x_test[start : start + 256]
        interpreter.resize_tensor_input(inp["index"], [len(chunk), *chunk.shape[1:]])
        interpreter.allocate_tensors()
        interpreter.set_tensor(inp["index"], quantize_input(chunk, inp))
        interpreter.invoke()
        predictions.append(np.argmax(interpreter.get_tensor(out["index"]), axis=-1))
    accuracy = float(np.mean(np.concatenate(predictions) == data.y_test))
    return accuracy, latency_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the .tflite files")
    parser.add_argument(
        "--epochs", type=int, help="training epochs (fine-tunes capped at it); default: 20"
    )
    parser.add_argument("--quiet", action="store_true", help="print only the final JSON line")
    parser.add_argument(
        "--threads",
        type=int,
        help="TensorFlow intra-op threads (effdl trains every node with 1); default: "
        "TensorFlow's own choice, one per core",
    )
    args = parser.parse_args()
    if args.epochs is not None and args.epochs < 1:
        parser.error("--epochs must be >= 1")
    if args.threads is not None:
        if args.threads < 1:
            parser.error("--threads must be >= 1")
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    train_epochs = args.epochs or TRAIN_EPOCHS
    prune_epochs = min(PRUNE_EPOCHS, train_epochs)
    args.out.mkdir(parents=True, exist_ok=True)

    data = load_data()
    variants = 0
    for width in WIDTHS:
        trained = train(width, data, train_epochs)
        for sparsity in SPARSITIES:
            model = trained if sparsity is None else prune(trained, sparsity, data, prune_epochs)
            name = f"cnn_w{width:g}" + ("" if sparsity is None else f"_s{sparsity:g}")
            path = args.out / f"{name}.tflite"
            path.write_bytes(to_int8_tflite(model, data.x_train))
            accuracy, latency_ms = measure(path, data)
            variants += 1
            if not args.quiet:
                print(
                    f"{name:<14} width {width:<4g} sparsity {sparsity or 0:<3g} "
                    f"accuracy {accuracy:.4f}  {path.stat().st_size:>7} bytes  "
                    f"{latency_ms:.3f} ms",
                    flush=True,
                )
    seconds = time.perf_counter() - START
    print(
        json.dumps({"seconds": round(seconds, 2), "variants": variants, "trainings": len(WIDTHS)})
    )


if __name__ == "__main__":
    main()
