"""The exit statuses of `bcl`, listed in the epilog of `bcl --help`. Scripts tell a mistake to fix (1, 2)
from a cluster to start or wait for (3), and a certificate that did not verify (4) from a command that
could not run."""

from __future__ import annotations

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_CLUSTER_UNAVAILABLE = 3
EXIT_NOT_VERIFIED = 4  # `bcl verify`: the check ran, and the certificate is not valid (or the scan matches none)
EXIT_INTERRUPTED = 130
