"""Alembic migrations of the store's schema (``api/store.py`` runs them; see ``versions/``)."""
