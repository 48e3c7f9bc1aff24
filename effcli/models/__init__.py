"""Model families: one module per family, registered by name in `models.base.families`."""
