"""SQLModel tables of the control plane; importing this registers all of them."""

from hydite_common.spend_tables import SpendLog
from hydite_controlplane.models.audit import AuditEntry
from hydite_controlplane.models.budgets import BudgetRow
from hydite_controlplane.models.config import ConfigChange, ConfigNode
from hydite_controlplane.models.deployments import DeploymentRow
from hydite_controlplane.models.keys import VirtualKeyRow
from hydite_controlplane.models.principals import (
    CustomerRow,
    KeyGroupRow,
    OrganizationRow,
    TeamRow,
    UserRow,
)

__all__ = [
    "AuditEntry",
    "BudgetRow",
    "ConfigChange",
    "ConfigNode",
    "CustomerRow",
    "DeploymentRow",
    "KeyGroupRow",
    "OrganizationRow",
    "SpendLog",
    "TeamRow",
    "UserRow",
    "VirtualKeyRow",
]
