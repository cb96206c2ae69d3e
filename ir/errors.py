"""Errors a user can cause. The command line prints them as one line and exits 2."""


class EdgeccError(Exception):
    """A user error: bad file, unsupported op, impossible budget. The message is one line."""

    def __init__(self, message: str, *, file: str = "", node: str = "", op: str = ""):
        self.file, self.node, self.op, self.reason = file, node, op, message
        super().__init__(message)

    def __str__(self):
        where = f"{self.file}: " if self.file else ""
        if self.node or self.op:
            where += f"node '{self.node}' ({self.op}): "
        return (where + self.reason).replace("\n", " ")
