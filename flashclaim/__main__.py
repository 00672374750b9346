import sys

from flashclaim.cli import main

sys.exit(main())
