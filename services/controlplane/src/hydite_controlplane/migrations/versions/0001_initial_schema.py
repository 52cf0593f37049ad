"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-25 15:33:25.817059
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "config_changes",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("type_url", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("op", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("committed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_config_changes_version", "config_changes", ["version"], unique=False)
    op.create_table(
        "config_nodes",
        sa.Column("node_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("hostname", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("controlplane_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("connected", sa.Boolean(), nullable=False),
        sa.Column("acked_version", sa.BigInteger(), nullable=False),
        sa.Column("nacked_version", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("connected_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("node_id"),
    )
    op.create_table(
        "customers",
        sa.Column("metadata", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("max_budget", sa.Float(), nullable=True),
        sa.Column("soft_budget", sa.Float(), nullable=True),
        sa.Column("budget_duration", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("rpm_limit", sa.Integer(), nullable=True),
        sa.Column("tpm_limit", sa.Integer(), nullable=True),
        sa.Column("max_parallel_requests", sa.Integer(), nullable=True),
        sa.Column("model_rpm_limit", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("model_tpm_limit", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("customer_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("alias", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("allowed_models", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("blocked", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id"),
    )
    op.create_table(
        "deployments",
        sa.Column("metadata", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("model_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("model_name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("provider", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("upstream_model", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("api_base", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("api_key_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("api_version", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("timeout", sa.Float(), nullable=True),
        sa.Column("stream_timeout", sa.Float(), nullable=True),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("rpm", sa.Integer(), nullable=True),
        sa.Column("tpm", sa.Integer(), nullable=True),
        sa.Column("max_retries", sa.Integer(), nullable=True),
        sa.Column("input_cost_per_token", sa.Float(), nullable=True),
        sa.Column("output_cost_per_token", sa.Float(), nullable=True),
        sa.Column("extra_params", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("model_info", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("model_id"),
    )
    op.create_index(op.f("ix_deployments_model_name"), "deployments", ["model_name"], unique=False)
    op.create_table(
        "key_groups",
        sa.Column("metadata", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("max_budget", sa.Float(), nullable=True),
        sa.Column("soft_budget", sa.Float(), nullable=True),
        sa.Column("budget_duration", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("rpm_limit", sa.Integer(), nullable=True),
        sa.Column("tpm_limit", sa.Integer(), nullable=True),
        sa.Column("max_parallel_requests", sa.Integer(), nullable=True),
        sa.Column("model_rpm_limit", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("model_tpm_limit", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("models", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("routing_strategy", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "organizations",
        sa.Column("metadata", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("max_budget", sa.Float(), nullable=True),
        sa.Column("soft_budget", sa.Float(), nullable=True),
        sa.Column("budget_duration", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("rpm_limit", sa.Integer(), nullable=True),
        sa.Column("tpm_limit", sa.Integer(), nullable=True),
        sa.Column("max_parallel_requests", sa.Integer(), nullable=True),
        sa.Column("model_rpm_limit", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("model_tpm_limit", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("organization_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("organization_alias", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("models", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("blocked", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("organization_id"),
    )
    op.create_table(
        "spend_logs",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("request_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("call_type", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("api_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("key_alias", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("spend", sa.Float(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("cached_tokens", sa.Integer(), nullable=False),
        sa.Column("reasoning_tokens", sa.Integer(), nullable=False),
        sa.Column("total_tokens", sa.Integer(), nullable=False),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ttft_ms", sa.Float(), nullable=False),
        sa.Column("model", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("model_group", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("model_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("custom_llm_provider", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("upstream_model", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("api_base", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("team_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("organization_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("end_user", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("request_tags", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("stream", sa.Boolean(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=False),
        sa.Column("error_code", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("usage_estimated", sa.Boolean(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("node_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("node_seq", sa.BigInteger(), nullable=False),
        sa.Column("extra", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_id"),
    )
    op.create_index("ix_spend_logs_api_key_start", "spend_logs", ["api_key", "start_time"], unique=False)
    op.create_index("ix_spend_logs_start", "spend_logs", ["start_time"], unique=False)
    op.create_index("ix_spend_logs_team_start", "spend_logs", ["team_id", "start_time"], unique=False)
    op.create_index("ix_spend_logs_user_start", "spend_logs", ["user_id", "start_time"], unique=False)
    op.create_table(
        "teams",
        sa.Column("metadata", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("max_budget", sa.Float(), nullable=True),
        sa.Column("soft_budget", sa.Float(), nullable=True),
        sa.Column("budget_duration", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("rpm_limit", sa.Integer(), nullable=True),
        sa.Column("tpm_limit", sa.Integer(), nullable=True),
        sa.Column("max_parallel_requests", sa.Integer(), nullable=True),
        sa.Column("model_rpm_limit", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("model_tpm_limit", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("team_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("team_alias", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("organization_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("key_group", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("models", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("members_with_roles", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("blocked", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("team_id"),
    )
    op.create_table(
        "users",
        sa.Column("metadata", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("max_budget", sa.Float(), nullable=True),
        sa.Column("soft_budget", sa.Float(), nullable=True),
        sa.Column("budget_duration", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("rpm_limit", sa.Integer(), nullable=True),
        sa.Column("tpm_limit", sa.Integer(), nullable=True),
        sa.Column("max_parallel_requests", sa.Integer(), nullable=True),
        sa.Column("model_rpm_limit", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("model_tpm_limit", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("user_email", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("user_role", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("organization_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("teams", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("models", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("blocked", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("user_id"),
    )
    op.create_table(
        "virtual_keys",
        sa.Column("metadata", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("max_budget", sa.Float(), nullable=True),
        sa.Column("soft_budget", sa.Float(), nullable=True),
        sa.Column("budget_duration", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("rpm_limit", sa.Integer(), nullable=True),
        sa.Column("tpm_limit", sa.Integer(), nullable=True),
        sa.Column("max_parallel_requests", sa.Integer(), nullable=True),
        sa.Column("model_rpm_limit", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("model_tpm_limit", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("token", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("key_name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("key_alias", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("team_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("organization_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("customer_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("key_group", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("models", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("tags", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("allowed_routes", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("guardrails", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("blocked", sa.Boolean(), nullable=False),
        sa.Column("expires", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("token"),
        sa.UniqueConstraint("key_alias"),
    )
    op.create_index(
        op.f("ix_virtual_keys_organization_id"), "virtual_keys", ["organization_id"], unique=False
    )
    op.create_index(op.f("ix_virtual_keys_team_id"), "virtual_keys", ["team_id"], unique=False)
    op.create_index(op.f("ix_virtual_keys_user_id"), "virtual_keys", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_virtual_keys_user_id"), table_name="virtual_keys")
    op.drop_index(op.f("ix_virtual_keys_team_id"), table_name="virtual_keys")
    op.drop_index(op.f("ix_virtual_keys_organization_id"), table_name="virtual_keys")
    op.drop_table("virtual_keys")
    op.drop_table("users")
    op.drop_table("teams")
    op.drop_index("ix_spend_logs_user_start", table_name="spend_logs")
    op.drop_index("ix_spend_logs_team_start", table_name="spend_logs")
    op.drop_index("ix_spend_logs_start", table_name="spend_logs")
    op.drop_index("ix_spend_logs_api_key_start", table_name="spend_logs")
    op.drop_table("spend_logs")
    op.drop_table("organizations")
    op.drop_table("key_groups")
    op.drop_index(op.f("ix_deployments_model_name"), table_name="deployments")
    op.drop_table("deployments")
    op.drop_table("customers")
    op.drop_table("config_nodes")
    op.drop_index("ix_config_changes_version", table_name="config_changes")
    op.drop_table("config_changes")
