"""The processes around the service: one owner per data directory, files private
from birth, children that die with their parent."""
