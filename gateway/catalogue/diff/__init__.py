"""`tiergate diff`: what changed between two versions of a contract, and what breaks."""

from gateway.catalogue.diff._model import Change
from gateway.catalogue.diff._operations import diff_contracts

__all__ = ["Change", "diff_contracts"]
