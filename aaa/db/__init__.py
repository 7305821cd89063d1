"""Storage: SQLAlchemy models, engine set-up and Alembic migrations."""

from __future__ import annotations

import importlib

MODEL_MODULES = ("aaa.db.models", "billing.models")
"""Modules whose models share ``aaa.db.models.Base.metadata``; imported by name so that ``aaa`` (the
lowest layer) never imports ``billing`` statically."""


def load_models() -> None:
    """Import every model module so ``Base.metadata`` knows all tables (Alembic, tests)."""
    for name in MODEL_MODULES:
        importlib.import_module(name)
