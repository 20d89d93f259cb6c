"""The HTTP API: thin routers over the runtime's services."""
