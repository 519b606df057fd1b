"""Exit codes shared by every command (documented in README.md)."""

OK = 0
NOT_COMPLIANT = 1  # check: the PC does not meet the requirements
USAGE = 2  # bad command line, configuration, policy or input file
BLOCKED = 3  # connect: the policy does not allow a session now
SESSION_FAILED = 4  # connect: the session could not be opened, or its client failed
