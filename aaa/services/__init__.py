"""The service layer: one function per admin action, shared by the CLI, the TUI and plugins.

Every function takes the :class:`aaa.context.Context` first and keyword arguments after; those that
change something take ``actor`` (who does it, e.g. ``admin:maria``) and run in one transaction
together with their audit record, their outbox rows and their events. They return plain dicts,
the same shape the CLI prints with ``--json``.
"""
