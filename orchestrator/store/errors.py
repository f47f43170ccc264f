"""The store's error."""

from __future__ import annotations

from drivers.errors import StorageFault


class StoreError(StorageFault):
    """The database cannot be opened or written (disk full, read-only, corrupt, busy)."""
