"""The S3 storage plugin (being written)."""
