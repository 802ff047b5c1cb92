"""Revisions of the store schema, oldest first (``down_revision`` chains them)."""
