"""What runs the services rather than being one: the `unityplan` command and the development
stack. It may know every service; `core/` knows none."""
