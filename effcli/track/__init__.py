"""Experiment tracking: copy a run directory's rows, curves and artifacts into a tracking store
(MLflow: `pip install 'effdl[mlflow]'`), once each, during a run or afterwards.

```python
tracker = open_tracker("mlflow", run_dir)            # UsageError: extra missing / store down
reporter = TrackingReporter(inner, tracker, warn)    # during `effdl run`: each row as it lands
tracker.log_pending()                                # `effdl export mlflow RUN_DIR`
tracker.close()
```
A backend is one module here registering a class with `@trackers.register(name)`.
"""

from effcli.track.base import Tracker, TrackingError, TrackSummary, open_tracker, trackers
from effcli.track.reporter import TrackingReporter

__all__ = [
    "TrackSummary",
    "Tracker",
    "TrackingError",
    "TrackingReporter",
    "open_tracker",
    "trackers",
]
