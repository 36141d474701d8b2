"""The `bcl` command line. Sub-command groups live in streams/commands/; this module builds the
settings once and is the one place that maps exceptions to messages and exit codes."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from domain.errors import BclError
from infra.kafka import ClusterUnavailableError
from infra.log import configure_logging
from streams.commands import COMMAND_GROUPS
from streams.commands.exit_status import (
    EXIT_CLUSTER_UNAVAILABLE,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_NOT_VERIFIED,
    EXIT_USAGE,
)
from streams.settings import load_settings

EPILOG = f"""\b
Exit status:
  0    done
  {EXIT_ERROR}    error in the data or the request (the message says what to fix)
  {EXIT_USAGE}    wrong command-line usage (unknown option, missing or malformed value)
  {EXIT_CLUSTER_UNAVAILABLE}    the Kafka cluster cannot be reached (start it: `bcl cluster up`)
  {EXIT_NOT_VERIFIED}    `bcl verify`: the certificate is not valid, or the scan matches no issued sheet
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C)
Errors are one line on stderr starting with "error:"."""


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110}, epilog=EPILOG)
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


def _kafka_exception(exc: Exception) -> bool:
    """A librdkafka error that a library let through unwrapped. confluent_kafka is looked up, not imported:
    if no command imported it, the exception cannot be one of its (and `bcl --help` stays quick)."""
    module = sys.modules.get("confluent_kafka")
    return module is not None and isinstance(exc, module.KafkaException)


def _fail(message: str, status: int) -> None:
    # One line, whatever the message holds: a multi-line message would read as several errors.
    click.echo("error: " + " ".join(message.split()), err=True)
    sys.exit(status)


def main(argv: list[str] | None = None) -> None:
    """The entry point: every project error (BclError) becomes one `error:` line and an exit status
    (see EPILOG). Anything else is a bug and keeps its traceback."""
    try:
        # Outside standalone mode click returns the status of ctx.exit(n) instead of exiting with it.
        status = cli.main(argv, prog_name="bcl", standalone_mode=False)
        if isinstance(status, int) and status:
            sys.exit(status)
    except click.exceptions.Abort:
        _fail("aborted", EXIT_INTERRUPTED)
    except click.UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
        _fail(exc.format_message() + hint, EXIT_USAGE)
    except click.ClickException as exc:
        _fail(exc.format_message(), exc.exit_code)
    except ClusterUnavailableError as exc:
        _fail(str(exc), EXIT_CLUSTER_UNAVAILABLE)
    except BclError as exc:
        _fail(str(exc), EXIT_ERROR)
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    except OSError as exc:
        # The file system refusing (no such directory, permission, disk full) is the user's to fix, not a bug.
        where = f": {exc.filename}" if exc.filename else ""
        _fail(f"{exc.strerror or exc}{where}", EXIT_ERROR)
    except Exception as exc:
        if not _kafka_exception(exc):
            raise
        error = exc.args[0] if exc.args else exc
        text = error.str() if hasattr(error, "str") else str(error)
        _fail(f"Kafka cluster: {text}", EXIT_CLUSTER_UNAVAILABLE)


if __name__ == "__main__":
    main()
