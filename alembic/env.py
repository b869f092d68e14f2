"""Alembic environment of agno_orm: one env.py for the command line and for code.

All logic lives in agno_orm.sql.migrations.run_env; see its module docstring for the -x options.
"""

import logging
from logging.config import fileConfig

from alembic import context

from agno_orm.sql.migrations import run_env

# Configure logging only on the command line: a storage calling Alembic from code must not
# reconfigure its host application's logging. A user's minimal alembic.ini (script_location and a
# URL) has no logging sections, which fileConfig would fail on: it gets what our alembic.ini sets
# up, Alembic's progress and errors on stderr (an error is one line there, not a traceback).
config = context.config
if config.config_file_name is not None and "connection" not in config.attributes:
    if config.file_config.has_section("loggers"):
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    else:
        logging.basicConfig(format="%(levelname)-5.5s [%(name)s] %(message)s", level=logging.WARNING)
        logging.getLogger("alembic").setLevel(logging.INFO)

run_env(context)
