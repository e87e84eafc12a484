"""Running the platform for real: backups, retention, monitoring (top layer: reads every app)."""
