"""Subscriber entitlements and enforcement: plan -> reply attributes, suspension life cycle."""
