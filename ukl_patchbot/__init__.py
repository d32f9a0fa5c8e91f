"""ukl-patchbot: carry the Unikernel Linux patch set forward."""

__version__ = "0.1.0"
