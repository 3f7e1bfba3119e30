"""The router's HTTP server: an ASGI app serving GraphQL over HTTP, health and readiness."""
