"""dbkeeper's age plugin."""
