"""Threadline: an event-sourced omnichannel conversation ledger.

The one import name of the project. Its subpackages are the repository's top-level folders
(linked in here), layered inward: app → channels → streaming → access → agent → handoff →
projections → ledger (docs/architecture.md).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("threadline")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"
