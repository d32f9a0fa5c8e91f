"""The results history: every finished check, recorded in SQLite or PostgreSQL."""
