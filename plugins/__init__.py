"""Bundled plugins, each registered through the aaa.plugins entry points like a third-party one."""
