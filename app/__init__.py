"""The composition root (`bootstrap`), the `threadline` command line and the demo."""
