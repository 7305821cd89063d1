"""RADIUS protocol: dictionaries, codec, authentication methods, server and CoA client."""
