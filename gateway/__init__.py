"""The API gateway: one public entry point that routes, authenticates, limits and proxies."""
