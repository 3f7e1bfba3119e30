"""The subgraph kit: what every subgraph is built from, so each subgraph package holds only
what is its own."""
