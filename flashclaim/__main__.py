import sys

from flashclaim.cli import main

# (guarded: a process spawned by this one, the quote worker, imports the main module again)
if __name__ == "__main__":
    sys.exit(main())
