"""The city's signed policy: load and verify it, evaluate a posture report against it, explain.
Pipeline: bytes + detached signature -> ``loader.verify_policy`` (size, signature against the
shipped trust anchors, UTF-8, TOML, strict schema, validity window, rollback) -> ``Policy`` ->
``checks.posture_settings`` and ``checks.selected_checks`` drive the posture engine ->
``decision.decide``.
"""
