"""The results dashboard: read-only pages over the history, served or written as a static site."""
