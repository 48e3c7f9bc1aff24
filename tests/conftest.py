"""Suite-wide settings.

`effdl run` defaults to `--executor auto` (worker processes when nodes can run side by side).
Tests that run the CLI use the in-process executor unless they choose one: the suite's timings
stay stable, and each test's TensorFlow runs where pytest can see it. The auto executor has
tests of its own (tests/integration/test_executors.py, tests/unit/test_executor_choice.py).
"""

import os

os.environ.setdefault("EFFDL_EXECUTOR", "local")
