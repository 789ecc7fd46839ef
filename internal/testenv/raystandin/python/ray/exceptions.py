"""ray.exceptions of the Ray stand-in: the errors the SDK's jobs can meet,
with Ray's names and messages (python/ray/exceptions.py)."""


class RayError(Exception):
    """Super class of all Ray exception types."""


class RayTaskError(RayError):
    """A remote task raised; the message holds its traceback."""


class TaskUnschedulableError(RayError):
    """Raised when the task cannot be scheduled (e.g. its hard node affinity
    names a node that is gone or can never fit it)."""

    def __init__(self, error_message):
        self.error_message = error_message

    def __str__(self):
        return "The task is not schedulable: %s" % self.error_message


class GetTimeoutError(RayError):
    """Indicates that a call to the worker timed out."""


class RaySystemError(RayError):
    """Indicates that Ray encountered a system error."""
