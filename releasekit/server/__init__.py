"""The bundled private package index: `create_app(storage, settings)` -> ASGI app."""
