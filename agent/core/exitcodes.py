"""Exit codes of ``byod-agent`` (and ``byod-admin``, ``byod-verifier``); README.md has the table.

A code has one meaning everywhere; a command documents which of them it can return (its ``--help``
epilogue and README.md). 1 means only "this PC does not meet the requirements" (and, for the help
desk's ``diag show``/``diag view``, "this bundle is not verified"), never a crash.
"""

OK = 0
NOT_COMPLIANT = 1  # check: the PC does not meet the requirements; diag show: not verified
USAGE = 2  # bad command line, configuration, policy or input file; any AgentError
BLOCKED = 3  # connect: the policy does not allow a session now
SESSION_FAILED = 4  # connect: the session could not be opened, or its client failed
CANCELLED = 5  # the user said no, or closed the input (Ctrl-D) at a prompt
OFFLINE = 6  # policy update: the update server could not be reached; the cached policy stays
INTERNAL = 70  # an unexpected error inside the agent (EX_SOFTWARE); the traceback is in the log
INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as shells report it)
PIPE_CLOSED = 141  # the reader of our output went away (128 + SIGPIPE), e.g. ``| head``
