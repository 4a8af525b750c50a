"""Pictures: PNG files drawn with matplotlib, no screen needed."""
