"""os_updates: pending security updates and their age; apt and dnf on Linux, softwareupdate on
macOS, Windows Update.
"""
