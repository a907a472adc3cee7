"""The workers: one shared loop (`loop`), one module per worker with its handlers and main()."""
