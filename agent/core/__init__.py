"""The ground floor every part stands on; it imports nothing else of the agent.

Messages and i18n, paths, atomic files, exit codes, the error base, the subprocess runner,
logging and secret scrubbing.
"""
