"""One folder per posture check.

``check.py`` holds the check (its probe per OS and its decision); pure parsers sit beside it.
"""
