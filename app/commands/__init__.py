"""One module per `threadline` command group; `threadline.app.cli` mounts each `register(app)`."""
