"""The user's settings the agent applies to the OS: start at login."""
