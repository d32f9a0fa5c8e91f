"""upstream: git plumbing and the local mirrors, fed from Debian source packages or a git remote."""
