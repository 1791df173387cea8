"""The one exception type for mistakes a user can make (bad file, bad config, bad data).

The CLI prints these as a single line and exits non-zero; anything else is a bug and keeps its
traceback.
"""


class VaelabError(Exception):
    """A user-facing error; the message names the file, dataset or config key and the problem."""


def check(condition: bool, key: str, problem: str) -> None:
    """A setting's check: ``config <key>: <problem>`` when ``condition`` fails.

    Every Config dataclass checks its own fields with this in ``__post_init__``, so the same line
    reaches a CLI user (``model.latent_dim``) and a Python caller of the class.
    """
    if not condition:
        raise VaelabError(f"config {key}: {problem}")
