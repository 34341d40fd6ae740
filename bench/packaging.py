"""The Python rotation function's zip: the handler plus psycopg vendored next to it."""

import hashlib
import logging
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

logger = logging.getLogger("bench.packaging")

HANDLER_SOURCE = Path(__file__).with_name("python_rotator") / "lambda_function.py"
# Lambda's Python runtimes include boto3 but not psycopg, so psycopg goes into
# the zip. The version is the one the test environment pins.
VENDORED_REQUIREMENT = "psycopg[binary]==3.3.9"
FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def build_python_zip(build_dir, python=sys.executable):
    """Build the zip in `build_dir` and return its path.

    psycopg and its binary wheel are installed with `pip install --target` for
    `python`, the interpreter that MiniStack runs Python functions with, since
    the wheel's compiled module only loads in the Python version it was built
    for. A zip for Lambda's python3.12 runtime needs the cp312 wheel instead.
    The vendored folder is reused while the requirement and the interpreter
    stay the same.
    """
    build_dir = Path(build_dir)
    vendor_dir = build_dir / "vendor"
    stamp_path = build_dir / "vendor.stamp"
    version = subprocess.run([python, "-c", "import sys; print(sys.version)"],
                             capture_output=True, text=True, check=True).stdout.strip()
    stamp = hashlib.sha256(f"{VENDORED_REQUIREMENT}\n{version}".encode()).hexdigest()
    if not (stamp_path.exists() and stamp_path.read_text() == stamp and vendor_dir.is_dir()):
        shutil.rmtree(vendor_dir, ignore_errors=True)
        logger.info("installing %s into %s", VENDORED_REQUIREMENT, vendor_dir)
        subprocess.run(
            [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "--only-binary=:all:", "--target", str(vendor_dir), VENDORED_REQUIREMENT],
            check=True,
        )
        stamp_path.write_text(stamp)

    zip_path = build_dir / "python-rotator.zip"
    files = [(HANDLER_SOURCE, HANDLER_SOURCE.name)]
    files += sorted(
        ((path, path.relative_to(vendor_dir).as_posix()) for path in vendor_dir.rglob("*")
         if path.is_file() and not path.relative_to(vendor_dir).parts[0] == "bin"),
        key=lambda item: item[1],
    )
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, name in files:
            entry = zipfile.ZipInfo(name, date_time=FIXED_ZIP_TIME)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, path.read_bytes())
    logger.info("built %s (%d bytes, %d files)", zip_path, zip_path.stat().st_size, len(files))
    return zip_path
