"""User errors inside fairseq commands: one line on stderr and a non-zero exit, no traceback.

fairseq-train/-generate call our code deep inside their own main; a SystemExit carrying the
message is the one exception they let through untouched.
"""


class PluginError(SystemExit):
    def __init__(self, message: str):
        super().__init__(f"error: {message}")
        self.message = message

    def __str__(self) -> str:
        return self.message
