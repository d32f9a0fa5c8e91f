"""rebase: carry a series onto a new upstream tag (engine, in-memory fast path) and its report."""
