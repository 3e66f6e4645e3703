"""Errors that name what was wrong and where, so that bad input never passes silently."""

from __future__ import annotations


class KensaError(Exception):
    """Base class for every error kensa raises on purpose."""


class OptionError(KensaError):
    """A command-line option or model argument has a bad value.

    The message names the option and the value, e.g. ``--model-args: unknown key 'foo'``.
    """

    def __init__(self, option: str, message: str):
        self.option = option
        super().__init__(f"{option}: {message}")


class DataError(KensaError):
    """A data row is malformed. The message names the file, the row and the field."""

    def __init__(self, source: str, row: int | None, message: str, field: str | None = None):
        self.source = source
        self.row = row
        self.field = field
        where = source if row is None else f"{source}, row {row}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {message}")


class ModelLoadError(KensaError):
    """A model or tokenizer could not be loaded."""


class ModelRunError(KensaError):
    """A loaded model failed while scoring or generating (e.g. out of memory at a fixed batch size)."""


class WriteError(KensaError):
    """A results, samples, thresholds or snapshot file could not be written (a full disk, a file-size
    limit, no permission). The file at that path is left as it was."""

    def __init__(self, path: object, reason: BaseException):
        self.path = path
        super().__init__(f"could not write {path}: {reason}; the previous file, if any, is unchanged")
