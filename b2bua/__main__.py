import sys

from b2bua.cli import main

sys.exit(main())
