"""Business logic. Routers call these; they take keyword arguments and a session or context."""
