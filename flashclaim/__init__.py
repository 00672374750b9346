"""flashclaim: limited-stock coupon claims for flash crowds."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("flashclaim")  # one place for it: pyproject.toml
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"
