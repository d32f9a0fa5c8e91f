"""CLI subcommands. Each module here defines ``register(subparsers)``.

Modules are discovered by name, so adding a command touches one new file.
Heavy imports belong inside each command's function, not at module top.
"""
