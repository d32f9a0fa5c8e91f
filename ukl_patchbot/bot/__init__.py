"""bot: the webhook intake (verify, route, enqueue), the job queue and ledger, and the worker."""
