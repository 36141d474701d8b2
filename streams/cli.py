"""The `bcl` command line. Sub-command groups live in streams/commands/; this module builds the
settings once and is the one place that maps exceptions to messages and exit codes."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from domain.errors import BclError
from infra.log import configure_logging
from streams.commands import COMMAND_GROUPS
from streams.settings import load_settings


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("--config", type=click.Path(path_type=Path, dir_okay=False),
              help="TOML settings file (also BCL_CONFIG).")
@click.option("--bootstrap-servers", help="Kafka bootstrap servers (default: the running embedded cluster).")
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False),
              help="Where BCL keeps its data (default ./var).")
@click.option("--log-format", type=click.Choice(["console", "json"]), help="Log format.")
@click.option("--metrics-port", type=click.IntRange(0, 65535),
              help="Port of the /metrics endpoint of long-running commands (also BCL_METRICS_PORT; "
                   "default: a free one, logged at start).")
@click.pass_context
def cli(ctx: click.Context, config: Path | None, bootstrap_servers: str | None, data_dir: Path | None,
        log_format: str | None, metrics_port: int | None) -> None:
    """BCL: municipal register backup, kiosk certificate issuance, billing and statistics."""
    settings = load_settings(
        {"bootstrap_servers": bootstrap_servers, "data_dir": data_dir, "log_format": log_format,
         "metrics_port": metrics_port},
        config_file=config,
    )
    configure_logging(settings.log_format, settings.log_level)
    ctx.obj = settings


for _group in COMMAND_GROUPS:
    cli.add_command(_group)


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except BclError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
