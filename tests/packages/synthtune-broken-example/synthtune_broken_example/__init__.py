"""A plugin that cannot be imported: its dependency is missing (on purpose)."""

import synthtune_missing_dependency  # noqa: F401  (not installed anywhere: the import fails)
