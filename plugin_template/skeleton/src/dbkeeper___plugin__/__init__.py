"""dbkeeper-{{name}}: a dbkeeper driver for {{name}}:// URLs (hooks in :mod:`.plugin`)."""
