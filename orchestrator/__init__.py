"""cellwright orchestrator: protocol language, planner, engine, store, reports, CLI."""

__version__ = "0.1.0"
