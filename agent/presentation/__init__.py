"""Qt-free view models shared by the CLI and the tray.

The status view, the report table, the fix for each check, notifications, and the session and
certificate views.
"""
