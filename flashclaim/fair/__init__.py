"""A fair sale: proof of work, keyed traces of where a claim came from, drawn campaigns."""
