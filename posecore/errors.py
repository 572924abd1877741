"""User-facing errors. The command line prints their message as one line and exits non-zero."""


class OccluposeError(Exception):
    """A problem the user can fix (bad input, missing file, wrong setting); never a bug."""


class ConfigError(OccluposeError, ValueError):
    """A configuration key is unknown, of the wrong type or out of range."""


class SourceError(OccluposeError):
    """A video, camera, stream or image folder cannot be opened or read."""


class WeightsError(OccluposeError):
    """A weights or checkpoint file is missing, corrupt, not ours or does not fit the model."""


class OutputError(OccluposeError):
    """An output location cannot be written."""


def one_line(text: object) -> str:
    """A message as one line: the contract is one line per failure, whatever a library put in it."""
    return " ".join(str(text).split()) or "(no details)"
