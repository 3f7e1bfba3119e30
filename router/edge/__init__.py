"""The router at the edge: authentication, limits, CSRF and CORS, persisted queries, uploads."""
