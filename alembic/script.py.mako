"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

Every revision receives the session table it migrates: table_name, schema and mode
(agent | team | workflow | workflow_v2). Write the change for that one table.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
${imports if imports else ""}

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def upgrade(*, table_name: str, schema: str | None, mode: str) -> None:
    ${upgrades if upgrades else "pass"}


def downgrade(*, table_name: str, schema: str | None, mode: str) -> None:
    ${downgrades if downgrades else "pass"}
