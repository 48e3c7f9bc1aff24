"""Make an artifact folder deployable: rewrite its model.tflite (metadata, signature names) and
write labels.txt and model_card.md next to it.

`prepare_tflite` runs before the file is measured, so every footprint number describes the file
that ships; `write_deploy_files` runs after, when metrics.json and predictions.npy exist. Neither
imports TensorFlow (the flatbuffer schema and the interpreter come with ai_edge_litert).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from effcli import _atomic
from effcli.deploy._card import (
    CardFacts,
    ReplicateAccuracy,
    SampleAccuracy,
    metadata_note,
    render_card,
)
from effcli.deploy._flatbuffer import (
    INPUT_NAME,
    OUTPUT_NAME,
    SIGNATURE_KEY,
    ModelIO,
    model_io,
    read_metadata,
    rewrite,
)
from effcli.deploy._preprocessing import (
    LABELS_ENTRY,
    PREPROCESSING_ENTRY,
    class_names,
    labels_text,
    preprocessing,
)
from effcli.errors import one_line
from effcli.results.rundir import ArtifactDir

# What a card says of a file that carries no effdl metadata and no earlier card saying why.
NO_METADATA = "model.tflite carries no effdl metadata (it was not made by this effdl's export)"


@dataclass(frozen=True)
class Deployed:
    """What preparing a model.tflite did: its tensors as shipped, the labels and preprocessing
    embedded, and why not when they are not (`note`)."""

    io: ModelIO | None
    labels: list[str]
    preprocessing: dict[str, Any]
    note: str = ""  # "" when the metadata and signature names are in the file

    @property
    def embedded(self) -> bool:
        return not self.note


def _classes(split: dict[str, Any] | None, io: ModelIO | None) -> int:
    if io is not None:
        return io.classes
    counts = ((split or {}).get("class_counts") or {}).get("test") or []
    return len(counts) or len((split or {}).get("class_names") or [])


def _outputs(content: bytes, x: np.ndarray) -> np.ndarray:
    from effcli._native import native_quiet
    from effcli.measure.litert import LiteRTModel

    with native_quiet():  # LiteRT logs its XNNPACK delegate on fd 2
        return LiteRTModel(content).predict(x)


def prepare_tflite(
    path: Path, split: dict[str, Any] | None, check: np.ndarray | None = None
) -> Deployed:
    """Embed labels (`effdl.labels`) and preprocessing (`effdl.preprocessing`) in the .tflite
    at `path` and name its serving signature's tensors `input` and `logits`, in place.

    The rewritten file is read back (metadata, tensors) and, with `check` inputs, must give
    bit-identical outputs; if anything fails the original bytes stay and `note` says why: a
    variant never fails because of its metadata."""
    content = path.read_bytes()
    io: ModelIO | None = None
    try:
        io = model_io(content)
        shipped = ModelIO(
            input=dataclasses.replace(io.input, name=INPUT_NAME),
            output=dataclasses.replace(io.output, name=OUTPUT_NAME),
            signature=SIGNATURE_KEY,
        )
        labels = class_names(split, shipped.classes)
        record = preprocessing(split, shipped)
        entries = {
            LABELS_ENTRY: labels_text(labels).encode("utf-8"),
            PREPROCESSING_ENTRY: json.dumps(record, separators=(",", ":")).encode("utf-8"),
        }
        rewritten = rewrite(content, entries)
        found = read_metadata(rewritten)
        if any(found.get(name) != data for name, data in entries.items()):
            raise ValueError("the metadata read back differs from what was written")
        if model_io(rewritten) != shipped:
            raise ValueError("the rewritten model's input or output changed")
        same = check is None or np.array_equal(_outputs(content, check), _outputs(rewritten, check))
        if not same:
            raise ValueError("the rewritten model's outputs differ from the converted one's")
    except Exception as exc:  # keep the file as converted, and say why in the card
        labels = class_names(split, _classes(split, io))
        note = f"rewriting failed ({one_line(exc, 300)}); model.tflite is kept as converted"
        return Deployed(io, labels, preprocessing(split, io), note=note)
    _atomic.write_bytes(path, rewritten)
    return Deployed(shipped, labels, record)


def inspect_tflite(
    path: Path, split: dict[str, Any] | None, card: Path | None = None, note: str = ""
) -> Deployed:
    """What an existing model.tflite ships: its embedded labels and preprocessing when it has
    them, else labels and preprocessing derived from `split`, with `note` (or the reason an
    earlier `card` gave, or NO_METADATA) saying why nothing is embedded."""
    content = path.read_bytes()
    io: ModelIO | None
    try:
        io = model_io(content)
    except Exception:
        io = None
    try:
        found = read_metadata(content)
    except Exception:
        found = {}
    if PREPROCESSING_ENTRY in found and LABELS_ENTRY in found:
        labels = found[LABELS_ENTRY].decode("utf-8").splitlines()
        return Deployed(io, labels, json.loads(found[PREPROCESSING_ENTRY]))
    earlier = metadata_note(card.read_text(encoding="utf-8")) if card and card.is_file() else ""
    labels = class_names(split, _classes(split, io))
    return Deployed(io, labels, preprocessing(split, io), note=note or earlier or NO_METADATA)


def _json(path: Path, default: Any) -> Any:
    return json.loads(path.read_text()) if path.is_file() else default


def card_facts(
    folder: ArtifactDir,
    deployed: Deployed,
    *,
    split: dict[str, Any] | None,
    test_labels: np.ndarray | None,
    label: str = "",
    run: str = "",
    data_note: str = "",
    replicates: ReplicateAccuracy | None = None,
) -> CardFacts:
    """The facts of a card, from an artifact folder (metrics.json, nodes.json, predictions.npy)
    and the run's split and test labels."""
    metrics: dict[str, Any] = _json(folder.metrics, {})
    nodes: list[dict[str, Any]] = _json(folder.nodes, [])
    test = None
    if test_labels is not None and folder.predictions.is_file():
        predictions = np.load(folder.predictions, allow_pickle=False)
        if predictions.shape == np.shape(test_labels):
            correct = int(np.count_nonzero(predictions == np.asarray(test_labels)))
            test = SampleAccuracy(correct, int(predictions.size))
    seeds = sorted({int(n["seed"]) for n in nodes if isinstance(n.get("seed"), int)})
    replicate = metrics.get("replicate")
    if replicate in (None, "") and nodes:
        replicate = nodes[-1].get("replicate", 0)
    return CardFacts(
        variant=str(metrics.get("variant") or folder.name.split(".r")[0]),
        metrics=metrics,
        labels=deployed.labels,
        preprocessing=deployed.preprocessing,
        io=deployed.io,
        label=str(metrics.get("label") or label or ""),
        run=run,
        replicate=int(float(replicate or 0)),
        seeds=seeds,
        nodes=nodes,
        split=split,
        data_note=data_note or str(metrics.get("data", "")),
        metadata_note=deployed.note,
        test=test,
        replicates=replicates,
    )


def write_deploy_files(
    folder: ArtifactDir,
    deployed: Deployed | None = None,
    *,
    split: dict[str, Any] | None,
    test_labels: np.ndarray | None,
    label: str = "",
    run: str = "",
    data_note: str = "",
    note: str = "",
    source: ArtifactDir | None = None,
    replicates: ReplicateAccuracy | None = None,
) -> Deployed:
    """labels.txt and model_card.md into `folder`, describing its model.tflite (read from
    `source`, the same folder by default: export writes a copy's card from the original).
    Without `deployed` (a file made earlier, or measured), what the file embeds is read from
    it; `note` says why it embeds nothing."""
    source = source or folder
    if deployed is None:
        deployed = inspect_tflite(source.tflite, split, source.model_card, note)
    facts = card_facts(
        source,
        deployed,
        split=split,
        test_labels=test_labels,
        label=label,
        run=run,
        data_note=data_note,
        replicates=replicates,
    )
    _atomic.write_text(folder.labels_txt, labels_text(deployed.labels))
    _atomic.write_text(folder.model_card, render_card(facts))
    return deployed
