"""champion pointer, comparisons, sensed files, data arrivals, notifications

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 13:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('models', schema=None) as batch_op:
        batch_op.add_column(sa.Column('champion_version_id', sa.String(length=32), nullable=True))
    # the champion of a model already in production is the version production serves
    op.execute(sa.text("""
        UPDATE models SET champion_version_id = (
            SELECT d.version_id FROM deployments d JOIN versions v ON v.id = d.version_id
            WHERE v.model_id = models.id AND d.env = 'prod' AND d.replaced_at IS NULL
            ORDER BY d.deployed_at DESC LIMIT 1)"""))

    op.create_table('comparisons',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('model', sa.String(length=63), nullable=False),
    sa.Column('champion_version_id', sa.String(length=32), nullable=False),
    sa.Column('challenger_version_id', sa.String(length=32), nullable=False),
    sa.Column('dataset_uri', sa.Text(), nullable=False),
    sa.Column('dataset_sha256', sa.String(length=64), nullable=False),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('created_by', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['champion_version_id'], ['versions.id'], ),
    sa.ForeignKeyConstraint(['challenger_version_id'], ['versions.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('champion_version_id', 'challenger_version_id', 'dataset_sha256')
    )
    with op.batch_alter_table('comparisons', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_comparisons_model'), ['model'], unique=False)
        batch_op.create_index(batch_op.f('ix_comparisons_champion_version_id'),
                              ['champion_version_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_comparisons_challenger_version_id'),
                              ['challenger_version_id'], unique=False)

    op.create_table('sensed_files',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model', sa.String(length=63), nullable=False),
    sa.Column('path', sa.String(length=1024), nullable=False),
    sa.Column('fingerprint', sa.String(length=255), nullable=False),
    sa.Column('changed_at', sa.DateTime(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('model', 'path')
    )

    op.create_table('data_arrivals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model', sa.String(length=63), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('arrived_at', sa.DateTime(), nullable=False),
    sa.Column('emitted_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('model', 'sha256')
    )
    with op.batch_alter_table('data_arrivals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_data_arrivals_model'), ['model'], unique=False)

    op.create_table('notifications',
    sa.Column('id', sa.String(length=200), nullable=False),
    sa.Column('model', sa.String(length=63), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('body_sha256', sa.String(length=64), nullable=False),
    sa.Column('received_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade() -> None:
    op.drop_table('notifications')
    with op.batch_alter_table('data_arrivals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_data_arrivals_model'))
    op.drop_table('data_arrivals')
    op.drop_table('sensed_files')
    with op.batch_alter_table('comparisons', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_comparisons_challenger_version_id'))
        batch_op.drop_index(batch_op.f('ix_comparisons_champion_version_id'))
        batch_op.drop_index(batch_op.f('ix_comparisons_model'))
    op.drop_table('comparisons')
    with op.batch_alter_table('models', schema=None) as batch_op:
        batch_op.drop_column('champion_version_id')
