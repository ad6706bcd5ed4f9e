"""Channel adapters and entry points: HTTP API, widget, voice, messaging, CLI, bootstrap."""
