"""Persistent state behind one repository interface (SQLite by default)."""
