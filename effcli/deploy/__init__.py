"""Deployable artifacts: labels.txt, model_card.md and TFLite metadata next to every exported
model (`effcli.deploy.export.export_model` copies one model's folder out of a run: it reads
the frontier's statistics, a layer above). Never imports TensorFlow
(the flatbuffer schema and the interpreter come with ai_edge_litert).
"""

from effcli.deploy._artifact import Deployed, inspect_tflite, prepare_tflite, write_deploy_files
from effcli.deploy._card import CardFacts, card_snippet, render_card, wilson
from effcli.deploy._flatbuffer import (
    ModelIO,
    RewriteError,
    TensorSpec,
    model_io,
    read_metadata,
    rewrite,
    signature_names,
)
from effcli.deploy._preprocessing import (
    LABELS_ENTRY,
    PREPROCESSING_ENTRY,
    class_names,
    labels_text,
)

__all__ = [
    "LABELS_ENTRY",
    "PREPROCESSING_ENTRY",
    "CardFacts",
    "Deployed",
    "ModelIO",
    "RewriteError",
    "TensorSpec",
    "card_snippet",
    "class_names",
    "inspect_tflite",
    "labels_text",
    "model_io",
    "prepare_tflite",
    "read_metadata",
    "render_card",
    "rewrite",
    "signature_names",
    "wilson",
    "write_deploy_files",
]
