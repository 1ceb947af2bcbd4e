"""Files: exported policies, checkpoints and CSV logs."""
