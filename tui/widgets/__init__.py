"""Reusable widgets and dialogs of the TUI."""
