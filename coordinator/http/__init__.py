"""The HTTP shell: six ports, one process, handlers that only translate."""
