"""The verification page in a process of its own, for the tests of its limits: its memory high-water
mark (VmHWM) is then the server's alone, and its threads compete for the GIL and the cores as in
`bcl verify serve`.

    python -m tests.certgen.verification_server_process DATA_DIR '{"burst": 3}'

serves the issued world under DATA_DIR (tests.certgen.issued_world) on 127.0.0.1 with
VerificationLimits(**json) and prints the port on one line once it listens.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from aiohttp import web

from certgen.endpoints import JpkiEndpoints
from certgen.pki_directory import PkiDirectory
from certgen.scramble_keys import scramble_key
from certgen.verification import VerificationContext
from certgen.verification_limits import VerificationLimits
from certgen.verification_web import make_app
from sinks.issuance_archive import IssuanceArchive
from tests.certgen.issued_world import REPOSITORY_URL, SECRET


async def serve(data_dir: Path, limits: VerificationLimits) -> None:
    pki = PkiDirectory(data_dir / "pki", JpkiEndpoints(REPOSITORY_URL))
    context = VerificationContext([pki.seal_root().certificate], IssuanceArchive(data_dir / "issuance"),
                                  lambda code: scramble_key(SECRET, code))
    runner = web.AppRunner(make_app(context, limits))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    print(runner.addresses[0][1], flush=True)
    await asyncio.Event().wait()  # until the test terminates the process


if __name__ == "__main__":
    asyncio.run(serve(Path(sys.argv[1]), VerificationLimits(**json.loads(sys.argv[2]))))
