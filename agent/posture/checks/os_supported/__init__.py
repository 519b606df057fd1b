"""os_supported: is this OS release still supported by its vendor (lifecycle tables shipped with
the agent).
"""
