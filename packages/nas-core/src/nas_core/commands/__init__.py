"""Built-in subcommands of the ``nas`` command line (each imported only when it runs)."""
