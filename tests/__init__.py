"""gitopskit's tests.

Bytecode caches are written during a test run whatever ``PYTHONDONTWRITEBYTECODE`` says (this CI
image sets it): otherwise each of the some 200 ``invoke`` processes the tests start compiles
gitopskit from source again, and each xdist worker compiles and assertion-rewrites every test
module, about 20 CPU-seconds of a run on two cores. Set here, in the package's first module, so
that the workers and every program they start inherit it.
"""

import os
import sys

os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False
