"""The HTTP face: the app, the bare claim endpoint, the routes, JSON in and out, the
listener with its limits, the API document, metrics."""
