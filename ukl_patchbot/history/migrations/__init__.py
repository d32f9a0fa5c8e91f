"""Alembic migration scripts of the history (run by `ukl_patchbot.history.store.open_store`)."""
