"""``aigw.import_tax``: modules the runner and the kernels never use stay unimported while the run starts, and
import as usual afterwards."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from aigw.import_tax import without


def test_a_blocked_module_fails_to_import_inside_the_block_only() -> None:
    name = "aigw_no_such_import_tax_module"
    sys.modules.pop("colorsys", None)
    with without(["colorsys", name]), pytest.raises(ImportError):
        import colorsys
    import colorsys

    assert colorsys.rgb_to_hsv(1, 0, 0)[0] == 0.0
    assert name not in sys.modules


def test_a_module_imported_already_is_left_alone() -> None:
    import json as before

    with without(["json"]):
        import json as inside
    assert inside is before


def _run(code: str) -> dict[str, bool]:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result: dict[str, bool] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_the_runners_papermill_loads_no_remote_io_and_boto3_imports_afterwards() -> None:
    seen = _run("import sys, json; from aigw.execution import register_engine; register_engine(); "
                "from papermill.engines import papermill_engines; "
                "r = {'boto3': 'boto3' in sys.modules, 'pyarrow.fs': 'pyarrow.fs' in sys.modules, "
                "'engine': 'aigw' in papermill_engines._engines}; import boto3; r['later'] = 'boto3' in sys.modules; "
                "print(json.dumps(r))")
    assert seen == {"boto3": False, "pyarrow.fs": False, "engine": True, "later": True}


def test_the_entrance_and_a_kernels_warm_up_skip_httpx_s_command_line_and_trio() -> None:
    seen = _run("import sys, json, runpy; sys.argv = ['aigw', '--help']\n"
                "try:\n    runpy.run_module('aigw', run_name='__main__')\nexcept SystemExit:\n    pass\n"
                "from aigw.kernels import warm_up; warm_up(['aigw.session'])\n"
                "print(json.dumps({m: m in sys.modules for m in ('httpx', 'httpcore', 'httpx._main', 'trio')}))")
    assert seen == {"httpx": True, "httpcore": True, "httpx._main": False, "trio": False}
