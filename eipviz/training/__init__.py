"""Training: run store, worker process, and the launcher the app uses."""
