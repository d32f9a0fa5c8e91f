"""dispatch: a queued job to its outcome (check or rebase), for the worker, CLI and weekly job."""
