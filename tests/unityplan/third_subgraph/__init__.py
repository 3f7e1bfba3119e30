"""A throwaway third subgraph built from the subgraph kit alone, for the test that adds it to the
platform with one registry entry (an entry point of `unityplan.services`)."""
