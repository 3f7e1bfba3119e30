"""Plan execution: subgraph HTTP, entity batching, result merging and response shaping.

Import from the modules (`router.execution.gateway`, `router.execution.client`): the package
itself imports nothing, so the pipeline can use `router.execution.introspection` without
pulling in the gateway that depends on the pipeline."""
