"""Datasets: one module per source, registered by name in `data.base.datasets`."""
