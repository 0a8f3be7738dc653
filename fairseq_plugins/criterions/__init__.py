from . import ls_kd  # noqa: F401
