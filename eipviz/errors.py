"""The one exception type for mistakes a user can cause."""


class EipvizError(Exception):
    """A problem the user can fix (bad file, missing data, unknown name).

    The message says what went wrong and what to do; the CLI and the pages
    show it as it is, never a traceback.
    """


def check_names(names, choices, what: str, show=str) -> tuple[str, ...]:
    """``names`` as a tuple, after checking each is one of ``choices``: otherwise one ``EipvizError`` naming the
    unknown ones (each written by ``show``) and the choices, e.g. ``what="CAM method"``."""
    names = tuple(names)
    unknown = [name for name in names if name not in choices]
    if unknown or not names:
        raise EipvizError(f"Unknown {what}(s) {', '.join(map(show, unknown)) or '(none given)'}. "
                          f"Choose from: {', '.join(choices)}.")
    return names


def no_file_error(path, what: str) -> EipvizError:
    """The refusal of ``path``, no regular file, as ``what`` (e.g. "Image"): not found, or something that is
    no file there (``/dev/null``, a pipe: "not found" of a path that exists misled)."""
    if path.exists():
        return EipvizError(f"{what} {path} is not a regular file (a device, a pipe or a socket); give a file.")
    return EipvizError(f"{what} {path} not found.")
