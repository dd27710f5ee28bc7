"""What the registry refuses; every message is safe to show (never holds a secret)."""


class RegistryError(Exception):
    """A request the registry refuses."""


class NotFound(RegistryError):
    pass


class Conflict(RegistryError):
    pass
