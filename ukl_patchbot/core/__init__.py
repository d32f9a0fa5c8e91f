"""core: vocabulary every stage shares (errors, config, the one subprocess runner, caches,
progress, secrets, versions, the job model)."""
