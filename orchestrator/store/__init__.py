"""The store seam: SQLite journal with a hash chain, and the domain writes on it."""

from orchestrator.store.journal import Journal
from orchestrator.store.sqlite import Store, StoreError

__all__ = ["Journal", "Store", "StoreError"]
