"""Named errors and warnings, each with a message that says what to do next."""

from __future__ import annotations


class NbtrackerError(Exception):
    """Base class for every error nbtracker raises on purpose."""


class UsageError(NbtrackerError):
    """The API was called in a way that cannot work (for example ``log`` before ``init``)."""


class RunNotFound(NbtrackerError, LookupError):
    """No run matches the given path or id."""


class RunBusy(UsageError):
    """Another live process is writing the run that ``init(id=..., resume=...)`` named."""


class StorageError(NbtrackerError):
    """The storage folder cannot be written (a full disk, no permission) where nbtracker
    must write before training starts (``init()``); the message names the path."""


class StoreLocked(NbtrackerError):
    """The catalog file is held by another process for longer than the retry budget."""


class NbtrackerWarning(UserWarning):
    """Base class for warnings: the tracker had trouble, the user's code goes on."""


class ConfigValueChanged(NbtrackerWarning):
    """A config key that was already set got a different value (recorded, not fatal)."""


class StorageWarning(NbtrackerWarning):
    """Storage trouble (disk, lock, permissions): data is kept in memory and retried."""


class ValueConversionWarning(NbtrackerWarning):
    """A value was not JSON-able and was stored in converted form (usually its text)."""


class StepWarning(NbtrackerWarning):
    """A ``log`` call named a step lower than the run's current step; that row was dropped."""


class LogValueWarning(NbtrackerWarning):
    """A value passed to ``log`` could not be logged; it was skipped and the rest of the row
    was logged. Turn it into an error with
    ``warnings.simplefilter("error", nbtracker.errors.LogValueWarning)``."""
