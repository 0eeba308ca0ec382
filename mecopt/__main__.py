import sys

from mecopt.cli import main

sys.exit(main())
