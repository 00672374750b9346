"""flashclaim: limited-stock coupon claims for flash crowds."""

__version__ = "0.1.0"
