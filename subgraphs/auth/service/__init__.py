"""Business rules of the auth subgraph, one module per concern; each use case is one transaction."""
