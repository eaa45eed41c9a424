"""The age stage plugin (being written)."""
