"""The screens of the TUI, one module per area; :data:`NAVIGATION` lists the top-level ones."""
