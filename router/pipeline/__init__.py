"""The one operation pipeline behind every door of the router (see `pipeline.py`): typed
stages from a GraphQL request to a typed outcome, which each door translates to its wire
format."""
