"""Executor backends: one module each, registered by name in `execute.base.executors`."""
