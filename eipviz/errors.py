"""The one exception type for mistakes a user can cause."""


class EipvizError(Exception):
    """A problem the user can fix (bad file, missing data, unknown name).

    The message says what went wrong and what to do; the CLI and the pages
    show it as it is, never a traceback.
    """
