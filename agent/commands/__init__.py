"""One module per ``byod-agent`` subcommand; each exposes ``register(subparsers)``."""
