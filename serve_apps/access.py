"""The RBAC access matrix of the platform API, as data.

It is the reference design's matrix (seeds/mara-hcp-system-architecture.md, "RBAC Matrix"),
row for row. The design names only admins, customers and anonymous callers; providers and
miners are not in it, so by least privilege they get none of these actions (their own
surfaces are the marketplace and the notary). Anonymous callers never reach this table:
every route needs a token (401 first).
"""

from __future__ import annotations

import enum

from hcp.auth.tokens import Principal, Role
from hcp.errors import PermissionDeniedError


class Action(str, enum.Enum):
    VIEW_OWN_WORKLOADS = "view_own_workloads"
    VIEW_ALL_WORKLOADS = "view_all_workloads"
    SUBMIT_WORKLOAD = "submit_workload"
    TERMINATE_ANY_WORKLOAD = "terminate_any_workload"
    TERMINATE_OWN_WORKLOAD = "terminate_own_workload"
    VIEW_RESOURCES = "view_resources"
    MODIFY_RESOURCES = "modify_resources"
    VIEW_PLATFORM_REVENUE = "view_platform_revenue"
    VIEW_OWN_BILLING = "view_own_billing"


_ADMIN = frozenset({Role.ADMIN})
_ADMIN_CUSTOMER = frozenset({Role.ADMIN, Role.CUSTOMER})

MATRIX: dict[Action, frozenset[Role]] = {
    Action.VIEW_OWN_WORKLOADS: _ADMIN_CUSTOMER,
    Action.VIEW_ALL_WORKLOADS: _ADMIN,
    Action.SUBMIT_WORKLOAD: _ADMIN_CUSTOMER,
    Action.TERMINATE_ANY_WORKLOAD: _ADMIN,
    Action.TERMINATE_OWN_WORKLOAD: _ADMIN_CUSTOMER,
    Action.VIEW_RESOURCES: _ADMIN,
    Action.MODIFY_RESOURCES: _ADMIN,
    Action.VIEW_PLATFORM_REVENUE: _ADMIN,
    Action.VIEW_OWN_BILLING: _ADMIN_CUSTOMER,
}


def allowed(role: Role, action: Action) -> bool:
    return role in MATRIX[action]


def require(principal: Principal, action: Action) -> None:
    """Raise 403 unless the principal's role may take ``action``."""
    if not allowed(principal.role, action):
        raise PermissionDeniedError(
            f"role {principal.role.value!r} may not {action.value.replace('_', ' ')}",
            action=action.value,
            required=sorted(r.value for r in MATRIX[action]),
        )


def may_see_all_workloads(principal: Principal) -> bool:
    return allowed(principal.role, Action.VIEW_ALL_WORKLOADS)


def may_access_workload(principal: Principal, owner: str, *, terminate: bool = False) -> bool:
    """Whether the principal may view (or terminate) one workload owned by ``owner``."""
    any_action = Action.TERMINATE_ANY_WORKLOAD if terminate else Action.VIEW_ALL_WORKLOADS
    own_action = Action.TERMINATE_OWN_WORKLOAD if terminate else Action.VIEW_OWN_WORKLOADS
    if allowed(principal.role, any_action):
        return True
    return allowed(principal.role, own_action) and owner == principal.subject
