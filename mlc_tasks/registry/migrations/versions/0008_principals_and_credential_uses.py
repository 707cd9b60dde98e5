"""principals (people and services with credentials) and the one-time values they used

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 00:10:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('principals',
    sa.Column('id', sa.String(length=255), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('scopes', sa.JSON(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=True),
    sa.Column('totp_secret', sa.String(length=64), nullable=True),
    sa.Column('enrolled_at', sa.DateTime(), nullable=False),
    sa.Column('enrolled_by', sa.String(length=255), nullable=False),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    op.create_table('credential_uses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('principal_id', sa.String(length=255), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('value', sa.String(length=64), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('principal_id', 'kind', 'value')
    )
    with op.batch_alter_table('credential_uses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credential_uses_principal_id'), ['principal_id'],
                              unique=False)


def downgrade() -> None:
    op.drop_table('credential_uses')
    op.drop_table('principals')
