"""one open deployment per (runtime, model): a runtime serves many models

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 06:00:00

Until now a deploy closed the runtime's open deployment whatever its model, so a runtime held at
most one open deployment: that history fits the new rule as it is. `model_id` is copied from each
row's version, and a partial unique index keeps one open deployment per (runtime, model).
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

OPEN = sa.text("replaced_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table('deployments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('model_id', sa.Integer(), nullable=True))
    op.execute("UPDATE deployments SET model_id = (SELECT versions.model_id FROM versions "
               "WHERE versions.id = deployments.version_id)")
    with op.batch_alter_table('deployments', schema=None) as batch_op:
        batch_op.alter_column('model_id', existing_type=sa.Integer(), nullable=False)
        batch_op.create_foreign_key('fk_deployments_model_id_models', 'models', ['model_id'],
                                    ['id'])
        batch_op.create_index(batch_op.f('ix_deployments_model_id'), ['model_id'], unique=False)
    op.create_index('ux_deployments_open_per_runtime_model', 'deployments',
                    ['runtime_id', 'model_id'], unique=True,
                    sqlite_where=OPEN, postgresql_where=OPEN)


def downgrade() -> None:
    op.drop_index('ux_deployments_open_per_runtime_model', table_name='deployments')
    with op.batch_alter_table('deployments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deployments_model_id'))
        batch_op.drop_constraint('fk_deployments_model_id_models', type_='foreignkey')
        batch_op.drop_column('model_id')
