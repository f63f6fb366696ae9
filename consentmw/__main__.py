import sys

from consentmw.cli import main

sys.exit(main())
