"""Database access: one async engine per pod, sessions bound to a territory's pod and schema."""
