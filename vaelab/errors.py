"""The one exception type for mistakes a user can make (bad file, bad config, bad data).

The CLI prints these as a single line and exits non-zero; anything else is a bug and keeps its
traceback.
"""


class VaelabError(Exception):
    """A user-facing error; the message names the file, dataset or config key and the problem."""
