"""dbkeeper's s3 plugin."""
