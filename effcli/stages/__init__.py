"""Recipe stages: one module per technique, registered by name in `stages.base.stages`."""
