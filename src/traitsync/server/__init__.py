"""ASGI app composition and process runtime; nothing imports this package."""
