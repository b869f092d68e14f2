"""Alembic environment of agno_orm: one env.py for the command line and for code.

All logic lives in agno_orm.sql.migrations.run_env; see its module docstring for the -x options.
"""

from logging.config import fileConfig

from alembic import context

from agno_orm.sql.migrations import run_env

# Configure logging only on the command line: a storage calling Alembic from code must not
# reconfigure its host application's logging. A user's minimal alembic.ini (script_location and a
# URL) has no logging sections, and fileConfig would fail on it.
config = context.config
if (
    config.config_file_name is not None
    and "connection" not in config.attributes
    and config.file_config.has_section("loggers")
):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

run_env(context)
