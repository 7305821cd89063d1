"""The Textual admin terminal UI (aaa tui)."""
