"""The versioned HTTP API (`/v1`), live streams and the widget's static files."""
