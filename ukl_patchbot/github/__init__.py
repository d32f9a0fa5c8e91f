"""github: the GitHub REST client (auth, retries, check runs, comments, trees) and what it publishes."""
