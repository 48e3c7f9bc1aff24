"""Shrink: quantization to a .tflite flatbuffer, post-training or quantization-aware.

Modes:
- `float32`: no quantization (the export a pipeline without this stage gets), for `sparse_format`.
- `dynamic`: int8 weights, float activations (no calibration data).
- `float16`: float16 weights, dequantized at load time on CPUs.
- `int8`: full integer; ranges calibrated on a representative set from the training split (never
  val or test); int8 input and output as on integer-only accelerators (`int8_io`).
- `qat`: quantization-aware fine-tuning with TF-MOT, then an int8 export. After `prune` and/or
  `cluster` the stage picks TF-MOT's preserving scheme (PQAT, CQAT, PCQAT) so QAT does not undo
  them; layers TF-MOT cannot quantize stay float and are recorded.

`sparse_format: true` stores pruned kernels in TFLite's sparse encoding when that is smaller and
changes no output (see _export.py); rows say whether it was kept (`quantize_sparse_format`) and
what the dense file would have weighed (`quantize_dense_bytes`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from effcli.artifacts import Artifact, KerasModel, TFLiteModel
from effcli.errors import StageFailed
from effcli.recipe.schema import Recipe, StageConfig
from effcli.stages._export import export, one_line
from effcli.stages._label import tokens
from effcli.stages._layers import copy_model, has_kernel, kernel_of
from effcli.stages._train_spec import FineTuneParams, fine_tune_resolved
from effcli.stages._training import fine_tune
from effcli.stages.base import Stage, StageContext, StageResult, stages

QAT_ONLY = ("epochs", "learning_rate", "scheme")
SCHEMES = ("default", "pqat", "cqat", "pcqat")


class QuantizeParams(FineTuneParams):
    mode: Literal["float32", "dynamic", "float16", "int8", "qat"] = "int8"
    calibration_samples: int = Field(
        256, ge=1, le=100_000, description="training samples used to calibrate ranges, >= 1"
    )
    int8_io: bool = Field(True, description="int8 model input and output (int8 and qat modes)")
    scheme: Literal["auto", "default", "pqat", "cqat", "pcqat"] = Field(
        "auto", description="QAT scheme; auto preserves what earlier prune/cluster stages did"
    )
    sparse_format: bool = Field(
        False,
        description="true or false: store pruned kernels in TFLite's sparse encoding when it is "
        "smaller and changes no output",
    )

    @model_validator(mode="after")
    def _mode_arguments(self) -> QuantizeParams:
        if self.mode != "qat":
            misplaced = [k for k in QAT_ONLY if k in self.model_fields_set]
            if misplaced:
                raise ValueError(
                    f"'{misplaced[0]}' applies to mode qat only (mode is {self.mode}); "
                    f"remove it or set mode: qat"
                )
        if self.mode in ("float32", "dynamic", "float16"):
            for key in ("calibration_samples", "int8_io"):
                if key in self.model_fields_set:
                    raise ValueError(
                        f"'{key}' applies to modes int8 and qat (mode is {self.mode}); remove it"
                    )
        return self


def representative_samples(x_train: np.ndarray, count: int, seed: int) -> np.ndarray:
    """A seeded random subset of the training split for range calibration."""
    rng = np.random.default_rng(seed)
    pick = rng.permutation(len(x_train))[: min(count, len(x_train))]
    return x_train[pick].astype(np.float32)


def auto_scheme(after_prune: bool, after_cluster: bool) -> str:
    """The QAT scheme that keeps what came before: zeros (PQAT), clusters (CQAT) or both."""
    if after_cluster:
        return "pcqat" if after_prune else "cqat"
    return "pqat" if after_prune else "default"


def _encoding_metrics(encoding: dict[str, Any]) -> dict[str, float]:
    """Row columns of a sparse-format export: kept (1) or not (0), and the dense file's bytes."""
    if not encoding:
        return {}
    return {
        "quantize_sparse_format": float(encoding["sparse_format"]),
        "quantize_dense_bytes": float(encoding["dense_bytes"]),
    }


@stages.register("quantize")
class QuantizeStage(Stage[QuantizeParams]):
    """Post-training (dynamic, float16, int8) or quantization-aware (qat) export to TFLite."""

    Params = QuantizeParams
    produces = "tflite"
    version = 2  # 2: QAT export calibrates the ops QAT left without ranges
    examples = (
        {"mode": "float32", "sparse_format": True},
        {"mode": "dynamic"},
        {"mode": "float16"},
        {"mode": "int8", "calibration_samples": 32},
        {"mode": "qat", "epochs": 1},
    )

    @classmethod
    def label_token(cls, params: QuantizeParams, varying: Mapping[str, Any]) -> str:
        head: str = params.mode
        if params.mode == "qat" and params.scheme not in ("auto", "default"):
            head = params.scheme
        if params.sparse_format:
            head += "+sparse"
        return " ".join([head, *tokens(varying, skip=("mode", "scheme", "sparse_format"))])

    @classmethod
    def is_training(cls, params: QuantizeParams) -> bool:
        return params.mode == "qat"

    @classmethod
    def describe(cls, params: QuantizeParams) -> str:
        return super().describe(params) if params.model_fields_set else "quantize(mode=int8)"

    @classmethod
    def _before(cls, stage: StageConfig, recipe: Recipe) -> set[str]:
        return {s.kind for s in recipe.pipeline if s.index < stage.index}

    @classmethod
    def check(cls, stage: StageConfig, recipe: Recipe) -> Iterable[tuple[tuple[Any, ...], str]]:
        p = cls.params_of(stage)
        before = cls._before(stage, recipe)
        needs = {"pqat": {"prune"}, "cqat": {"cluster"}, "pcqat": {"prune", "cluster"}}
        missing = needs.get(p.scheme, set()) - before
        if missing:
            yield (
                ("pipeline", stage.index, "scheme"),
                f"scheme {p.scheme} preserves what a {' and a '.join(sorted(missing))} stage did, "
                "but none comes before; use scheme: auto or add the stage",
            )

    @classmethod
    def resolve(cls, stage: StageConfig, recipe: Recipe) -> dict[str, Any]:
        p = cls.params_of(stage)
        if p.mode != "qat":
            resolved = p.model_dump(mode="json", exclude=set(QAT_ONLY))
            if p.mode != "int8":
                resolved.pop("calibration_samples")
                resolved.pop("int8_io")
        else:
            resolved = fine_tune_resolved(stage, recipe)
            if p.scheme == "auto":
                before = cls._before(stage, recipe)
                resolved["scheme"] = auto_scheme("prune" in before, "cluster" in before)
        if not p.sparse_format:  # its default: the keys of nodes cached before it existed
            resolved.pop("sparse_format", None)
        return resolved

    def run(self, parent: Artifact | None, ctx: StageContext) -> StageResult:
        keras_parent = self.keras_parent(parent)
        p = self.params
        if p.mode == "qat":
            return self._qat(keras_parent, ctx)
        from effcli._tf import tf

        samples = representative_samples(ctx.data.x_train, p.calibration_samples, ctx.seed)

        def make_converter() -> Any:
            converter = tf.lite.TFLiteConverter.from_keras_model(keras_parent.model)
            converter.optimizations = [] if p.mode == "float32" else [tf.lite.Optimize.DEFAULT]
            if p.mode == "float16":
                converter.target_spec.supported_types = [tf.float16]
            elif p.mode == "int8":
                converter.representative_dataset = lambda: ([s[np.newaxis]] for s in samples)
                converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
                if p.int8_io:
                    converter.inference_input_type = tf.int8
                    converter.inference_output_type = tf.int8
            return converter

        content, encoding = export(make_converter, p.mode, sparse=p.sparse_format, samples=samples)
        info: dict[str, Any] = {"mode": p.mode, **encoding}
        if p.mode == "int8":
            info["calibration_samples"] = len(samples)
        return StageResult(
            artifact=TFLiteModel(content, source=keras_parent),
            metrics=_encoding_metrics(encoding),
            info=info,
        )

    # -- quantization-aware training -----------------------------------------------------------
    def _qat(self, parent: KerasModel, ctx: StageContext) -> StageResult:
        from effcli._tf import tf, tfmot

        p = self.params
        scheme_name = self.resolved["scheme"]
        combine = tfmot.experimental.combine
        scheme = {
            "default": lambda: tfmot.quantization.keras.default_8bit.Default8BitQuantizeScheme(),
            "pqat": lambda: combine.Default8BitPrunePreserveQuantizeScheme(),
            "cqat": lambda: combine.Default8BitClusterPreserveQuantizeScheme(),
            "pcqat": lambda: combine.Default8BitClusterPreserveQuantizeScheme(
                preserve_sparsity=True
            ),
        }[scheme_name]()
        base = copy_model(parent.model)
        # TF-MOT's PCQAT quantizer is shared by all layers and switches sparsity preservation
        # off for good at the first layer without zeros (a dense first/last layer), losing the
        # pruning everywhere. Such layers get the plain 8-bit config instead.
        plain = set()
        if scheme_name == "pcqat":
            plain = {
                layer.name
                for layer in base.layers
                if has_kernel(layer) and bool(np.all(kernel_of(layer).numpy() != 0))
            }
        start = time.perf_counter()
        qat_model, left_float = quantize_what_it_can(base, scheme, plain)
        wrap_seconds = time.perf_counter() - start
        report = fine_tune(
            qat_model, ctx, self.resolved, learning_rate=p.learning_rate, epochs=p.epochs
        )
        if scheme_name in ("cqat", "pcqat"):
            qat_model = combine.strip_clustering_cqat(qat_model)

        # Ops QAT put no ranges on (refused layers, the MUL/ADD a BatchNorm after an activation
        # becomes) are calibrated on training samples, so the whole graph can be integer.
        samples = representative_samples(ctx.data.x_train, p.calibration_samples, ctx.seed)

        def make_converter() -> Any:
            converter = tf.lite.TFLiteConverter.from_keras_model(qat_model)
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: ([s[np.newaxis]] for s in samples)
            if p.int8_io:
                converter.inference_input_type = tf.int8
                converter.inference_output_type = tf.int8
            return converter

        io = "int8" if p.int8_io else "float"
        content, encoding = export(make_converter, "qat", sparse=p.sparse_format, samples=samples)
        quantized = [
            layer.name for layer in qat_model.layers if type(layer).__name__.startswith("Quantize")
        ]
        return StageResult(
            artifact=TFLiteModel(content, source=None),  # a QAT model has no plain Keras twin
            metrics={"qat_float_layers": len(left_float), **_encoding_metrics(encoding)},
            info={
                **encoding,
                "mode": "qat",
                "scheme": scheme_name,
                "io": io,
                "left_float": left_float,
                "quantized_layers": len(quantized),
                "plain_8bit_layers": sorted(plain),
                "wrap_seconds": wrap_seconds,
                "best_epoch": report.best_epoch,
                "best_val_accuracy": report.best_val_accuracy,
            },
            train_seconds=report.seconds,
        )


def default_8bit_registry() -> Any:
    from effcli._tf import default_8bit_quantize

    registry, _ = default_8bit_quantize()
    return registry.Default8BitQuantizeRegistry()


_UNSUPPORTED = re.compile(r"Layer (\S+?):?\s.*not supported|layer (\S+?) is not supported", re.I)


def quantize_what_it_can(
    model: Any, scheme: Any, plain: set[str] | None = None, attempts: int = 50
) -> tuple[Any, list[str]]:
    """Annotate every layer, apply QAT, and work around each layer TF-MOT refuses.

    A refused layer without weights of its own (BatchNorm after an activation, Rescaling, ...)
    gets its output quantized only, so the graph stays integer; a refused layer with a kernel is
    left float. Returns the QAT model and "name: TF-MOT's reason" for every layer left float.
    When TF-MOT refuses the model itself (subclassed, nested), the variant fails with its reason.
    """
    from effcli._tf import default_8bit_quantize, keras, tfmot

    registry_module, configs = default_8bit_quantize()

    qk = tfmot.quantization.keras
    plain = plain or set()
    default_registry = default_8bit_registry()
    # Layers the registry refuses and that have no kernel: quantize their output only, up front
    # (each refusal found by trial costs a full clone + quantize_apply).
    output_only = {
        layer.name
        for layer in model.layers
        if not isinstance(layer, keras.layers.InputLayer)
        and not has_kernel(layer)
        and not default_registry.supports(layer)
    }
    left_float: dict[str, str] = {}
    for _ in range(attempts):

        def annotate(layer: Any) -> Any:
            if layer.name in left_float or isinstance(layer, keras.layers.InputLayer):
                return layer
            if layer.name in output_only:
                config = configs.Default8BitOutputQuantizeConfig()
                return qk.quantize_annotate_layer(layer, quantize_config=config)
            if layer.name in plain and default_registry.supports(layer):
                config = default_registry.get_quantize_config(layer)
                return qk.quantize_annotate_layer(layer, quantize_config=config)
            return qk.quantize_annotate_layer(layer)

        try:
            annotated = keras.models.clone_model(model, clone_function=annotate)
            annotated.set_weights(model.get_weights())
            scope = {
                "Default8BitOutputQuantizeConfig": configs.Default8BitOutputQuantizeConfig,
                "Default8BitQuantizeConfig": registry_module.Default8BitQuantizeConfig,
            }
            with qk.quantize_scope(scope):
                qat_model = qk.quantize_apply(annotated, scheme)
            return qat_model, [f"{name}: {why}" for name, why in left_float.items()]
        except Exception as exc:  # TF-MOT reports refusals as ValueError/RuntimeError/TypeError
            reason = one_line(exc)
            name = _refused_layer(reason, model, set(left_float))
            if name is None:
                # A refusal naming a layer class (MultiHeadAttention cannot even be wrapped to
                # quantize its output): every layer of it stays float, unannotated.
                kinds = _refused_kinds(reason, model, set(left_float))
                if not kinds:
                    raise StageFailed(f"QAT cannot quantize this model: {reason}") from None
                for layer in model.layers:
                    if type(layer).__name__ in kinds and layer.name not in left_float:
                        output_only.discard(layer.name)
                        left_float[layer.name] = reason[:160]
                continue
            refused = model.get_layer(name)
            if name in output_only or (bool(refused.trainable_weights) and has_kernel(refused)):
                output_only.discard(name)
                left_float[name] = reason[:160]
            else:
                output_only.add(name)
    raise StageFailed("QAT refused too many layers; use a post-training mode instead")


def _refused_kinds(reason: str, model: Any, done: set[str]) -> set[str]:
    """The layer classes of the model (not yet left float) that a refusal names. A nested model
    is never one: leaving a whole sub-model float is no QAT, so that refusal fails the node."""
    from effcli._tf import keras

    kinds = {
        type(layer).__name__
        for layer in model.layers
        if layer.name not in done and not isinstance(layer, keras.Model)
    }
    return {kind for kind in kinds if re.search(rf"\b{re.escape(kind)}\b", reason)}


def _refused_layer(reason: str, model: Any, done: set[str]) -> str | None:
    """The model layer TF-MOT named in its refusal, if any (and not already left float)."""
    names = {layer.name for layer in model.layers} - set(done)
    for match in _UNSUPPORTED.finditer(reason):
        name = next(g for g in match.groups() if g)
        if name in names:
            return name
    # Some messages quote the layer object or class: fall back to any layer name mentioned.
    mentioned = [n for n in names if re.search(rf"\b{re.escape(n)}\b", reason)]
    return mentioned[0] if len(mentioned) == 1 else None
