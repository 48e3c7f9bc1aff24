"""The run directory: the one place that names what a run keeps and where.

```
results/<name>/
  results.csv               one row per variant (and replicate), rewritten atomically under a lock
  recipe.yaml, plan.json    the merged recipe and the plan that ran
  run.json                  data spec, seed and the environment that decides the numbers
  split.json, test.npz      the exact split (indices, normalization statistics) and the
                            preprocessed test inputs/labels (not with data.save_test: false)
  test_labels.npy           the test labels (always): with each row's predictions.npy, every
                            statistic of `effdl frontier` is re-computable without a model
  cache/<node key>/         a finished node: meta.json + its model (model.keras / model.tflite),
                            alternatives/<name>/ for a stage's other kept outputs
  artifacts/<row>/          model.tflite (+ model.keras), recipe.yaml, metrics.json, nodes.json,
                            layers.json, predictions.npy (the class predicted for each test
                            sample); <row> is the variant id, `<id>.r<k>` for replicate k >= 1;
                            labels.txt (class names, line i = output i) and model_card.md
                            (data, preprocessing constants, metrics, footprint, pipeline, how
                            to call it): what a deployer needs next to the model (effcli.deploy)
  studies/                  search state (Optuna SQLite) that must survive a rerun
  tracking.json             what an experiment tracker (`--track mlflow`) already logged: per
                            tracking URI its experiment, parent run and each row's run id
  tensorboard/<row>/        `--track tensorboard`: event files of each row (curves, metrics)
```
`effdl measure --out DIR` writes the same results.csv and artifacts/ layout, without the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

RESULTS = "results.csv"
RECIPE = "recipe.yaml"
PLAN = "plan.json"
RUN = "run.json"
SPLIT = "split.json"
TEST = "test.npz"
LABELS = "test_labels.npy"
CACHE = "cache"
ARTIFACTS = "artifacts"
STUDIES = "studies"
RUN_LOCK = ".run.lock"
RESULTS_LOCK = ".results.lock"
TRACKING = "tracking.json"
TENSORBOARD = "tensorboard"  # `--track tensorboard`: the default log directory
TRACKING_LOCK = ".tracking.lock"

# Inside a cache entry.
META = "meta.json"
ALTERNATIVES = "alternatives"
# Inside any model folder (a cache entry, an alternative, an artifact folder).
KERAS_FILE = "model.keras"
TFLITE_FILE = "model.tflite"
# Inside an artifact folder.
METRICS = "metrics.json"
LAYERS = "layers.json"
NODES = "nodes.json"
PREDICTIONS = "predictions.npy"
LABELS_TXT = "labels.txt"
MODEL_CARD = "model_card.md"


def unit_name(row: str, replicate: int) -> str:
    """The name of one replicate of a row (and of its artifact folder): the row id itself for
    replicate 0 (so one replicate is exactly a run without replicates), `<row>.r<k>` after."""
    return row if replicate == 0 else f"{row}.r{replicate}"


@dataclass(frozen=True)
class ArtifactDir:
    """artifacts/<row>/: the exported model of one results row and what was measured on it."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def tflite(self) -> Path:
        return self.path / TFLITE_FILE

    @property
    def keras(self) -> Path:
        return self.path / KERAS_FILE

    @property
    def recipe(self) -> Path:
        return self.path / RECIPE

    @property
    def metrics(self) -> Path:
        return self.path / METRICS

    @property
    def layers(self) -> Path:
        return self.path / LAYERS

    @property
    def nodes(self) -> Path:
        return self.path / NODES

    @property
    def predictions(self) -> Path:
        return self.path / PREDICTIONS

    @property
    def labels_txt(self) -> Path:
        return self.path / LABELS_TXT

    @property
    def model_card(self) -> Path:
        return self.path / MODEL_CARD


class RunDir:
    """Paths inside one run directory."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.results = self.root / RESULTS
        self.recipe = self.root / RECIPE
        self.plan = self.root / PLAN
        self.run_json = self.root / RUN
        self.split_json = self.root / SPLIT
        self.test_npz = self.root / TEST
        self.labels = self.root / LABELS
        self.cache = self.root / CACHE
        self.artifacts = self.root / ARTIFACTS
        self.studies = self.root / STUDIES
        self.run_lock = self.root / RUN_LOCK
        self.results_lock = self.root / RESULTS_LOCK

    def node(self, key: str) -> Path:
        return self.cache / key

    def node_meta(self, key: str) -> Path:
        return self.node(key) / META

    def node_done(self, key: str) -> bool:
        return self.node_meta(key).is_file()

    def alternative(self, key: str, name: str) -> Path:
        return self.node(key) / ALTERNATIVES / name

    def artifact(self, row: str) -> ArtifactDir:
        return ArtifactDir(self.artifacts / row)

    def cached_keys(self) -> set[str]:
        """Keys of every finished node in the cache."""
        if not self.cache.is_dir():
            return set()
        return {p.name for p in self.cache.iterdir() if (p / META).is_file()}

    def artifact_dirs(self) -> dict[str, ArtifactDir]:
        """Every artifact folder by row name (temporaries of a killed run left out)."""
        if not self.artifacts.is_dir():
            return {}
        return {
            p.name: ArtifactDir(p)
            for p in sorted(self.artifacts.iterdir())
            if p.is_dir() and not p.name.startswith(".")
        }

    def is_run(self) -> bool:
        """Whether `effdl run` made this folder (as opposed to `effdl measure --out`)."""
        return self.run_json.is_file()
