import sys

from aigw.import_tax import HTTP_EXTRAS, skip_unused_import_tax, without

skip_unused_import_tax()
with without(HTTP_EXTRAS):  # httpx's command line and httpcore's trio support: unused, 0.2 s of every start
    from aigw.cli import entry

sys.exit(entry())
