"""The project's exception hierarchy: one root, specific subclasses, one clear line each."""

from __future__ import annotations


class AAAError(Exception):
    """Root of every error the project raises on purpose; str() is one line for the user."""

    exit_code = 1


class ConfigError(AAAError):
    """The configuration file or an override is missing, unknown or of the wrong type."""

    exit_code = 2


class ValidationError(AAAError):
    """Input from an admin, a file or a router is not acceptable."""


class NotFoundError(AAAError):
    """A named object (NAS, plan, subscriber, invoice, ...) does not exist."""


class ConflictError(AAAError):
    """The action collides with what is stored (duplicate login, plan still in use, ...)."""


class PluginError(AAAError):
    """A plugin could not be loaded or implements a hook that does not exist."""


class PermissionDenied(AAAError):
    """The acting admin's role does not allow the action."""
