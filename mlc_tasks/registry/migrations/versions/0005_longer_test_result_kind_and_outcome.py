"""longer test result kind and outcome

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 12:24:41.273712
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('test_results', schema=None) as batch_op:
        batch_op.alter_column('kind',
               existing_type=sa.VARCHAR(length=32),
               type_=sa.String(length=128),
               existing_nullable=False)
        batch_op.alter_column('outcome',
               existing_type=sa.VARCHAR(length=16),
               type_=sa.String(length=32),
               existing_nullable=False,
               existing_server_default=sa.text("'tested'"))



def downgrade() -> None:
    with op.batch_alter_table('test_results', schema=None) as batch_op:
        batch_op.alter_column('outcome',
               existing_type=sa.String(length=32),
               type_=sa.VARCHAR(length=16),
               existing_nullable=False,
               existing_server_default=sa.text("'tested'"))
        batch_op.alter_column('kind',
               existing_type=sa.String(length=128),
               type_=sa.VARCHAR(length=32),
               existing_nullable=False)

