"""The PySide6 tray application: thin views over ``agent`` (issue 6).

Only this package imports Qt.
"""
