"""The auth subgraph: identities, sessions, invitations, roles and territories (federation 2)."""
