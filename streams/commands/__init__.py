"""Sub-command groups of `bcl`, one module per area. Each is a thin shell: parse arguments, call
the library, print. Heavy imports stay inside the command functions so `bcl --help` is quick."""

from __future__ import annotations

import click

from streams.commands import (
    disaster_applications,  # noqa: F401  (its commands join the disaster group)
    disaster_support,  # noqa: F401  (its commands join the disaster group)
)
from streams.commands.adapter import adapter
from streams.commands.backup import analysts, backup, query, schemas
from streams.commands.billing import billing
from streams.commands.card import card
from streams.commands.centre import centre
from streams.commands.cluster import cluster
from streams.commands.disaster import disaster
from streams.commands.kiosk import kiosk
from streams.commands.pki import pki
from streams.commands.roster import roster
from streams.commands.safety import safety
from streams.commands.shelter import shelter
from streams.commands.stats import stats
from streams.commands.verify import verify
from streams.commands.worker import worker

COMMAND_GROUPS: list[click.Command] = [adapter, backup, query, analysts, schemas]
COMMAND_GROUPS.append(billing)
COMMAND_GROUPS.append(cluster)
COMMAND_GROUPS.append(centre)
COMMAND_GROUPS.append(stats)
COMMAND_GROUPS.append(card)
COMMAND_GROUPS.append(pki)
COMMAND_GROUPS.append(kiosk)
COMMAND_GROUPS.append(verify)
COMMAND_GROUPS.append(worker)
COMMAND_GROUPS.append(disaster)
COMMAND_GROUPS.append(shelter)
COMMAND_GROUPS.append(roster)
COMMAND_GROUPS.append(safety)
