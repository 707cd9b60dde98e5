"""model data location, test result window and outcome

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 11:56:12.606857
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('models', schema=None) as batch_op:
        batch_op.add_column(sa.Column('data_location', sa.Text(), nullable=True))

    with op.batch_alter_table('test_results', schema=None) as batch_op:
        batch_op.add_column(sa.Column('window', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('outcome', sa.String(length=16), server_default='tested', nullable=False))



def downgrade() -> None:
    with op.batch_alter_table('test_results', schema=None) as batch_op:
        batch_op.drop_column('outcome')
        batch_op.drop_column('window')

    with op.batch_alter_table('models', schema=None) as batch_op:
        batch_op.drop_column('data_location')

