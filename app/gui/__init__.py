"""The PyQt6 desktop app."""
